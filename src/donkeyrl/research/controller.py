"""The autoresearch loop: propose, run, record, crown, publish; resume after any crash.

One thread, one event loop. Trials are subprocesses (runner.py) polled every
``poll_interval`` seconds, so timeouts, parallel workers and signals need no threads:

1. Start: lock the study dir, read the journal (reporting torn / corrupt lines), reap and
   record trials a crashed controller left running (PID files), repair ``models/champion`` to
   match the fold over the records, tell the optimizer every usable record plus warm-start
   data. Trial numbers continue after the highest recorded one.
2. While fewer than ``trials`` trials are finished: keep up to ``workers`` trials running.
   Proposals come from ``Optimizer.ask_batch`` with the running trials as ``pending``, so
   parallel proposals differ; the top-5 candidates (mean, std, UCB) are logged. After a trial
   ends: record (append + fsync), update the champion, tell the optimizer, publish every
   ``--push-every`` trials, wait ``cooldown`` before the next launch.
3. Stop on ``trials`` reached, convergence (``until_converged``), SIGINT/SIGTERM/SIGHUP (unless
   ignored, as under nohup), or a journal
   write failure. On every exit path running trials' process groups are killed and reaped and
   recorded as ``interrupted`` (when the journal is writable), so no child is left behind.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from donkeyrl.bo import Optimizer, SearchSpace

from .champion import ChampionStore, beats, fold_champion
from .config import LogReporter, Progress, Reporter, StudyConfig
from .journal import Journal, JournalWriteError
from .lock import StudyLock
from .publish import Publisher
from .records import TrialRecord
from .result import parse_outcome, unused_params
from .runner import Finished, TrialProcess, TrialSpec
from .space import default_space, load_space
from .study import (StudyLog, StudyPaths, ensure_writable, recover_running, tell_records,
                    write_study_json)
from .trialcmd import build_argv

__all__ = ["Controller", "StudyError", "StudySummary"]

log = logging.getLogger(__name__)


class StudyError(RuntimeError):
    """The study cannot start or continue (unwritable dir, full disk); records are intact."""


@dataclass(frozen=True)
class StudySummary:
    """How a run ended."""

    completed: int
    """Finished (non-interrupted) trials in the whole study."""
    new_records: int
    """Records appended by this run (interrupted ones included)."""
    champion: TrialRecord | None
    stop_reason: str
    journal_problems: int
    """Torn, corrupt or duplicate lines found in the journal at start."""


class Controller:
    """Runs one study; ``run()`` blocks until it stops (see the module docstring)."""

    def __init__(self, config: StudyConfig, reporter: Reporter | None = None) -> None:
        self.cfg = config
        self.reporter: Reporter = reporter or LogReporter()
        self.paths = StudyPaths(config.study_dir)
        self.journal = Journal(self.paths.journal)
        self.study_log = StudyLog(self.paths.study_log)
        self.store = ChampionStore(self.paths.root)
        self.publisher = Publisher(self.paths.root, config.publish)
        self.cwd = (config.cwd or Path.cwd()).resolve()
        if config.search_space is not None:
            self.space: SearchSpace = load_space(config.search_space, config.min_timesteps,
                                                 config.max_timesteps)
        else:
            self.space = default_space(config.agent, config.min_timesteps, config.max_timesteps)
        self.records: list[TrialRecord] = []
        self.warm_start: list[Path] = list(config.warm_start)
        self.champion: TrialRecord | None = None
        self.running: dict[int, TrialProcess] = {}
        self.stop_reason = ""
        self._t0 = time.monotonic()
        self._finished_this_run = 0
        self._new_records = 0

    # --- start-up -------------------------------------------------------------------------
    def _open(self) -> tuple[StudyLock, int]:
        try:
            self.paths.create()
            ensure_writable(self.paths.root)
        except OSError as exc:
            raise StudyError(f"cannot use study directory {self.paths.root}: "
                             f"{exc.strerror or exc}") from exc
        lock = StudyLock(self.paths.root)
        lock.acquire()
        try:
            return lock, self._replay()
        except BaseException:
            lock.release()
            raise

    def _note(self, text: str) -> None:
        self.reporter.note(text)
        self.study_log.line(text)

    def _replay(self) -> int:
        read = self.journal.read()
        for p in read.problems:
            self._note(f"journal {self.paths.journal.name} {p}")
        self.records = read.records
        known = {r.trial for r in self.records}
        for rec in recover_running(self.paths, self.journal, known, objective=self.cfg.objective,
                                   cwd=self.cwd, grace=self.cfg.kill_grace):
            rec.champion = beats(rec, fold_champion(self.records))
            self._append(rec)
            self._note(f"trial {rec.trial} was running when the previous controller stopped: "
                       f"recorded as {rec.run_status}")
        self.champion = fold_champion(self.records)
        self._note(self.store.ensure(self.champion))
        info = {"agent": self.cfg.agent, "objective": self.cfg.objective,
                "space": self.space.to_dict(), "trial_command": self.cfg.trial_command}
        warnings, files = write_study_json(self.paths, info,
                                           [str(Path(p).resolve()) for p in self.cfg.warm_start])
        for w in warnings:
            self._note(f"warning: {w}")
        self.warm_start = [Path(f) for f in files]
        return len(read.problems)

    def _make_optimizer(self, next_trial: int) -> Optimizer:
        opt = Optimizer(self.space, kappa=self.cfg.explore, n_initial=self.cfg.n_initial,
                        seed=self.cfg.seed + next_trial)
        for path in self.warm_start:
            if not Path(path).is_file():
                raise StudyError(f"--warm-start file {path} does not exist")
            read = Journal(path).read()
            told, skipped = tell_records(opt, read.records, self.cfg.objective, f"warm start {path}")
            self._note(f"warm start {path}: {told} records used, {skipped} skipped, "
                       f"{len(read.problems)} bad lines")
        told, skipped = tell_records(opt, self.records, self.cfg.objective, "journal")
        if self.records:
            self._note(f"resumed: {len(self.records)} records replayed ({told} told to the "
                       f"optimizer, {skipped} skipped)")
        return opt

    # --- bookkeeping ------------------------------------------------------------------------
    @property
    def completed(self) -> int:
        return sum(r.run_status != "interrupted" for r in self.records)

    def _progress(self) -> Progress:
        elapsed = time.monotonic() - self._t0
        remaining = max(self.cfg.trials - self.completed, 0)
        eta = (elapsed / self._finished_this_run * remaining) if self._finished_this_run else None
        return Progress(self.completed, self.cfg.trials, len(self.running), elapsed, eta,
                        self.champion)

    def _append(self, rec: TrialRecord) -> None:
        try:
            self.journal.append(rec)
        except JournalWriteError as exc:
            raise StudyError(str(exc)) from exc
        self.records.append(rec)
        self._new_records += 1

    # --- trials -----------------------------------------------------------------------------
    def _launch(self, trial: int, params: dict[str, Any]) -> None:
        seed = self.cfg.seed + trial
        spec = TrialSpec(
            trial=trial, params=params,
            argv=build_argv(self.cfg.trial_command, params=params, agent=self.cfg.agent,
                            tracks=self.cfg.tracks, eval_episodes=self.cfg.eval_episodes,
                            seed=seed, save_dir=self.paths.trial_dir(trial).resolve(),
                            result_file=self.paths.result_file(trial).resolve(),
                            reward=self.cfg.reward, trial=trial,
                            study_dir=self.paths.root.resolve(), extra_args=self.cfg.extra_args),
            result_file=self.paths.result_file(trial).resolve(),
            log_file=self.paths.trial_log(trial).resolve(),
            model_dir=self.paths.trial_dir(trial).resolve(), seed=seed,
            timeout=self.cfg.trial_timeout, cwd=self.cwd)
        try:
            self.running[trial] = TrialProcess(spec, self.paths.running,
                                               kill_grace=self.cfg.kill_grace)
        except OSError as exc:
            self._record(spec, Finished(None, 0.0, "crashed", f"cannot start the trial: {exc}"))
            return
        self.reporter.started(trial, params, self._progress())

    def _record(self, spec: TrialSpec, fin: Finished, opt: Optimizer | None = None) -> TrialRecord:
        parsed = parse_outcome(spec.result_file, fin.exit_code, objective=self.cfg.objective,
                               cwd=self.cwd, log_file=spec.log_file, killed=fin.killed,
                               kill_message=fin.kill_message)
        if parsed.used_params:
            unused = unused_params(spec.params, parsed.used_params)
            if unused:
                log.warning("trial %d: searched parameters did not reach the trainer: %s",
                            spec.trial, "; ".join(unused))
                parsed.message = "; ".join(filter(None, [
                    parsed.message, "searched parameters not applied: " + "; ".join(unused)]))
        rec = TrialRecord(
            trial=spec.trial, params=spec.params, run_status=parsed.run_status,
            message=parsed.message, objective_name=self.cfg.objective,
            objective=parsed.objective, mean_reward=parsed.mean_reward,
            std_reward=parsed.std_reward, episode_rewards=parsed.episode_rewards,
            driving_score=parsed.driving_score, metrics=parsed.metrics,
            used_params=parsed.used_params, noise=parsed.noise,
            reward_hacking=parsed.reward_hacking, model_path=self.paths.rel(parsed.model_path),
            elapsed_sec=round(fin.elapsed_sec, 3), seed=spec.seed,
            log_path=self.paths.rel(spec.log_file), exit_code=fin.exit_code)
        rec.champion = beats(rec, self.champion)
        self._append(rec)
        if spec.trial in self.running:
            self.running.pop(spec.trial).remove_pid_file()
        if rec.champion:
            self.champion = rec
            try:
                self.store.install(rec)
            except OSError as exc:  # repaired by ChampionStore.ensure at the next start
                log.error("cannot install champion trial %d: %s", rec.trial, exc)
        if opt is not None and rec.run_status != "interrupted":
            tell_records(opt, [rec], self.cfg.objective, "trial")
        if rec.run_status != "interrupted":
            self._finished_this_run += 1
        self._log_record(rec)
        return rec

    def _log_record(self, rec: TrialRecord) -> None:
        champ = self.champion
        champ_txt = (f"champion: trial {champ.trial} ({champ.objective_name}={champ.objective:.4g})"
                     if champ else "champion: none")
        value = "-" if rec.objective is None else f"{rec.objective:.4g}"
        flags = " NEW CHAMPION" if rec.champion else ""
        flags += " REWARD-HACKING-FLAG" if rec.reward_hacking else ""
        msg = f" ({rec.message})" if rec.message else ""
        self.study_log.line(
            f"trial {rec.trial} {rec.run_status} {rec.objective_name}={value} "
            f"mean_reward={rec.mean_reward} elapsed={rec.elapsed_sec:.1f}s params={rec.params}"
            f"{flags}{msg} | {champ_txt}")
        self.reporter.finished(rec, self._progress())

    def _propose(self, opt: Optimizer, n: int, first_trial: int) -> list[dict[str, Any]]:
        pending = [tp.spec.params for tp in self.running.values()]
        try:
            proposals = opt.ask_batch(n, pending)
        except Exception as exc:
            log.exception("optimizer failed; proposing at random this time")
            self._note(f"optimizer failed ({exc!r}): random proposals")
            return self.space.sample(opt.rng, n)
        for i, params in enumerate(proposals):
            cands = opt.last_candidates if i == 0 else []
            self.reporter.proposal(first_trial + i, params, cands)
            if cands:
                self.study_log.line(f"proposal for trial {first_trial + i}: top candidates " +
                                    "; ".join(f"{c.params} mean={c.mean:.4g} std={c.std:.4g} "
                                              f"ucb={c.ucb:.4g}" for c in cands))
        return proposals

    # --- the loop ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop_reason = f"stopped by {signal.Signals(signum).name}"

    def run(self) -> StudySummary:
        """Run the study until it stops; raises StudyError / StudyLockedError on setup errors."""
        lock, problems = self._open()
        handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                    continue  # started under nohup: keep ignoring hangups
                handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self._loop()
        finally:
            self._shutdown()
            for sig, h in handlers.items():
                signal.signal(sig, h)
            lock.release()
        return StudySummary(self.completed, self._new_records, self.champion,
                            self.stop_reason, problems)

    def _loop(self) -> None:
        next_trial = max((r.trial for r in self.records), default=0) + 1
        opt = self._make_optimizer(next_trial)
        not_before = 0.0
        converged = False
        self._note(f"study {self.paths.root}: {self.completed}/{self.cfg.trials} trials done, "
                   f"space {self.space.names}")
        while not self.stop_reason:
            remaining = self.cfg.trials - self.completed - len(self.running)
            free = self.cfg.workers - len(self.running)
            if not converged and remaining > 0 and free > 0 and time.monotonic() >= not_before:
                n = min(free, remaining)
                for i, params in enumerate(self._propose(opt, n, next_trial)):
                    self._launch(next_trial + i, params)
                next_trial += n
            for tp in list(self.running.values()):
                fin = tp.poll()
                if fin is None:
                    continue
                self._record(tp.spec, fin, opt)
                not_before = time.monotonic() + self.cfg.cooldown
                self.publisher.maybe_publish(self.completed, self._commit_message())
                if self.cfg.until_converged and not converged:
                    conv = opt.converged()
                    if conv.converged:
                        converged = True
                        self._note(f"optimizer converged: {conv.reason}; finishing running trials")
            if not self.running and (converged or self.cfg.trials - self.completed <= 0):
                self.stop_reason = "converged" if converged else f"{self.cfg.trials} trials done"
                break
            time.sleep(self.cfg.poll_interval)

    def _commit_message(self) -> str:
        champ = self.champion
        best = f"champion trial {champ.trial} {champ.objective_name}={champ.objective:.4g}" \
            if champ else "no champion"
        return f"{self.paths.root.name}: {self.completed} trials, {best}"

    def _shutdown(self) -> None:
        """Kill and record running trials, publish once more; never leaves a child behind."""
        reason = self.stop_reason or "controller error"
        # kill everything first, so that no failure while recording can leave a child behind
        killed = [(tp, tp.kill("interrupted", f"{reason} while the trial ran"))
                  for tp in list(self.running.values())]
        for tp, fin in killed:
            try:
                self._record(tp.spec, fin)
            except Exception as exc:
                log.error("trial %d not recorded: %s", tp.spec.trial, exc)
                self.running.pop(tp.spec.trial, None)
        if self._new_records and self.publisher.enabled:
            self.publisher.publish(self._commit_message())
        self._note(f"controller stopped: {reason}; {self.completed}/{self.cfg.trials} trials, "
                   f"{self._commit_message()}")
