"""Study efficiency: early stopping, and the Ray executor against local process groups.

Two experiments on real short trials (``donkeyrl train``: PPO on the built-in simulator, the
validation race as the objective), each study a real ``donkeyrl research`` process stopped with
SIGINT when its wall-clock budget is spent (running trials are recorded ``interrupted`` and do
not count):

``prune``: for each seed, two studies with the same seed, search space and budget run side by
side (so they share the machine's load alike), one with ``--prune none`` and one with
``--prune asha`` (or ``--rule``). Reported per study: trials finished (ok, failed or pruned; not
interrupted), trials that ran their whole budget (ok), trials pruned, the champion's validation
``race_score`` (the study's objective; ``--confirm-seeds 0``: the best single trial) and the
champion's test-set result (the mean race score over the test tracks, raced here with
rl/race.py; never used for selection). Then the medians over seeds.

``ray``: the same study (``--prune none``) for the same budget with ``--executor local
--workers N`` and with ``--executor ray --workers N --cpus-per-trial C`` on a local Ray cluster
of separate processes on this machine (a head without CPUs and one worker node with N*C CPUs,
research/executors/ray_cluster.py), one after the other (``--order`` alternates across
``--rounds``); reported: trials finished per hour for each, and the ratio.

Usage::

    .venv/bin/python benchmarks/study_efficiency.py prune --budget 480 --seeds 3 [--json]
    .venv/bin/python benchmarks/study_efficiency.py ray --budget 180 --workers 2 --timesteps 4096 [--json]

``--research-arg=--prune-min-delta --research-arg=0`` compares plain ASHA instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from donkeyrl.research import Journal

SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 3e-3, "log": True},
    "ent_coef": {"type": "float", "low": 0.0, "high": 0.05},
    "gamma": {"type": "float", "low": 0.9, "high": 0.999},
    "n_steps": {"type": "categorical", "choices": [64, 128, 256]},
}
"""A small PPO space whose good and bad corners differ clearly within a short budget."""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def research_cmd(study: Path, space: Path, seed: int, timesteps: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(study),
            "--search-space", str(space), "--trials", "10000", "--seed", str(seed),
            "--min-timesteps", str(timesteps), "--max-timesteps", str(timesteps),
            "--eval-episodes", "1", "--cooldown", "0", "--confirm-seeds", "0",
            "--no-final-test", "--no-report", "--trial-timeout", "900", *extra]


def start(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)


def stop_after(procs: list[subprocess.Popen[bytes]], budget: float) -> None:
    """SIGINT every study when ``budget`` seconds have passed since now; wait for them."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(1.0)
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    for p in procs:
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def test_score(champion_dir: Path) -> float | None:
    """Mean race score of the champion model over the test tracks (None without a champion)."""
    if not (champion_dir / "model.zip").exists():
        return None
    from donkeyrl.rl.evaluate import load_trained
    from donkeyrl.rl.race import race_tracks, summarise_races
    from donkeyrl.sim.tracksets import test_tracks

    model, cfg = load_trained(champion_dir)
    race_cfg = cfg.replace(sim="embedded") if cfg.sim != "embedded" else cfg
    return summarise_races(race_tracks(model, race_cfg, test_tracks(), seed=0))["race_score"]


def summarise(study: Path, budget: float) -> dict[str, Any]:
    records = Journal(study / "results.jsonl").read().records
    done = [r for r in records if r.run_status not in ("interrupted", "lost")]
    ok = [r for r in done if r.run_status == "ok" and r.objective is not None]
    best = max(ok, key=lambda r: r.objective, default=None)  # type: ignore[arg-type, return-value]
    return {"trials_finished": len(done), "trials_ok": len(ok),
            "trials_pruned": sum(r.run_status == "pruned" for r in done),
            "trials_per_hour": round(len(done) * 3600 / budget, 1),
            "champion_trial": best.trial if best else None,
            "champion_objective": best.objective if best else None,
            "test_race_score": test_score(study / "models" / "champion") if best else None}


def median(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return statistics.median(values) if values else None


def run_prune(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    rows: dict[str, list[dict[str, Any]]] = {"none": [], args.rule: []}
    for seed in range(args.seeds):
        load0 = load()
        procs, studies = [], {}
        for rule in rows:
            study = root / f"seed{seed}-{rule}"
            studies[rule] = study
            procs.append(start(research_cmd(study, space, seed, args.timesteps,
                                            ["--prune", rule, *args.research_arg]),
                               root / f"seed{seed}-{rule}.log"))
        stop_after(procs, args.budget)
        for rule, study in studies.items():
            row = {"seed": seed, "load_before": load0, "load_after": load(), **summarise(study, args.budget)}
            rows[rule].append(row)
            print(json.dumps({"prune": rule, **row}), flush=True)
    keys = ("trials_finished", "trials_ok", "trials_pruned", "champion_objective", "test_race_score")
    return {"experiment": "prune", "budget_sec": args.budget, "seeds": args.seeds,
            "timesteps": args.timesteps, "runs": rows,
            "median": {rule: {k: median(r, k) for k in keys} for rule, r in rows.items()}}


def run_ray(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    from donkeyrl.research.executors.ray_cluster import LocalCluster

    space = root / "space.json"
    space.write_text(json.dumps(SPACE))
    rows: dict[str, list[dict[str, Any]]] = {"local": [], "ray": []}
    order = ["local", "ray"]
    for rnd in range(args.rounds):
        for kind in (order if rnd % 2 == 0 else order[::-1]):
            study = root / f"round{rnd}-{kind}"
            base = ["--prune", "none", "--workers", str(args.workers), *args.research_arg]
            load0 = load()
            if kind == "local":
                proc = start(research_cmd(study, space, rnd, args.timesteps,
                                          [*base, "--executor", "local"]), root / f"{study.name}.log")
                stop_after([proc], args.budget)
            else:
                with LocalCluster(root / f"cluster-{rnd}", worker_cpus=(args.workers * args.cpus_per_trial,)) as c:
                    proc = start(research_cmd(study, space, rnd, args.timesteps,
                                              [*base, "--executor", "ray", "--ray-address", c.address,
                                               "--cpus-per-trial", str(args.cpus_per_trial)]),
                                 root / f"{study.name}.log")
                    stop_after([proc], args.budget)
            records = Journal(study / "results.jsonl").read().records
            done = [r for r in records if r.run_status not in ("interrupted", "lost")]
            row = {"round": rnd, "executor": kind, "load_before": load0, "load_after": load(),
                   "trials_finished": len(done), "trials_per_hour": round(len(done) * 3600 / args.budget, 1),
                   "mean_trial_sec": round(statistics.mean(r.elapsed_sec for r in done), 1) if done else None}
            rows[kind].append(row)
            print(json.dumps(row), flush=True)
    per_hour = {k: statistics.median(r["trials_per_hour"] for r in v) for k, v in rows.items()}
    return {"experiment": "ray", "budget_sec": args.budget, "workers": args.workers,
            "cpus_per_trial": args.cpus_per_trial, "timesteps": args.timesteps, "runs": rows,
            "median_trials_per_hour": per_hour,
            "ray_over_local": round(per_hour["ray"] / per_hour["local"], 3) if per_hour["local"] else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("experiment", choices=("prune", "ray"))
    p.add_argument("--budget", type=float, default=600.0, help="wall-clock seconds per study")
    p.add_argument("--seeds", type=int, default=3, help="prune: seeds (pairs of studies)")
    p.add_argument("--rule", default="asha", help="prune: the early-stopping rule compared with none")
    p.add_argument("--timesteps", type=int, default=24576,
                   help="training steps of every trial (prune: long enough that good "
                   "configurations learn before the later checkpoints; see benchmarks/README.md)")
    p.add_argument("--workers", type=int, default=2, help="ray: parallel trials of both executors")
    p.add_argument("--cpus-per-trial", type=int, default=1, help="ray: CPUs each trial asks for")
    p.add_argument("--rounds", type=int, default=1, help="ray: rounds (the order alternates)")
    p.add_argument("--research-arg", action="append", default=[], help="extra donkeyrl research argument")
    p.add_argument("--keep", type=Path, default=None, help="keep the studies in this directory")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line")
    args = p.parse_args()
    started = dt.datetime.now().isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        out = run_prune(args, root) if args.experiment == "prune" else run_ray(args, root)
    out.update(started=started, ended=dt.datetime.now().isoformat(timespec="seconds"),
               cpus=os.cpu_count(), load_end=load())
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
