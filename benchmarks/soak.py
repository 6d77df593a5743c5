"""Fault-injection soak of `donkeyrl research`: SIGKILLs, a damaged journal, a full disk.

What it does (a fast fake trainer, tests/research/fake_trial.py, behind a `sh -c` wrapper, so
every trial is a leader + a shell + a trainer, some with two worker children, a grandchild or a
process in a session of its own):

1. Kill phase: studies of ``--trials`` trials (2 workers) one after the other, each restarted
   until it completes: start the controller, SIGKILL it (the controller only, never its group)
   after a random delay of 0.05 to 4 s (start-up, preflight, proposals, trials, recording), then
   check; once ``--restarts`` kills are done, the last run of a study goes to the end (exit 0,
   ``--trials`` finished trials, plus at most K confirmation runs). Every 2nd run first damages
   the journal while no controller runs, cycling through: a torn record (half of a real line, no newline), a record
   with wrong field types, garbage bytes (not UTF-8), a 100000-deep nesting.
2. Disk phase: study B lives on a tmpfs of ``--disk-mb`` MiB mounted in a private mount namespace
   (``unshare``/``nsenter``; needs root or user namespaces). ``--disk-rounds`` times a filler file
   leaves a random 0-300 KiB free and the controller runs until it stops by itself (exit 4 when
   the disk fills, 0 when the study is done); then the filler is removed. Trials write 96 KiB
   models, so the disk fills at launch, inside trials, at the journal append or the champion
   copy. Without a mount namespace the phase is skipped (the script says so).

The studies run with the default champion rule: candidates confirmed on K = 2 fresh seeds
(``--confirm-seeds``), so kills also land inside confirmations, which a restart must rebuild
from the journal.

Checks after every fault, with this script's own reader (it does not use donkeyrl's journal
or champion code): the journal only grew (the bytes before are a prefix of the bytes after);
every line is an injected one or a complete record (no partial record); trial ids are unique;
no more than ``--trials`` + K finished (non-interrupted) records (a confirmation in progress at
``--trials`` is completed); every record's ``champion`` and ``crowned`` equal the documented
fold (research/champion.py, re-implemented here: random phase, candidates that beat the
champion's confirmed mean, one confirmation at a time, crowned by the mean over K + 1 runs, the
best run installed); no process carrying this run's token outlives its controller by more
than the kill grace + 3 s. After runs that ended by themselves also: no temporary files,
``models/champion`` matches the fold. At the end: every trial directory with a launch.json
has exactly one record (nothing lost), and each study finished between ``--trials`` and
``--trials`` + K trials.

    .venv/bin/python benchmarks/soak.py [--restarts 60] [--disk-rounds 10] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "research" / "fake_trial.py"
SPACE = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
         "n_steer": {"type": "int", "low": 3, "high": 9}}
TOKEN_ENV = "SOAK_TOKEN"
GRACE = 0.5
DAMAGES = ("torn", "wrongtypes", "garbage", "deep")
CONFIRM_SEEDS = 2  # the controller's default --confirm-seeds
N_INITIAL = 3  # --n-initial of the soak's studies


@dataclass
class Counts:
    """What the soak injected and found."""

    faults_injected: int = 0
    faults_survived: int = 0
    kills: int = 0
    damages: int = 0
    disk_full_runs: int = 0
    disk_rounds: int = 0
    records_lost: int = 0
    records_duplicated: int = 0
    partial_records: int = 0
    orphans: int = 0
    temp_files_left: int = 0
    champion_mismatches: int = 0
    trials_over_limit: int = 0
    journal_shrunk: int = 0
    tracebacks: int = 0
    confirmation_runs: int = 0
    """Finished confirmation runs in the final journals (the rule was exercised)."""
    crownings: int = 0
    exit_codes: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# --- this script's own view of a study ---------------------------------------------------
def read_lines(path: Path) -> list[bytes]:
    return [ln for ln in path.read_bytes().split(b"\n") if ln] if path.exists() else []


def parse_records(path: Path, injected: set[bytes]) -> tuple[list[dict[str, Any]], list[bytes]]:
    """(records, partial lines): every line not injected must be one complete record."""
    recs, partial = [], []
    for raw in read_lines(path):
        if raw in injected:
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except ValueError:
            partial.append(raw)
            continue
        if isinstance(obj, dict) and isinstance(obj.get("trial"), int) \
                and isinstance(obj.get("run_status"), str) and isinstance(obj.get("params"), dict):
            recs.append(obj)
        else:
            partial.append(raw)
    return recs, partial


def usable(r: dict[str, Any]) -> bool:
    """The documented champion eligibility (research/records.py, research/champion.py)."""
    v = r.get("objective")
    if r.get("run_status") != "ok" or not isinstance(v, (int, float)) or not math.isfinite(v):
        return False
    low, high = {"driving_score": (0.0, 100.0), "race_score": (0.0, 1000.0)}.get(
        str(r.get("objective_name")), (-1e12, 1e12))
    path = r.get("model_path")
    return (not r.get("reward_hacking") and low <= v <= high and isinstance(path, str)
            and bool(path) and not PurePosixPath(path).is_absolute()
            and ".." not in PurePosixPath(path).parts)


def fold(recs: list[dict[str, Any]], k: int = CONFIRM_SEEDS,
         n_initial: int = N_INITIAL) -> tuple[dict[str, Any] | None, list[int]]:
    """(champion record, trials whose ``champion`` / ``crowned`` disagree with the fold).

    The rule of research/champion.py, written again from its documentation: the first
    ``n_initial`` finished non-confirmation trials are the random phase, whose best usable
    trial is the first candidate; afterwards a usable non-confirmation trial is a candidate when
    it beats the champion's mean (or there is none). One candidate is confirmed at a time (the
    others queue and are checked again when their turn comes) by ``k`` usable runs with
    ``confirms`` = its trial; a failed run drops it; the mean over its k + 1 runs must beat the
    champion's mean; the best run (earliest on ties) is installed.
    """
    champ: dict[str, Any] | None = None
    champ_mean = -math.inf
    active: list[dict[str, Any]] | None = None  # [candidate, runs...]
    queue: list[dict[str, Any]] = []
    ordinary, phase_best, wrong = 0, None, []

    def next_candidate() -> list[dict[str, Any]] | None:
        while queue:
            cand = queue.pop(0)
            if cand["objective"] > champ_mean:
                return [cand]
        return None

    for r in recs:
        crowned = None
        if r["run_status"] == "interrupted":
            pass
        elif r.get("confirms") is not None:
            if active is not None and r["confirms"] == active[0]["trial"]:
                if not usable(r):
                    active = next_candidate()
                else:
                    active.append(r)
                    if len(active) == k + 1:
                        mean = math.fsum(x["objective"] for x in active) / len(active)
                        if mean > champ_mean:
                            best = active[0]
                            for x in active[1:]:
                                best = x if x["objective"] > best["objective"] else best
                            champ, champ_mean, crowned = best, mean, best["trial"]
                        active = next_candidate()
        else:
            ordinary += 1
            ok = usable(r)
            if k == 0:
                if ok and r["objective"] > champ_mean:
                    champ, champ_mean, crowned = r, r["objective"], r["trial"]
            elif ordinary <= n_initial:
                if ok and (phase_best is None or r["objective"] > phase_best["objective"]):
                    phase_best = r
                if ordinary == n_initial and phase_best is not None:
                    queue.append(phase_best)
            elif ok and r["objective"] > champ_mean:
                queue.append(r)
            if active is None:
                active = next_candidate()
        if bool(r.get("champion")) != (crowned is not None) or r.get("crowned") != crowned:
            wrong.append(r["trial"])
    return champ, wrong


def token_processes(token: str) -> list[int]:
    needle = f"{TOKEN_ENV}={token}".encode()
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and needle in env.split(b"\0"):
            out.append(int(entry.name))
    return out


def temp_files(study: Path) -> list[Path]:
    return [p for p in study.rglob(".*") if ".tmp-" in p.name or p.name.startswith(".write-test")]


# --- the study under test ---------------------------------------------------------------
class Study:
    """One study directory, its controller command and the checker's state."""

    def __init__(self, root: Path, view: Path, trials: int, rng: random.Random,
                 prefix: list[str], model_kb: int, counts: Counts) -> None:
        self.root, self.view = root, view  # view: the same directory as this script sees it
        self.trials, self.rng, self.prefix, self.counts = trials, rng, prefix, counts
        self.injected: set[bytes] = set()
        self.snapshot = b""
        self.token = uuid.uuid4().hex
        space = view.parent / "space.json"
        space.write_text(json.dumps(SPACE))
        modes = []
        for t in range(1, 4 * trials):
            mode = rng.choices(["ok", "spawn", "workers", "escape", "crash", "hang", "nan"],
                               [60, 10, 10, 5, 5, 5, 5])[0] if model_kb == 0 else "ok"
            modes.append(f"{t}={mode}")
        inner = f"{sys.executable} {FAKE}"
        trainer = (f"sh -c '{inner} \"$@\"; exit $?' sh --sleep 0.1 --hold 0.4 "
                   f"--model-kb {model_kb} --plan {','.join(modes)}")
        self.cmd = [*prefix, sys.executable, "-m", "donkeyrl", "research", "--study-dir", str(root),
                    "--search-space", str(root.parent / "space.json"), "--trials", str(trials),
                    "--workers", "2", "--cooldown", "0", "--kill-grace", str(GRACE),
                    "--trial-timeout", "2", "--n-initial", str(N_INITIAL),
                    "--systematic-failures", "0", "--no-final-test", "--no-report",
                    "--trial-command", trainer]

    def start(self) -> subprocess.Popen[str]:
        env = {**os.environ, TOKEN_ENV: self.token}
        return subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env, start_new_session=True)

    def damage(self, kind: str) -> bool:
        """Damage the journal (see the module docstring); False when there is none yet."""
        journal = self.view / "results.jsonl"
        if not journal.exists():
            return False
        lines = read_lines(journal)
        real = [ln for ln in lines if ln not in self.injected] or [b'{"trial": 1, "params": {}}']
        if kind == "torn":
            line = self.rng.choice(real)
            frag = line[: max(1, len(line) // 2)]
            data = frag  # no newline: the next record must not be glued to it
        elif kind == "wrongtypes":
            frag = json.dumps({"trial": self.rng.randint(1, 50), "params": {}, "run_status": "ok",
                               "metrics": [1, 2], "episode_rewards": 5,
                               "model_path": 123}).encode()
            data = frag + b"\n"
        elif kind == "garbage":
            frag = bytes(self.rng.choice([b for b in range(256) if b != 10]) for _ in range(60))
            frag = b"\xff\xfe" + frag
            data = frag + b"\n"
        else:
            frag = b'{"trial": 3, "params": ' + b"[" * 100000 + b"]" * 100000 + b"}"
            data = frag + b"\n"
        if lines and not journal.read_bytes().endswith(b"\n"):
            data = b"\n" + data
        with open(journal, "ab") as fh:
            fh.write(data)
        self.injected.add(frag)
        self.snapshot = journal.read_bytes()
        return True

    def check(self, where: str, ended_by_itself: bool, champion_copy: bool = True) -> bool:
        """Every invariant of the module docstring; returns True when all hold."""
        c, ok = self.counts, True

        def bad(what: str) -> None:
            nonlocal ok
            ok = False
            c.problems.append(f"{where}: {what}")

        journal = self.view / "results.jsonl"
        data = journal.read_bytes() if journal.exists() else b""
        if not data.startswith(self.snapshot):
            c.journal_shrunk += 1
            bad("the journal was rewritten or shrank")
        self.snapshot = data
        recs, partial = parse_records(journal, self.injected)
        if partial:
            c.partial_records += len(partial)
            bad(f"{len(partial)} partial record(s): {partial[0][:80]!r}")
        ids = [r["trial"] for r in recs]
        dups = len(ids) - len(set(ids))
        if dups:
            c.records_duplicated += dups
            bad(f"{dups} duplicated trial id(s)")
        finished = sum(r["run_status"] != "interrupted" for r in recs)
        if finished > self.trials + CONFIRM_SEEDS:
            c.trials_over_limit += 1
            bad(f"{finished} finished trials > --trials {self.trials} + {CONFIRM_SEEDS}")
        champ, wrong = fold(recs, n_initial=min(N_INITIAL, self.trials))
        if wrong:
            c.champion_mismatches += 1
            bad(f"champion flags disagree with the fold at trials {wrong}")
        if ended_by_itself:
            left = temp_files(self.view)
            if left:
                c.temp_files_left += len(left)
                bad(f"temporary files left: {left[:3]}")
            manifest = self.view / "models/champion/manifest.json"
            if champ is not None and champion_copy:
                try:
                    m = json.loads(manifest.read_text())
                    same = (m["trial"] == champ["trial"] and
                            (self.view / "models/champion/model.zip").read_bytes()
                            == (self.view / champ["model_path"]).read_bytes())
                except (OSError, ValueError, KeyError):
                    same = False
                if not same:
                    c.champion_mismatches += 1
                    bad(f"models/champion does not hold trial {champ['trial']}")
        return ok

    def wait_orphans(self) -> bool:
        deadline = time.monotonic() + GRACE + 3.0
        while time.monotonic() < deadline:
            if not token_processes(self.token):
                return True
            time.sleep(0.05)
        left = token_processes(self.token)
        self.counts.orphans += len(left)
        self.counts.problems.append(f"{len(left)} process(es) outlived the controller")
        for pid in left:  # clean up for the next round (by recorded pid, never by name)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return False

    def lost(self) -> int:
        recs, _ = parse_records(self.view / "results.jsonl", self.injected)
        recorded = {r["trial"] for r in recs}
        dirs = [p for p in (self.view / "models").glob("trial-*") if (p / "launch.json").exists()]
        return sum(int(p.name.split("-")[1]) not in recorded for p in dirs)


def finish(proc: subprocess.Popen[str], study: Study, timeout: float) -> int:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        study.counts.problems.append(f"controller did not finish in {timeout:g} s")
        return -1
    marker = "Traceback (most recent call last)"  # a Python traceback of the controller
    if marker in out:
        study.counts.tracebacks += 1
        study.counts.problems.append("traceback: " + out[out.index(marker):][:1500])
    code = proc.returncode
    study.counts.exit_codes[str(code)] = study.counts.exit_codes.get(str(code), 0) + 1
    return code


# --- phases -------------------------------------------------------------------------------
def kill_phase(base: Path, restarts: int, trials: int, rng: random.Random, c: Counts) -> int:
    """SIGKILL restarts over a sequence of studies, each run until it completes; returns the
    number of studies."""
    n_study = 0
    while c.kills < restarts:
        n_study += 1
        home = base / f"A{n_study}"
        home.mkdir()
        study = Study(home / "study", home / "study", trials, rng, [], 0, c)
        for i in range(1000):
            damaged = i % 2 == 1 and study.damage(DAMAGES[c.damages % len(DAMAGES)])
            if damaged:
                c.damages += 1
                c.faults_injected += 1
            proc = study.start()
            killing = c.kills < restarts
            try:
                proc.wait(timeout=rng.uniform(0.05, 4.0) if killing else 300)
                ended = True
            except subprocess.TimeoutExpired:
                if killing:
                    os.kill(proc.pid, signal.SIGKILL)  # the controller alone, not its group
                    c.kills += 1
                    c.faults_injected += 1
                ended = False
            code = finish(proc, study, 300)
            alive_ok = study.wait_orphans()
            where = f"study {n_study} run {i + 1} ({'exit ' + str(code) if ended else 'SIGKILL'})"
            ok = study.check(where, ended_by_itself=ended)
            if ended and code != 0:
                ok = False
                c.problems.append(f"{where}: controller exited {code}")
            # a run that was killed and also followed a damage survived two faults
            c.faults_survived += (int(not ended) + int(damaged)) * int(ok and alive_ok)
            if ended:
                break
        recs, _ = parse_records(study.view / "results.jsonl", study.injected)
        finished = sum(r["run_status"] != "interrupted" for r in recs)
        if not trials <= finished <= trials + CONFIRM_SEEDS:
            c.problems.append(f"study {n_study} ended with {finished} finished trials, not "
                              f"{trials} to {trials + CONFIRM_SEEDS}")
        c.records_lost += study.lost()
        c.confirmation_runs += sum(r.get("confirms") is not None and r["run_status"] != "interrupted"
                                   for r in recs)
        c.crownings += sum(bool(r.get("champion")) for r in recs)
    return n_study


def _namespace(mount_dir: Path, mb: int) -> subprocess.Popen[bytes] | None:
    """A process holding a private mount namespace with a tmpfs of ``mb`` MiB at mount_dir."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return None
    flags = ["-m"] if os.geteuid() == 0 else ["-r", "-m"]
    holder = subprocess.Popen(["unshare", *flags, "--propagation", "private", "sleep", "100000"])
    time.sleep(0.3)
    enter = ["nsenter", "-t", str(holder.pid), "-m"] + (["-U", "--preserve-credentials"]
                                                          if os.geteuid() else [])
    res = subprocess.run([*enter, "mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs",
                          str(mount_dir)], capture_output=True, text=True)
    if res.returncode != 0:
        holder.kill()
        holder.wait()
        return None
    holder.enter = enter  # type: ignore[attr-defined]
    return holder


def disk_phase(base: Path, rounds: int, trials: int, mb: int, rng: random.Random,
               c: Counts) -> str:
    mnt = base / "B"
    mnt.mkdir()
    holder = _namespace(mnt, mb)
    if holder is None:
        return "skipped: no mount namespace (needs root or user namespaces, unshare, nsenter)"
    try:
        view = Path(f"/proc/{holder.pid}/root") / str(mnt).lstrip("/")
        (view / "space.json").write_text(json.dumps(SPACE))
        study = Study(mnt / "study", view / "study", trials, rng, holder.enter, 96, c)  # type: ignore[attr-defined]
        filler = view / "filler"
        for i in range(rounds):
            stat = os.statvfs(view)
            free = stat.f_bavail * stat.f_frsize
            keep = rng.randint(0, 300) * 1024
            try:
                with open(filler, "wb") as fh:
                    fh.truncate(0)
                    chunk = b"\0" * (1 << 16)
                    left = max(free - keep, 0)
                    while left > 0:
                        left -= fh.write(chunk[:min(left, len(chunk))])
            except OSError:
                pass
            c.disk_rounds += 1
            c.faults_injected += 1
            proc = study.start()
            code = finish(proc, study, 120)
            alive_ok = study.wait_orphans()
            # a full disk may defer the champion copy (repaired at the next start): the
            # copy is checked after runs that ended 0, the flags always
            ok = study.check(f"disk round {i + 1} (exit {code}, {keep // 1024} KiB free)",
                             ended_by_itself=True, champion_copy=code == 0)
            c.disk_full_runs += int(code == 4)
            if code not in (0, 4):
                ok = False
                c.problems.append(f"disk round {i + 1}: controller exited {code}")
            c.faults_survived += int(ok and alive_ok)
            filler.unlink(missing_ok=True)
        proc = study.start()
        code = finish(proc, study, 300)
        study.wait_orphans()
        study.check("disk phase final run", ended_by_itself=True)
        if code != 0:
            c.problems.append(f"final run of the disk phase exited {code}")
        c.records_lost += study.lost()
        return f"tmpfs of {mb} MiB in a private mount namespace"
    finally:
        holder.kill()
        holder.wait()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--restarts", type=int, default=60, help="controller SIGKILL restarts")
    p.add_argument("--trials", type=int, default=8, help="--trials of each kill-phase study")
    p.add_argument("--disk-rounds", type=int, default=10, help="full-disk rounds")
    p.add_argument("--disk-trials", type=int, default=40, help="--trials of the disk-phase study")
    p.add_argument("--disk-mb", type=int, default=8, help="size of the small file system (MiB)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the fault schedule")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args()
    rng = random.Random(args.seed)
    c = Counts()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="donkeyrl-soak-") as tmp:
        studies = kill_phase(Path(tmp), args.restarts, args.trials, rng, c)
        disk = disk_phase(Path(tmp), args.disk_rounds, args.disk_trials, args.disk_mb, rng, c) \
            if args.disk_rounds else "not run"
    out = {**{k: v for k, v in vars(c).items() if k != "problems"}, "studies": studies, "disk": disk,
           "problems": c.problems[:20], "wall_s": round(time.perf_counter() - t0, 1),
           "load": round(os.getloadavg()[0], 2), "seed": args.seed}
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    clean = not c.problems and c.faults_survived == c.faults_injected
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
