"""Does a configuration generalise? The champion's configuration vs the hand-tuned baseline on the
test set, trained with the same step budget on several seeds.

For every seed, each method is trained in process (``run_trial``, the same code as ``donkeyrl
train``, without its own validation race) and then raced once on every track of the test set
(:func:`donkeyrl.rl.race.race_tracks`, the race of ``donkeyrl evaluate --set test``). Per method it
prints the test-set lap rate, the mean flying-lap time relative to the scripted expert (over the
tracks lapped) and the mean |cte|, as the median and range over seeds.

    .venv/bin/python benchmarks/generalisation.py --study runs/quickstart --seeds 3 --json
    .venv/bin/python benchmarks/generalisation.py --config champion.json --timesteps 90000

``--study DIR`` takes the configuration of the study's champion (``models/champion/manifest.json``
params) and its timesteps; ``--config FILE`` a JSON object of flat trial parameters. The baseline is
:data:`donkeyrl.rl.headtohead.BASELINE` with the same timesteps and seeds. Goal (issue 10): test lap
rate 100% on every seed, laps at most 0.95 x the expert's time.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.evaluate import load_trained
from donkeyrl.rl.headtohead import baseline_overrides
from donkeyrl.rl.race import race_tracks, summarise_races
from donkeyrl.rl.train import run_trial
from donkeyrl.sim.tracksets import test_tracks

#: Parameters of a recorded configuration that are not part of it (set per run here).
NOT_CONFIG = {"seed", "extra", "init_model", "validation", "eval_episodes"}


def champion_params(study: Path) -> dict[str, Any]:
    """Flat parameters the study's champion was trained with (what the trainer reported using)."""
    manifest = json.loads((study / "models" / "champion" / "manifest.json").read_text())
    cfg = TrialConfig.load(study / "models" / "champion")
    params = {k: v for k, v in cfg.to_dict().items() if v is not None and k not in NOT_CONFIG}
    params["tracks"] = tuple(params["tracks"])
    params["_trial"] = manifest.get("trial")
    return params


def run_method(name: str, params: dict[str, Any], seed: int, workdir: Path) -> dict[str, Any]:
    """Train ``params`` with ``seed``, race the test set; the set's summary plus timings."""
    flat = {k: v for k, v in params.items() if not k.startswith("_")}
    cfg = TrialConfig(**{**flat, "seed": seed, "validation": False, "eval_episodes": 0})
    t0 = time.perf_counter()
    result = run_trial(cfg, workdir / f"{name}-seed{seed}")
    train_sec = time.perf_counter() - t0
    if result["run_status"] != "ok":
        return {"method": name, "seed": seed, "run_status": result["run_status"], "message": result["message"]}
    model, trained_cfg = load_trained(result["model_path"])
    t1 = time.perf_counter()
    summary = summarise_races(race_tracks(model, trained_cfg, test_tracks(), seed=seed))
    return {"method": name, "seed": seed, "run_status": "ok", "train_sec": round(train_sec, 1),
            "race_sec": round(time.perf_counter() - t1, 1),
            "train_steps_per_sec": result.get("train_steps_per_sec"), **summary}


def _stats(values: list[float | None]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: median and range over seeds of lap rate, lap-time ratio and |cte|."""
    out: dict[str, Any] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        ok = [r for r in runs if r["method"] == method and r["run_status"] == "ok"]
        out[method] = {"seeds": len(ok), "lap_rate": _stats([r["lap_rate"] for r in ok]),
                       "lap_time_ratio": _stats([r["mean_lap_time_ratio"] for r in ok]),
                       "mean_abs_cte": _stats([r["mean_abs_cte"] for r in ok]),
                       "race_score": _stats([r["race_score"] for r in ok])}
    return out


def _fmt(s: dict[str, Any], spec: str) -> str:
    if s["median"] is None:
        return "-"
    return f"{s['median']:{spec}} [{s['min']:{spec}}, {s['max']:{spec}}]"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--study", type=Path, help="study directory: its champion's configuration")
    src.add_argument("--config", type=Path, help="JSON file of flat trial parameters")
    p.add_argument("--timesteps", type=int, help="training steps per run (default: the configuration's)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per method, >= 1 (default: 3)")
    p.add_argument("--first-seed", type=int, default=1000, help="first seed (default: 1000)")
    p.add_argument("--workdir", type=Path, help="where models are written (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    logging.basicConfig(level=logging.WARNING)
    if args.study:
        champion = champion_params(args.study)
    else:
        champion = json.loads(args.config.read_text())
        champion["tracks"] = tuple(champion.get("tracks", ("mixed",)))
    if args.timesteps:
        champion["timesteps"] = args.timesteps
    timesteps = int(champion.get("timesteps", 50_000))
    baseline = baseline_overrides(timesteps, 0)
    baseline.pop("seed")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="generalisation-"))
    runs = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name, params in (("champion_config", champion), ("baseline", baseline)):
            run = run_method(name, params, seed, workdir)
            runs.append(run)
            if not args.json:
                print(f"{name} seed {seed}: lap rate {run.get('lap_rate')}, lap time / expert "
                      f"{run.get('mean_lap_time_ratio')}, |cte| {run.get('mean_abs_cte')} "
                      f"(train {run.get('train_sec')} s)", file=sys.stderr, flush=True)
    out = {"timesteps": timesteps, "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
           "test_tracks": list(test_tracks()), "champion_config": {k: v for k, v in champion.items()},
           "summary": summarise(runs), "runs": runs}
    if args.json:
        print(json.dumps(out, default=list))
    else:
        print(f"{'method':<18}{'lap rate':>26}{'lap time / expert':>28}{'mean |cte|':>24}")
        for method, s in out["summary"].items():
            print(f"{method:<18}{_fmt(s['lap_rate'], '.2f'):>26}{_fmt(s['lap_time_ratio'], '.3f'):>28}"
                  f"{_fmt(s['mean_abs_cte'], '.2f'):>24}")
        print("median [min, max] over seeds; lap time / expert over the tracks lapped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
