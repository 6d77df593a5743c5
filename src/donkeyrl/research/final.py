"""The final, honest test of a finished study: its champion on the test set, head to head.

The champion was selected on the validation set, so its validation score is optimistic; the
test set (``donkeyrl.sim.tracksets``) was never used to select anything. When a study ends
normally (trials reached or converged) with a champion, ``donkeyrl research`` calls
:func:`run_final_test`, which

1. trains the documented hand-tuned baseline (``donkeyrl.rl.headtohead.baseline_overrides``:
   PPO, the mixed catalogue + procedural regime, domain randomisation) with the champion's step
   budget and seed, by the study's trial command (``donkeyrl train`` by default), into
   ``<study>/final/baseline/``; the study's extra train arguments (``--train-arg``, simulator
   flags) come along where they apply: not those the baseline sets itself (agent, tracks, domain
   randomisation, budget, seed, outputs, ``--init-model``), nor parameters that do not apply to
   a continuous-action PPO; its output goes to ``logs/final-baseline.log``;
2. races the champion (``models/champion``), the baseline and the scripted expert on every test
   track with ``donkeyrl evaluate --set test --baseline <study>/final/baseline --out <study>``
   (always on the built-in simulator, where every test track exists), which writes
   ``<study>/head_to_head.json`` and ``head_to_head.txt``; its output goes to
   ``logs/final-test.log``;
3. writes the marker ``<study>/final/final.json`` naming the champion's SHA-256.

Both steps run as subprocesses under the trial leader in their own process group with the
study's trial timeout (research/runner.py; PID files in ``<study>/final/running/``, away from
the trials'), so a hung step is killed and Ctrl-C stops it cleanly. The study lock is held
meanwhile. Idempotent: a resumed study whose champion has the marker's SHA-256 is not tested
again (the table is printed from the file); a new champion is. A baseline already trained with
the same budget, seed and command line is reused. A failure never touches the records or the
champion: it is reported in one line (``donkeyrl research`` exits 7) and a re-run retries.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .champion import ChampionStore, sha256_of
from .files import read_regular, write_json_atomic
from .lock import StudyLock, StudyLockedError
from .records import now_iso
from .result import clip_message, log_tail, parse_outcome
from .runner import Finished, TrialProcess, TrialSpec, read_pid_files, reap_leftover, remove_trial_tmp
from .trialcmd import param_flags, render_template

__all__ = ["FinalConfig", "FinalResult", "run_final_test", "baseline_argv", "applicable_args",
           "DEFAULT_EVALUATE_COMMAND", "MARKER", "FINAL_DIR"]

log = logging.getLogger(__name__)

DEFAULT_EVALUATE_COMMAND = "{python} -m donkeyrl evaluate"
FINAL_DIR = "final"
MARKER = "final.json"
HEAD_TO_HEAD = "head_to_head"
"""Stem of the head-to-head files ``donkeyrl evaluate --out`` writes into the study."""

#: Flags the baseline sets itself (or must not get): dropped from the study's extra arguments.
_BASELINE_OWN = frozenset({"agent", "track", "tracks", "domain_randomization", "timesteps", "seed",
                           "save_dir", "result_file", "eval_episodes", "init_model", "tensorboard",
                           "actions", "env"})


@dataclass(frozen=True)
class FinalConfig:
    """What the final test needs from the study."""

    study_dir: Path
    train_command: str
    """The study's trial command template (trains the baseline)."""
    evaluate_command: str = DEFAULT_EVALUATE_COMMAND
    """Command template of the evaluation (``donkeyrl evaluate`` by default)."""
    extra_args: tuple[str, ...] = ()
    """The study's extra train arguments (filtered by :func:`applicable_args`)."""
    eval_episodes: int = 5
    timeout: float = 360.0
    """Seconds allowed to each of the two steps."""
    kill_grace: float = 3.0
    cwd: Path | None = None
    poll_interval: float = 0.1


@dataclass(frozen=True)
class FinalResult:
    """How the final test went."""

    status: str
    """``done``, ``skipped`` (the same champion was tested before), ``failed`` or
    ``interrupted`` (Ctrl-C / SIGTERM while it ran)."""
    message: str
    table: str = ""
    """The head-to-head table (head_to_head.txt), when there is one."""


def applicable_args(extra_args: tuple[str, ...] | list[str]) -> list[str]:
    """The study's extra train arguments that apply to the baseline (see the module docstring).

    Arguments are grouped as ``--flag [values...]`` (or ``--flag=value``); a group is dropped
    when the baseline sets the flag itself or the parameter does not apply to continuous PPO.
    """
    from donkeyrl.rl.config import param_infos
    from donkeyrl.rl.headtohead import BASELINE

    infos = param_infos()
    groups: list[list[str]] = []
    for word in extra_args:
        if word.startswith("--") or not groups:
            groups.append([word])
        else:
            groups[-1].append(word)
    out: list[str] = []
    for group in groups:
        name = group[0].split("=", 1)[0].lstrip("-").replace("-", "_")
        info = infos.get(name)
        if name in _BASELINE_OWN or (info is not None and (
                info.requires is not None or (info.agents is not None and BASELINE["agent"] not in info.agents))):
            log.info("final test: %s does not apply to the baseline: left out", " ".join(group))
            continue
        out += group
    return out


def baseline_argv(cfg: FinalConfig, timesteps: int, seed: int, save_dir: Path) -> list[str]:
    """The command line that trains the baseline with ``timesteps`` and ``seed``."""
    from donkeyrl.rl.headtohead import baseline_overrides

    params = dict(baseline_overrides(timesteps=timesteps, seed=seed))
    agent = str(params.pop("agent"))
    tracks = [str(t) for t in params.pop("tracks")]
    argv = render_template(cfg.train_command, trial=0, study_dir=cfg.study_dir.resolve(),
                           trial_dir=save_dir)
    argv += ["--agent", agent, "--track", *tracks, "--eval-episodes", str(cfg.eval_episodes),
             "--save-dir", str(save_dir), "--result-file", str(save_dir / "result.json")]
    return argv + param_flags(params) + applicable_args(cfg.extra_args)


class _Stop:
    """SIGINT / SIGTERM / SIGHUP while the final test runs: stop it (installed from the main
    thread only)."""

    def __init__(self) -> None:
        self.signum = 0
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                    continue
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _run(spec: TrialSpec, pid_dir: Path, cfg: FinalConfig, stop: _Stop) -> Finished:
    """Run one step to its end (or its timeout, or a stop signal)."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    proc = TrialProcess(spec, pid_dir, kill_grace=cfg.kill_grace)
    try:
        while True:
            fin = proc.poll()
            if fin is not None:
                return fin
            if stop.signum:
                name = signal.Signals(stop.signum).name
                return proc.kill("interrupted", f"stopped by {name}")
            time.sleep(cfg.poll_interval)
    finally:
        proc.remove_pid_file()
        remove_trial_tmp(spec.model_dir)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(read_regular(path, 1 << 24).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _budget(store: ChampionStore, manifest: dict[str, Any]) -> tuple[int, int]:
    """The champion's (timesteps, seed): its searched params, else its trial_config.json."""
    params = manifest.get("params") if isinstance(manifest.get("params"), dict) else {}
    timesteps = params.get("timesteps") if isinstance(params, dict) else None
    seed = manifest.get("seed")
    if not isinstance(timesteps, int) or isinstance(timesteps, bool):
        run = _read_json(store.dir / "trial_config.json").get("run")
        timesteps = run.get("timesteps") if isinstance(run, dict) else None
    if not isinstance(timesteps, int) or isinstance(timesteps, bool):
        raise ValueError("cannot tell the champion's step budget (no timesteps in its params or "
                         "its trial_config.json)")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("the champion's manifest names no seed")
    return timesteps, seed


def _table(study: Path) -> str:
    try:
        return (study / f"{HEAD_TO_HEAD}.txt").read_text(encoding="utf-8").rstrip()
    except (OSError, UnicodeDecodeError):
        return ""


def run_final_test(cfg: FinalConfig) -> FinalResult:
    """Steps 1-3 of the module docstring; never raises for a failed step (see FinalResult)."""
    study = Path(cfg.study_dir)
    lock = StudyLock(study)
    try:
        lock.acquire()
    except (StudyLockedError, OSError) as exc:
        return FinalResult("failed", f"cannot lock the study for the final test: {exc}")
    try:
        with _Stop() as stop:
            return _final(cfg, study, stop)
    finally:
        lock.release()


def _final(cfg: FinalConfig, study: Path, stop: _Stop) -> FinalResult:
    store = ChampionStore(study)
    manifest = store.manifest()
    if manifest is None or not store.model.is_file():
        return FinalResult("failed", f"no champion model in {store.dir} to test")
    sha = sha256_of(store.model)
    final = study / FINAL_DIR
    marker = _read_json(final / MARKER)
    if marker.get("champion_sha256") == sha and (study / f"{HEAD_TO_HEAD}.json").is_file():
        return FinalResult("skipped", f"the champion (trial {manifest.get('trial')}) was tested "
                           f"on {marker.get('finished_at', '?')}: not tested again", _table(study))
    try:
        timesteps, seed = _budget(store, manifest)
    except ValueError as exc:
        return FinalResult("failed", str(exc))
    cwd = (cfg.cwd or Path.cwd()).resolve()
    running = final / "running"
    for info in read_pid_files(running):  # a final test killed with its controller
        log.warning("final test: %s", reap_leftover(info, cfg.kill_grace))
        Path(info["_path"]).unlink(missing_ok=True)
    base_dir = (final / "baseline").resolve()
    argv = baseline_argv(cfg, timesteps, seed, base_dir)
    logs = study / "logs"
    trained = marker.get("baseline")
    reuse = (isinstance(trained, dict) and trained.get("argv") == argv
             and (base_dir / "model.zip").is_file())
    if not reuse:
        spec = TrialSpec(trial=0, params={"timesteps": timesteps, "seed": seed}, argv=argv,
                         result_file=base_dir / "result.json",
                         log_file=(logs / "final-baseline.log").resolve(), model_dir=base_dir,
                         seed=seed, timeout=cfg.timeout, cwd=cwd)
        try:
            fin = _run(spec, running, cfg, stop)
        except OSError as exc:
            return FinalResult("failed", f"cannot start the baseline's training: {exc}")
        if fin.killed == "interrupted":
            return FinalResult("interrupted", f"final test {fin.kill_message} while the baseline "
                               "trained")
        parsed = parse_outcome(spec.result_file, fin.exit_code, objective="mean_reward", cwd=cwd,
                               log_file=spec.log_file, killed=fin.killed,
                               kill_message=fin.kill_message, trial_dir=base_dir)
        if parsed.run_status != "ok":
            return FinalResult("failed", clip_message(
                f"training the baseline failed ({parsed.run_status}: {parsed.message}); see "
                f"{spec.log_file}"))
        write_json_atomic(final / MARKER, {**marker, "baseline": {
            "argv": argv, "timesteps": timesteps, "seed": seed, "trained_at": now_iso()}})
    return _evaluate(cfg, study, stop, store, manifest, sha, argv, timesteps, seed, cwd)


def _evaluate(cfg: FinalConfig, study: Path, stop: _Stop, store: ChampionStore,
              manifest: dict[str, Any], sha: str, argv: list[str], timesteps: int, seed: int,
              cwd: Path) -> FinalResult:
    final = study / FINAL_DIR
    base_dir = (final / "baseline").resolve()
    out_json = study / f"{HEAD_TO_HEAD}.json"
    before = out_json.stat().st_mtime_ns if out_json.exists() else None
    eval_argv = render_template(cfg.evaluate_command, trial=0, study_dir=study.resolve(),
                                trial_dir=final.resolve())
    eval_argv += ["--model", str(store.dir.resolve()), "--set", "test", "--baseline", str(base_dir),
                  "--out", str(study.resolve())]
    log_file = (study / "logs" / "final-test.log").resolve()
    spec = TrialSpec(trial=0, params={}, argv=eval_argv,
                     result_file=final.resolve() / ".evaluate-result-unused.json",
                     log_file=log_file, model_dir=final.resolve(), seed=seed,
                     timeout=cfg.timeout, cwd=cwd)
    try:
        fin = _run(spec, final / "running", cfg, stop)
    except OSError as exc:
        return FinalResult("failed", f"cannot start the evaluation: {exc}")
    if fin.killed == "interrupted":
        return FinalResult("interrupted", f"final test {fin.kill_message} while it raced the test set")
    if fin.killed:
        return FinalResult("failed", f"the evaluation on the test set was {fin.kill_message}; see "
                           f"{log_file}")
    after = out_json.stat().st_mtime_ns if out_json.exists() else None
    if fin.exit_code != 0 or after is None or after == before:
        tail = log_tail(log_file, n=1) or "no output"
        return FinalResult("failed", clip_message(
            f"the evaluation on the test set failed (exit {fin.exit_code}: {tail}); see {log_file}"))
    write_json_atomic(final / MARKER, {
        "champion_trial": manifest.get("trial"), "champion_sha256": sha,
        "head_to_head": f"{HEAD_TO_HEAD}.json", "finished_at": now_iso(),
        "baseline": {"argv": argv, "timesteps": timesteps, "seed": seed}})
    return FinalResult("done", f"champion trial {manifest.get('trial')} raced on the test set "
                       f"against the expert and the baseline ({timesteps} steps, seed {seed})",
                       _table(study))
