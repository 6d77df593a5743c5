"""The autoresearch loop: propose, run, record, crown, publish; resume after any crash.

One thread, one event loop. Trials run through an executor (research/executors: local process
groups, or detached actors on a Ray cluster) and are polled every ``poll_interval`` seconds, so
timeouts, parallel workers and signals need no threads; the controller never touches a trial's
processes itself:

0. Preflight (preflight.py, unless disabled): tracks, seed, trial program, git branch, the
   search space against the trainer's schema and a dry run of one trial's command line. A
   problem is a PreflightError before anything is created.
1. Start: refuse study files that are not regular files (a directory or FIFO at
   ``results.jsonl``), lock the study dir, check that the journal can be appended to, read it
   (reporting torn / corrupt lines), hand the trials a crashed controller left running (PID
   files) to the executor, which adopts those that still run (Ray) and reaps the others, record
   the ones not adopted and trial directories without a record (a torn line), repair
   ``models/champion``
   to match the fold over the records, tell the optimizer every usable record plus warm-start
   data. Trial numbers continue after the highest one ever used (never reused).
2. While fewer than ``trials`` trials are finished: keep up to ``workers`` trials running,
   interrupted trials first when ``rerun_interrupted`` (same params and seed), then the
   confirmation runs of a candidate champion (champion.py: same params, fresh seeds, record
   field ``confirms``), then new proposals. Proposals come from ``Optimizer.ask_batch`` with the
   running trials as ``pending``, so parallel proposals differ (under ``--objective pareto``
   from ParEGO, pareto.py); the top-5 candidates (mean, std, UCB) are logged. After a trial
   ends: fold it into the champion (champion.py; the record carries ``champion``, ``crowned``
   and, under Pareto, ``pareto_front``), record (append + fsync), install a new champion, tell
   the optimizer (every run, confirmation runs included: replicates let the GP learn the
   noise), publish every ``--push-every`` trials (a failure goes to study.log and is retried),
   wait ``cooldown`` before the next launch. A confirmation in progress when ``trials`` is
   reached (or the optimizer converged) is still completed: at most ``confirm_seeds`` trials
   past ``trials``. With early stopping (``prune``), every running trial but a confirmation
   run is judged whenever it reports a checkpoint (pruning.py); one below its rung's cut is
   cancelled and recorded ``pruned`` with its last score, steps and checkpoint model. A trial
   whose machine died is recorded ``lost``: like ``interrupted``, not counted and not told.
3. Stop on ``trials`` reached, convergence (``until_converged``), SIGINT/SIGTERM/SIGHUP (unless
   ignored, as under nohup), a systematic failure (the first ``systematic_failures`` trials of
   this run failed with the same error, or the trainer's result lacks the objective), or a
   StudyError: a journal write failure, a trial that cannot be launched, a disk that filled up
   during a trial (that trial is recorded ``interrupted``: not counted, not told to the
   optimizer). On every exit path running trials' process groups are killed and reaped and
   recorded as ``interrupted`` (when the journal is writable), so no child is left behind.

``StudySummary.failure`` says why a study ended without success (a systematic failure, or no
trial succeeded at all) and ``publish_error`` the git error the last publish ended with; the
CLI turns them into exit codes 5 and 6.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from donkeyrl.bo import Optimizer, SearchSpace

from .champion import ChampionFold, ChampionStore, Step
from .config import LogReporter, Progress, Reporter, StudyConfig
from .journal import Journal, JournalWriteError
from .lock import StudyLock
from donkeyrl.rl.checkpoints import ProgressPoint, format_fractions, read_progress, FRACTIONS_ENV

from .executors import Executor, TrialHandle, make_executor
from .pareto import ParetoProposer
from .preflight import preflight
from .pruning import PruneDecision, decide, unjudged_rung
from .publish import Publisher
from .records import NOT_RUN, PARETO_OBJECTIVES, RecordError, TrialRecord
from .result import ParsedOutcome, check_model_path, clip_message, log_tail, parse_outcome, unused_params
from .runner import LAUNCH_FILE, Finished, TrialSpec, progress_file, remove_trial_tmp
from .space import check_space_tracks, default_space, fix_params, load_space
from .study import (CONFIRM_FILE, StudyLog, StudyPaths, check_study_files, ensure_writable,
                    read_confirm_file, recover_running, recover_unrecorded,
                    remove_stale_temp_files, tell_records, used_trial_numbers, write_confirm_file,
                    write_study_json)
from .trialcmd import TRACK_PARAMS, build_argv

__all__ = ["Controller", "StudyError", "StudySummary", "LOW_DISK_BYTES"]

log = logging.getLogger(__name__)

PRUNE_CHECK_SEC = 0.25
"""Least seconds between two looks at the running trials' checkpoints."""

LOW_DISK_BYTES = 1 << 20
"""A failed trial with less free space than this (bytes) in the study directory is taken as a
victim of a full disk, not of its params."""

_DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded|ENOSPC|EDQUOT|"
                        r"File too large|EFBIG")


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
    failure: str = ""
    """Why the study ended without success ("" when it did not): a systematic failure, or no
    trial of the study succeeded."""
    publish_error: str = ""
    """The error of the last git publish of this run when it failed ("" otherwise)."""
    champion_mean: float | None = None
    """The champion's mean objective over its confirmed runs (its objective without
    confirmation)."""
    champion_runs: tuple[int, ...] = ()
    """The trials the champion's configuration was judged by (candidate + confirmation runs)."""
    pareto_front: tuple[TrialRecord, ...] = ()
    """Under ``--objective pareto``: the records on the final Pareto front."""

    @property
    def ended_normally(self) -> bool:
        """True when the study stopped because it was done (trials reached or converged)."""
        return not self.failure and (self.stop_reason == "converged"
                                     or self.stop_reason.endswith(" trials done"))


def failure_signature(rec: TrialRecord) -> str:
    """What makes two failures "the same error": the status and the message with numbers and
    the trial's own paths blanked out."""
    text = re.sub(r"trial-\d+", "trial-N", rec.message)
    text = re.sub(r"[-+]?\d+(\.\d+)?(e[-+]?\d+)?", "#", text)
    return f"{rec.run_status}: {text}"


class Controller:
    """Runs one study; ``run()`` blocks until it stops (see the module docstring)."""

    def __init__(self, config: StudyConfig, reporter: Reporter | None = None) -> None:
        """Raises SearchSpaceError / ValueError (one line) for a bad space or --init-model."""
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
        self.space_notes: list[str] = []
        if config.init_model is not None:
            config, self.space, self.space_notes = _fine_tuning(config, self.space)
        check_space_tracks(self.space)
        if config.prune.enabled and config.prune.objective != config.objective:
            config = dataclasses.replace(config, prune=dataclasses.replace(
                config.prune, objective=config.objective))
        self.cfg = config
        self.records: list[TrialRecord] = []
        self.warm_start: list[Path] = list(config.warm_start)
        self.fold = ChampionFold(config.champion_rule)
        self.executor: Executor | None = None
        self.running: dict[int, TrialHandle] = {}
        self.checkpoints: dict[int, list[ProgressPoint]] = {}
        """Checkpoint scores of every trial of the study (the history early stopping reads)."""
        self._judged: dict[int, list[float]] = collections.defaultdict(list)
        self._pruned: dict[int, tuple[PruneDecision, list[ProgressPoint]]] = {}
        self._prune_at = 0.0
        self.confirming: dict[int, int] = {}
        """Running confirmation runs: trial number -> the trial they confirm."""
        self._reached = False
        self._finishing: int | None = None
        self.stop_reason = ""
        self.failure = ""
        self.publish_error = ""
        self.next_trial = 1
        self.reruns: collections.deque[TrialRecord] = collections.deque()
        self._t0 = time.monotonic()
        self._finished_this_run = 0
        self._new_records = 0
        self._run_outcomes: list[TrialRecord] = []
        self._disk_full = ""
        self._ended_one = False

    # --- start-up -------------------------------------------------------------------------
    def _open(self) -> tuple[StudyLock, int]:
        try:
            self.paths.create()
            check_study_files(self.paths)
        except OSError as exc:
            raise StudyError(f"cannot use study directory {self.paths.root}: "
                             f"{exc.strerror or exc}") from exc
        lock = StudyLock(self.paths.root)
        try:
            lock.acquire()
        except OSError as exc:  # StudyLockedError is not an OSError: it passes through
            raise StudyError(f"cannot lock study directory {self.paths.root}: "
                             f"{exc.strerror or exc}") from exc
        try:
            try:
                ensure_writable(self.paths.root)
                self.journal.check_writable()
            except JournalWriteError as exc:
                raise StudyError(str(exc)) from exc
            except OSError as exc:
                raise StudyError(f"cannot use study directory {self.paths.root}: "
                                 f"{exc.strerror or exc}") from exc
            try:
                return lock, self._replay()
            except OSError as exc:  # JournalReadError, a full disk while writing study.json
                raise StudyError(f"cannot resume the study in {self.paths.root}: {exc}") from exc
        except BaseException:
            lock.release()
            raise

    def _note(self, text: str) -> None:
        self.reporter.note(text)
        self.study_log.line(text)

    @property
    def champion(self) -> TrialRecord | None:
        """The champion's record (the run whose model is installed)."""
        return self.fold.champion_record

    def _mark(self, rec: TrialRecord) -> Step:
        """Fold ``rec`` into the champion and write what it caused into its fields."""
        step = self.fold.step(rec)
        rec.champion = step.crowned is not None
        rec.crowned = step.crowned.trial if step.crowned else None
        rec.pareto_front = step.pareto_front
        return step

    def _announce(self, rec: TrialRecord, step: Step) -> None:
        """Notes for what a recorded trial caused (candidate, dropped, crowned)."""
        k = self.fold.rule.confirm_seeds
        if step.dropped is not None:
            origin, why = step.dropped
            self._note(f"configuration of trial {origin} not crowned: {why}")
        if step.crowned is not None and k:
            c = step.crowned
            self._note(f"configuration of trial {c.origin} confirmed: mean {rec.objective_name} "
                       f"{c.mean:.4g} over trials {[r.trial for r in c.runs]}; champion model: "
                       f"trial {c.trial}")
        if step.candidate is not None:
            cand = next(r for r in reversed(self.records) if r.trial == step.candidate)
            self._note(f"trial {cand.trial} is a candidate champion ({cand.objective_name}="
                       f"{cand.objective:.4g}): re-training its configuration on {k} fresh "
                       "seed(s) before it can be crowned")
    def _replay(self) -> int:
        for path in remove_stale_temp_files(self.paths):
            log.info("removed %s, left by a controller that was killed while writing it", path)
        read = self.journal.read()
        for p in read.problems:
            self._note(f"journal {self.paths.journal.name} {p}")
        self.records = read.records
        for rec in self.records:
            self.fold.step(rec)
        known = {r.trial for r in self.records}
        assert self.executor is not None
        recovered, adopted = recover_running(self.paths, self.executor, known,
                                             objective=self.cfg.objective, cwd=self.cwd)
        for rec in recovered:
            self._mark(rec)
            self._append(rec)
            self._note(f"trial {rec.trial} was running when the previous controller stopped: "
                       f"recorded as {rec.run_status}")
        for handle in adopted:
            trial = handle.spec.trial
            self.running[trial] = handle
            confirms = read_confirm_file(self.paths.trial_dir(trial))
            if confirms is not None:
                self.confirming[trial] = confirms
            self._note(f"trial {trial} still runs on the {self.executor.name} executor: adopted, "
                       "its result will be recorded when it ends")
        for rec in recover_unrecorded(self.paths, known, objective=self.cfg.objective,
                                      cwd=self.cwd):
            self._mark(rec)
            self._append(rec)
            self._note(f"trial {rec.trial} had no record in the journal: recovered from its "
                       f"directory as {rec.run_status}")
        self.next_trial = used_trial_numbers(self.paths, self.records) + 1
        if self.cfg.prune.enabled:
            self.checkpoints = {t: pts for t, d in self.paths.trial_dirs().items()
                                if (pts := read_progress(progress_file(d)))}
        self._note(self.store.ensure(self.fold.champion))
        pending = self.fold.pending
        if pending is not None:
            self._note(f"confirmation of trial {pending.trial} pending: "
                       f"{self.fold.runs_needed()} run(s) to go")
        for n in self.space_notes:
            self._note(f"--init-model: {n}")
        searched_tracks = sorted(TRACK_PARAMS & set(self.space.names))
        if searched_tracks:
            self._note(f"the space searches {searched_tracks[0]!r}: trials get the searched value "
                       f"instead of --track {' '.join(self.cfg.tracks)}")
        rule = self.fold.rule
        info = {"agent": self.cfg.agent, "objective": self.cfg.objective,
                "space": self.space.to_dict(), "trial_command": self.cfg.trial_command,
                "confirm_seeds": rule.confirm_seeds, "n_initial": rule.n_initial,
                "init_model": str(self.cfg.init_model) if self.cfg.init_model else None}
        warnings, files = write_study_json(self.paths, info,
                                           [str(Path(p).resolve()) for p in self.cfg.warm_start])
        for w in warnings:
            self._note(f"warning: {w}")
        self.warm_start = [Path(f) for f in files]
        if self.cfg.rerun_interrupted:
            self.reruns = collections.deque(self._interrupted_to_rerun())
            if self.reruns:
                self._note(f"--rerun-interrupted: re-running trials "
                           f"{[r.trial for r in self.reruns]} with their params and seeds")
        if self.cfg.tensorboard is not None:
            self._note(f"TensorBoard logs in {self.cfg.tensorboard} (one run per trial, named "
                       f"after its directory trial-N); view them with: "
                       f"tensorboard --logdir {self.cfg.tensorboard}")
        return len(read.problems)

    def _interrupted_to_rerun(self) -> list[TrialRecord]:
        """The first record of every interrupted trial that has no finished re-run yet."""
        done: set[int] = set()
        first: dict[int, TrialRecord] = {}
        for r in self.records:
            if r.confirms is not None:  # pending confirmations are rebuilt from the fold
                continue
            origin = r.rerun_of if r.rerun_of is not None else r.trial
            if r.run_status not in NOT_RUN:
                done.add(origin)
            elif origin not in first:
                first[origin] = r
        return [r for origin, r in first.items() if origin not in done and r.params]

    def _make_optimizer(self) -> Optimizer | ParetoProposer:
        opt: Optimizer | ParetoProposer
        if self.cfg.pareto:
            opt = ParetoProposer(self.space, kappa=self.cfg.explore, n_initial=self.cfg.n_initial,
                                 seed=self.cfg.seed + self.next_trial)
        else:
            opt = Optimizer(self.space, kappa=self.cfg.explore, n_initial=self.cfg.n_initial,
                            seed=self.cfg.seed + self.next_trial)
        for path in self.warm_start:
            try:
                read = Journal(path).read()
            except OSError as exc:  # a remembered file deleted since, a FIFO, ...
                self._note(f"warm start {path}: cannot be read ({exc}); skipped")
                continue
            told, skipped = self._tell(opt, read.records, f"warm start {path}")
            self._note(f"warm start {path}: {told} records used, {skipped} skipped, "
                       f"{len(read.problems)} bad lines")
        told, skipped = self._tell(opt, self.records, "journal")
        if self.records:
            self._note(f"resumed: {len(self.records)} records replayed ({told} told to the "
                       f"optimizer, {skipped} skipped)")
        return opt

    def _tell(self, opt: Optimizer | ParetoProposer, records: list[TrialRecord],
              source: str) -> tuple[int, int]:
        if isinstance(opt, ParetoProposer):
            return opt.tell_records(records, source)
        return tell_records(opt, records, self.cfg.objective, source)

    # --- bookkeeping ------------------------------------------------------------------------
    @property
    def completed(self) -> int:
        return sum(r.run_status not in NOT_RUN for r in self.records)

    def _progress(self) -> Progress:
        elapsed = time.monotonic() - self._t0
        remaining = max(self.cfg.trials - self.completed, 0)
        eta = (elapsed / self._finished_this_run * remaining) if self._finished_this_run else None
        champ = self.fold.champion
        return Progress(self.completed, self.cfg.trials, len(self.running), elapsed, eta,
                        self.champion, champ.mean if champ else None)

    def _append(self, rec: TrialRecord) -> None:
        try:
            try:
                self.journal.append(rec)
            except RecordError as exc:  # would not read back: keep the record, drop the extras
                log.error("trial %d: record not readable as is (%s): metrics dropped", rec.trial, exc)
                rec.metrics, rec.used_params = {}, {}
                rec.message = clip_message(f"{rec.message}; metrics dropped: {exc}".lstrip("; "))
                self.journal.append(rec)
        except JournalWriteError as exc:
            raise StudyError(str(exc)) from exc
        self.records.append(rec)
        self._new_records += 1

    # --- trials -----------------------------------------------------------------------------
    def _launch(self, trial: int, params: dict[str, Any], rerun: TrialRecord | None = None,
                confirms: int | None = None) -> None:
        """Start trial ``trial``; ``confirms``: it is a confirmation run of that trial."""
        seed = self.cfg.seed + trial
        rerun_of = None
        if rerun is not None:
            rerun_of = rerun.rerun_of if rerun.rerun_of is not None else rerun.trial
            seed = rerun.seed if rerun.seed is not None else self.cfg.seed + rerun_of
        save_dir = self.paths.trial_dir(trial).resolve()
        tb = self.cfg.tensorboard.resolve() if self.cfg.tensorboard else None
        spec = TrialSpec(
            trial=trial, params=params,
            argv=build_argv(self.cfg.trial_command, params=params, agent=self.cfg.agent,
                            tracks=self.cfg.tracks, eval_episodes=self.cfg.eval_episodes,
                            seed=seed, save_dir=save_dir,
                            result_file=self.paths.result_file(trial).resolve(),
                            reward=self.cfg.reward, trial=trial,
                            study_dir=self.paths.root.resolve(), extra_args=self.cfg.extra_args,
                            tensorboard=tb),
            result_file=self.paths.result_file(trial).resolve(),
            log_file=self.paths.trial_log(trial).resolve(),
            model_dir=save_dir, seed=seed, timeout=self.cfg.trial_timeout, cwd=self.cwd,
            rerun_of=rerun_of, env={FRACTIONS_ENV: format_fractions(
                self.cfg.prune.fractions if self.cfg.prune.enabled and confirms is None else ())})
        made_dir = not save_dir.exists()
        try:
            if confirms is not None:  # before the launch: a recovered trial keeps its role
                save_dir.mkdir(parents=True, exist_ok=True)
                write_confirm_file(save_dir, confirms)
            assert self.executor is not None
            self.running[trial] = self.executor.submit(spec)
        except OSError as exc:
            if made_dir:  # the runner rolled its files back; the directory was ours
                for name in (CONFIRM_FILE, LAUNCH_FILE):
                    (save_dir / name).unlink(missing_ok=True)
                try:
                    save_dir.rmdir()
                except OSError:
                    pass
            # Not the params' fault (a full disk, a vanished program): nothing is recorded,
            # counted or told to the optimizer, and the study stops until the cause is fixed.
            raise StudyError(
                f"cannot start trial {trial}: {exc.strerror or exc}"
                f"{' (' + exc.filename + ')' if getattr(exc, 'filename', None) else ''}; "
                "nothing was recorded for it. Free space or fix the cause and re-run the same "
                "command to resume") from exc
        if confirms is not None:
            self.confirming[trial] = confirms
        self.reporter.started(trial, params, self._progress())

    def _parse(self, spec: TrialSpec, fin: Finished) -> ParsedOutcome:
        try:
            return parse_outcome(spec.result_file, fin.exit_code, objective=self.cfg.objective,
                                 cwd=self.cwd, log_file=spec.log_file, killed=fin.killed,
                                 kill_message=fin.kill_message, trial_dir=spec.model_dir)
        except Exception as exc:  # a result no rule foresaw must not stop the study
            log.exception("trial %d: cannot classify the result", spec.trial)
            return ParsedOutcome("bad_result", clip_message(f"cannot read the result: {exc!r}"))

    def _victim_of_full_disk(self, spec: TrialSpec, parsed: ParsedOutcome) -> str:
        """Why a failed trial looks like it ran out of disk space, or ""."""
        if parsed.run_status in ("ok", "interrupted", "timeout", "pruned", "lost"):
            return ""
        text = f"{parsed.message} {log_tail(spec.log_file, n=20, limit=4000)}"
        match = _DISK_FULL.search(text)
        if match:
            return f"the trial failed with '{match.group(0)}'"
        try:
            free = shutil.disk_usage(self.paths.root).free
        except OSError:
            return ""
        if free < LOW_DISK_BYTES:
            return f"the study's disk has only {free} bytes free"
        return ""

    def _record(self, spec: TrialSpec, fin: Finished,
                opt: Optimizer | ParetoProposer | None = None) -> TrialRecord:
        parsed = self._parse(spec, fin)
        if parsed.run_status == "pruned":
            self._fill_pruned(spec, parsed)
        disk = self._victim_of_full_disk(spec, parsed)
        if disk:
            parsed = ParsedOutcome("interrupted", clip_message(
                f"disk full: {disk}; not counted (free space, then --rerun-interrupted re-runs "
                f"it); was {parsed.run_status}: {parsed.message}"))
            self._disk_full = disk
        if parsed.used_params:
            unused = unused_params(spec.params, parsed.used_params)
            if unused:
                log.warning("trial %d: searched parameters did not reach the trainer: %s",
                            spec.trial, "; ".join(unused))
                parsed.message = clip_message("; ".join(filter(None, [
                    parsed.message, "searched parameters not applied: " + "; ".join(unused)])))
        rec = TrialRecord(
            trial=spec.trial, params=spec.params, run_status=parsed.run_status,
            message=parsed.message, objective_name=self.cfg.objective,
            objective=parsed.objective, mean_reward=parsed.mean_reward,
            std_reward=parsed.std_reward, episode_rewards=parsed.episode_rewards,
            driving_score=parsed.driving_score, metrics=parsed.metrics,
            used_params=parsed.used_params, noise=parsed.noise,
            reward_hacking=parsed.reward_hacking, model_path=self.paths.rel(parsed.model_path),
            elapsed_sec=round(fin.elapsed_sec, 3), seed=spec.seed,
            log_path=self.paths.rel(spec.log_file), exit_code=fin.exit_code,
            rerun_of=spec.rerun_of, confirms=self.confirming.get(spec.trial),
            objectives=parsed.objectives)
        step = self._mark(rec)
        self._append(rec)
        self.confirming.pop(spec.trial, None)
        if spec.trial in self.running:
            self.running.pop(spec.trial).release()
        remove_trial_tmp(spec.model_dir)
        if self.cfg.prune.enabled:
            points = read_progress(spec.progress_file)
            if points:
                self.checkpoints[spec.trial] = points
            self._judged.pop(spec.trial, None)
        if step.crowned is not None:
            try:
                self.store.install(step.crowned)
            except OSError as exc:  # repaired by ChampionStore.ensure at the next start
                log.error("cannot install champion trial %d: %s", step.crowned.trial, exc)
        if opt is not None and rec.run_status not in NOT_RUN:
            self._tell(opt, [rec], "trial")
        if rec.run_status not in NOT_RUN:
            self._finished_this_run += 1
        if rec.run_status not in NOT_RUN and rec.run_status != "pruned":
            self._run_outcomes.append(rec)  # a pruned trial says nothing about the setup
        if parsed.missing_objective is not None and not any(
                r.value_of(self.cfg.objective) is not None for r in self.records):
            self.failure = (f"the trainer's result has no {self.cfg.objective!r}; choose "
                            f"--objective among its numeric fields: "
                            f"{', '.join(parsed.missing_objective) or '(none)'}")
        self._log_record(rec)
        self._announce(rec, step)
        return rec

    def _fill_pruned(self, spec: TrialSpec, parsed: ParsedOutcome) -> None:
        """A pruned trial's record fields: its last score, steps, checkpoints and model."""
        decision, points = self._pruned.pop(spec.trial, (None, read_progress(spec.progress_file)))
        parsed.metrics = {"checkpoints": [p.to_dict() for p in points]}
        if decision is not None:
            parsed.objective = decision.score
            parsed.metrics.update(pruned_steps=decision.steps, pruned_fraction=decision.fraction,
                                  pruned_cut=decision.cut)
        model = spec.model_dir / "model.zip"
        if not check_model_path(model, spec.model_dir):
            parsed.model_path = model

    def _check_pruning(self, opt: Optimizer | ParetoProposer) -> None:
        """Judge every running trial that reported a new checkpoint; stop those below the cut."""
        cfg = self.cfg.prune
        if not cfg.enabled or time.monotonic() < self._prune_at:
            return
        self._prune_at = time.monotonic() + PRUNE_CHECK_SEC
        for trial, handle in list(self.running.items()):
            if trial in self.confirming:  # a confirmation run is judged by its full budget
                continue
            points = handle.progress()
            if not points:
                continue
            self.checkpoints[trial] = points
            point = unjudged_rung(points, cfg.fractions, self._judged[trial])
            if point is None:
                continue
            self._judged[trial].append(point.fraction)
            decision = decide(cfg, trial, point, self.checkpoints)
            if decision is None:
                continue
            fin = handle.poll()  # it may have ended meanwhile: then it is recorded as it ended
            if fin is None:
                self._pruned[trial] = (decision, points)
                fin = handle.cancel("pruned", decision.message)
            self._after_trial(handle.spec, fin, opt)

    def _check_systematic(self) -> None:
        """Set ``failure`` when the first N trials of this run failed the same way."""
        n = self.cfg.systematic_failures
        if self.failure or n <= 0 or len(self._run_outcomes) != n:
            return
        first = self._run_outcomes[:n]
        signatures = {failure_signature(r) for r in first}
        if all(r.run_status != "ok" for r in first) and len(signatures) == 1:
            self.failure = (f"systematic failure: the first {n} trials of this run all failed "
                            f"the same way ({first[-1].run_status}: {first[-1].message}); fix "
                            "the setup and re-run")

    def _log_record(self, rec: TrialRecord) -> None:
        champ = self.fold.champion
        champ_txt = "champion: none"
        if champ is not None:
            champ_txt = (f"champion: trial {champ.trial} ({champ.record.objective_name}="
                         f"{champ.record.objective:.4g}"
                         + (f", mean {champ.mean:.4g} over {len(champ.runs)} runs"
                            if len(champ.runs) > 1 else "") + ")")
        value = "-" if rec.objective is None else f"{rec.objective:.4g}"
        if rec.objectives:
            value += " (" + ", ".join(f"{k}={v:.4g}" for k, v in rec.objectives.items()) + ")"
        flags = f" NEW CHAMPION (trial {rec.crowned})" if rec.champion else ""
        flags += " REWARD-HACKING-FLAG" if rec.reward_hacking else ""
        flags += f" (re-run of trial {rec.rerun_of})" if rec.rerun_of is not None else ""
        flags += f" (confirms trial {rec.confirms})" if rec.confirms is not None else ""
        flags += f" front={rec.pareto_front}" if rec.pareto_front is not None else ""
        msg = f" ({rec.message})" if rec.message else ""
        self.study_log.line(
            f"trial {rec.trial} {rec.run_status} {rec.objective_name}={value} "
            f"mean_reward={rec.mean_reward} elapsed={rec.elapsed_sec:.1f}s params={rec.params}"
            f"{flags}{msg} | {champ_txt}")
        self.reporter.finished(rec, self._progress())

    def _propose(self, opt: Optimizer | ParetoProposer, n: int,
                 first_trial: int) -> list[dict[str, Any]]:
        pending = [h.spec.params for h in self.running.values()]
        try:
            proposals = opt.ask_batch(n, pending)
        except Exception as exc:
            log.exception("optimizer failed; proposing at random this time")
            self._note(f"optimizer failed ({exc!r}): random proposals")
            return self.space.sample(opt.rng, n)
        if isinstance(opt, ParetoProposer) and opt.last_weights is not None:
            self.study_log.line(f"proposal for trial {first_trial}: ParEGO weights "
                                f"{dict(zip(PARETO_OBJECTIVES, opt.last_weights.round(3).tolist()))}")
        for i, params in enumerate(proposals):
            cands = opt.last_candidates if i == 0 else []
            self.reporter.proposal(first_trial + i, params, cands)
            if cands:
                self.study_log.line(f"proposal for trial {first_trial + i}: top candidates " +
                                    "; ".join(f"{c.params} mean={c.mean:.4g} std={c.std:.4g} "
                                              f"ucb={c.ucb:.4g}" for c in cands))
        return proposals

    def _publish(self, final: bool = False) -> None:
        ok = (self.publisher.publish(self._commit_message()) if final
              else self.publisher.maybe_publish(self.completed, self._commit_message()))
        if ok is False:
            self._note(f"publishing to {self.cfg.publish.remote} failed"
                       f"{'' if final else ' (retried after the next trial)'}: "
                       f"{clip_message(self.publisher.last_error)}")
        if final:
            self.publish_error = self.publisher.last_error if ok is False else ""

    # --- the loop ---------------------------------------------------------------------------
    def _on_signal(self, signum: int, _frame: Any) -> None:
        self.stop_reason = f"stopped by {signal.Signals(signum).name}"

    def run(self) -> StudySummary:
        """Run the study until it stops; raises PreflightError, StudyError or StudyLockedError
        on setup errors (nothing created or changed for a PreflightError)."""
        notes = preflight(self.cfg, self.space, self.cwd) if self.cfg.preflight else []
        self.executor = make_executor(self.cfg.executor, study_dir=self.paths.root,
                                      kill_grace=self.cfg.kill_grace,
                                      **({"address": self.cfg.ray_address,
                                          "cpus_per_trial": self.cfg.cpus_per_trial,
                                          "shared_dir": self.cfg.ray_shared_dir}
                                         if self.cfg.executor == "ray" else {}))
        try:
            lock, problems = self._open()
        except BaseException:
            self.executor.close()
            raise
        for n in notes:
            self._note(n)
        handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                if sig == signal.SIGHUP and signal.getsignal(sig) == signal.SIG_IGN:
                    continue  # started under nohup: keep ignoring hangups
                handlers[sig] = signal.signal(sig, self._on_signal)
        try:
            self._loop()
        finally:
            try:
                self._shutdown()
            finally:
                self.executor.close()
                for signum, h in handlers.items():
                    signal.signal(signum, h)
                lock.release()
        if not self.failure and not self.stop_reason.startswith("stopped by ") \
                and self.completed and not any(r.run_status == "ok" for r in self.records):
            self.failure = self._nothing_succeeded()
        if self.failure:
            self.study_log.line(f"study ended without success: {self.failure}")
        champ = self.fold.champion
        return StudySummary(self.completed, self._new_records, self.champion,
                            self.stop_reason, problems, self.failure, self.publish_error,
                            champion_mean=champ.mean if champ else None,
                            champion_runs=tuple(r.trial for r in champ.runs) if champ else (),
                            pareto_front=tuple(self.fold.front))

    def _nothing_succeeded(self) -> str:
        finished = [r for r in self.records if r.run_status not in NOT_RUN]
        counts = collections.Counter(r.run_status for r in finished)
        common = collections.Counter(failure_signature(r) for r in finished).most_common(1)
        example = next((r for r in reversed(finished) if failure_signature(r) == common[0][0]),
                       finished[-1])
        return (f"no trial succeeded ({', '.join(f'{n} {s}' for s, n in counts.most_common())}); "
                f"most common error: {example.run_status}: {example.message}")

    def _confirmations_due(self, converged: bool) -> int:
        """Confirmation runs to launch now (see the module docstring, step 2)."""
        if (converged or self.completed >= self.cfg.trials) and not self._reached:
            # the confirmation in progress when the study is done is still completed
            self._reached = True
            pending = self.fold.pending
            self._finishing = pending.trial if pending else None
        pending = self.fold.pending
        if pending is None or (self._reached and pending.trial != self._finishing):
            return 0
        running = sum(1 for origin in self.confirming.values() if origin == pending.trial)
        return max(self.fold.runs_needed() - running, 0)

    def _loop(self) -> None:
        opt = self._make_optimizer()
        not_before = 0.0
        converged = False
        self._note(f"study {self.paths.root}: {self.completed}/{self.cfg.trials} trials done, "
                   f"space {self.space.names}")
        while not self.stop_reason:
            remaining = self.cfg.trials - self.completed - len(self.running)
            free = self.cfg.workers - len(self.running)
            due = self._confirmations_due(converged)
            if free > 0 and time.monotonic() >= not_before:
                n = min(free, remaining) if not converged else 0
                reruns = [self.reruns.popleft() for _ in range(min(max(n, 0), len(self.reruns)))]
                for rec in reruns:
                    self._launch(self.next_trial, dict(rec.params), rerun=rec)
                    self.next_trial += 1
                free -= len(reruns)
                pending = self.fold.pending
                confirmations = min(free, due)
                for _ in range(confirmations):
                    assert pending is not None
                    self._launch(self.next_trial, dict(pending.params), confirms=pending.trial)
                    self.next_trial += 1
                n = min(free - confirmations, n - len(reruns) - confirmations)
                if n > 0:
                    for params in self._propose(opt, n, self.next_trial):
                        self._launch(self.next_trial, params)
                        self.next_trial += 1
            self._check_pruning(opt)
            for handle in list(self.running.values()):
                fin = handle.poll()
                if fin is None:
                    continue
                self._after_trial(handle.spec, fin, opt)
            if self.failure:
                self.stop_reason = "systematic failure"
                return
            if self._ended_one:
                self._ended_one = False
                not_before = time.monotonic() + self.cfg.cooldown
                if self.cfg.until_converged and not converged and isinstance(opt, Optimizer):
                    conv = opt.converged()
                    if conv.converged:
                        converged = True
                        self._note(f"optimizer converged: {conv.reason}; finishing running trials")
            if not self.running and (converged or self.cfg.trials - self.completed <= 0) \
                    and not self._confirmations_due(converged):
                self.stop_reason = "converged" if converged else f"{self.cfg.trials} trials done"
                break
            time.sleep(self.cfg.poll_interval)

    def _after_trial(self, spec: TrialSpec, fin: Finished,
                     opt: Optimizer | ParetoProposer) -> None:
        """Record a trial that ended, publish, check for a systematic failure."""
        self._record(spec, fin, opt)
        if self._disk_full:
            raise StudyError(f"the disk of {self.paths.root} is full ({self._disk_full}); "
                             f"trial {spec.trial} was recorded as interrupted. Free "
                             "space and re-run the same command to resume")
        self._ended_one = True
        self._publish()
        self._check_systematic()

    def _commit_message(self) -> str:
        champ = self.champion
        best = f"champion trial {champ.trial} {champ.objective_name}={champ.objective:.4g}" \
            if champ else "no champion"
        if self.fold.champion is not None and len(self.fold.champion.runs) > 1:
            best += f" (mean {self.fold.champion.mean:.4g} over {len(self.fold.champion.runs)} runs)"
        return f"{self.paths.root.name}: {self.completed} trials, {best}"

    def _shutdown(self) -> None:
        """Kill and record running trials, publish once more; never leaves a child behind."""
        reason = self.stop_reason or "controller error"
        # kill everything first, so that no failure while recording can leave a child behind
        killed = [(h, h.cancel("interrupted", f"{reason} while the trial ran"))
                  for h in list(self.running.values())]
        for h, fin in killed:
            try:
                self._record(h.spec, fin)
            except Exception as exc:
                log.error("trial %d not recorded: %s", h.spec.trial, exc)
                self.running.pop(h.spec.trial, None)
        if self.publisher.enabled and (self._new_records or self.publisher.retry):
            self._publish(final=True)
        self._note(f"controller stopped: {reason}; {self.completed}/{self.cfg.trials} trials, "
                   f"{self._commit_message()}")


def _fine_tuning(cfg: StudyConfig, space: SearchSpace) -> tuple[StudyConfig, SearchSpace, list[str]]:
    """A fine-tuning study (initmodel.py): ``--init-model`` for every trial, the model's contract
    parameters fixed in the space. Raises InitModelError (a ValueError) before anything starts."""
    from donkeyrl.rl.finetune import CONTRACT

    from .initmodel import contract_values

    assert cfg.init_model is not None
    values = contract_values(cfg.init_model, cfg.agent)
    drop = tuple(k for k in CONTRACT if k != "agent" and k not in values)
    if "agent" in space.names:
        values = {"agent": cfg.agent, **values}
    space, notes = fix_params(space, values, drop)
    path = Path(cfg.init_model).resolve()
    cfg = dataclasses.replace(cfg, extra_args=(*cfg.extra_args, "--init-model", str(path)))
    return cfg, space, notes
