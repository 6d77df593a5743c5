"""Study configuration and the reporter interface the controller talks to."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from collections.abc import Sequence

from donkeyrl.bo import Candidate

from .champion import ChampionRule
from .executors import EXECUTORS
from .pruning import CHECKPOINT_OBJECTIVES, PruneConfig
from .limits import MAX_CONFIRM_SEEDS, MAX_TIMESTEPS, MAX_TRIALS, MAX_WORKERS
from .publish import PublishConfig
from .records import PARETO, TrialRecord
from .trialcmd import DEFAULT_TRIAL_COMMAND, render_template

__all__ = ["StudyConfig", "Progress", "Reporter", "LogReporter", "OBJECTIVES", "MAX_WORKERS",
           "MAX_TIMESTEPS", "MAX_TRIALS", "MAX_CONFIRM_SEEDS"]

OBJECTIVES = ("race_score", "driving_score", "mean_reward", PARETO)
"""The documented objectives (any numeric result-file field is accepted): ``race_score`` (the
validation set's mean race score, the default), ``driving_score``, ``mean_reward``, and
``pareto`` (minimise lap time and mean |cte| on the validation set, see records.py)."""


@dataclass(frozen=True)
class StudyConfig:
    """Everything a study run needs (the CLI flags of ``donkeyrl research``)."""

    study_dir: Path
    """Directory holding results.jsonl, study.log, logs/, models/ (created if missing)."""
    trials: int = 100
    """Total finished trials wanted in the study (``interrupted`` ones do not count)."""
    agent: str = "ppo"
    """Agent passed as ``--agent`` (unless the space searches ``agent``)."""
    explore: float | None = 2.0
    """UCB kappa (mean + kappa * std); None = the optimizer's GP-UCB schedule."""
    min_timesteps: int = 5000
    """Lower bound of the searched ``timesteps``."""
    max_timesteps: int = 20000
    """Upper bound of the searched ``timesteps``."""
    search_space: Path | None = None
    """JSON search-space file; None = the agent's default space (research/space.py)."""
    warm_start: tuple[Path, ...] = ()
    """JSONL files of prior results (record schema) told to the optimizer at start."""
    objective: str = "race_score"
    """Result-file field maximised by the optimizer and the champion rule, or ``pareto``."""
    confirm_seeds: int = 2
    """K: a candidate champion is re-trained on K fresh seeds and crowned by its mean objective
    (champion.py); 0 disables confirmation. Not used under ``pareto``."""
    init_model: Path | None = None
    """Fine-tuning study: every trial gets ``--init-model`` this model and the model's contract
    parameters are fixed (initmodel.py)."""
    workers: int = 1
    """Trials run in parallel on this machine."""
    trial_timeout: float = 360.0
    """Seconds before a trial's process group is killed and recorded as ``timeout``."""
    cooldown: float = 2.0
    """Seconds between a trial's end and the next launch."""
    until_converged: bool = False
    """Stop early when the optimizer's convergence test passes."""
    trial_command: str = DEFAULT_TRIAL_COMMAND
    """Command template of one trial (research/trialcmd.py documents the placeholders)."""
    tracks: tuple[str, ...] = ("generated_track",)
    """Training tracks passed as ``--track``."""
    eval_episodes: int = 5
    """Evaluation episodes per trial (``--eval-episodes``)."""
    reward: str | None = None
    """``--reward`` of the trainer; None = the trainer's default."""
    seed: int = 0
    """Base seed: trial N trains with seed ``seed + N``; also seeds the optimizer."""
    n_initial: int = 5
    """Successful trials proposed at random before the GP takes over (5 measured better than 2 on
    benchmarks/optimizer_regret.py at 20 and 30 trials; the first 2 are random either way)."""
    kill_grace: float = 3.0
    """Seconds between SIGTERM and SIGKILL when a trial's group is killed."""
    extra_args: tuple[str, ...] = ()
    """Arguments appended verbatim to every trial command."""
    publish: PublishConfig = field(default_factory=PublishConfig)
    """Git publishing of the results (disabled without a remote)."""
    cwd: Path | None = None
    """Working directory of trials; None = the controller's."""
    poll_interval: float = 0.05
    """Seconds between polls of running trials."""
    tensorboard: Path | None = None
    """TensorBoard directory passed as ``--tensorboard DIR`` to every trial (the trainer logs
    trial N to ``DIR/trial-N``, named after its save dir); None = no logging."""
    rerun_interrupted: bool = False
    """Re-run every interrupted trial (same params and seed, a new trial number, ``rerun_of``
    naming the original) before new proposals."""
    preflight: bool = True
    """Check the setup before the first trial (research/preflight.py)."""
    preflight_timeout: float = 120.0
    """Seconds allowed for the dry run of one trial's command line (``--check``)."""
    systematic_failures: int = 3
    """Stop when the first this-many trials of a run all fail with the same error; 0 = never."""
    executor: str = "local"
    """Where trials run: ``local`` (process groups here) or ``ray`` (research/executors)."""
    ray_address: str | None = None
    """Address of the Ray cluster (``HOST:PORT``); None: a private Ray instance on this machine."""
    cpus_per_trial: float = 1.0
    """CPUs each trial asks the Ray cluster for."""
    ray_shared_dir: Path | None = None
    """The study directory as the Ray nodes see it (a shared file system mounted elsewhere);
    None: the same path. Where the nodes cannot see it, files are shipped back."""
    prune: PruneConfig = field(default_factory=PruneConfig)
    """Early stopping of hopeless trials (research/pruning.py); its ``objective`` is this
    study's."""

    def __post_init__(self) -> None:
        checks = [(1 <= self.trials <= MAX_TRIALS, f"trials={self.trials} must be in [1, {MAX_TRIALS}]"),
                  (1 <= self.workers <= MAX_WORKERS,
                   f"workers={self.workers} must be in [1, {MAX_WORKERS}]"),
                  (self.max_timesteps <= MAX_TIMESTEPS,
                   f"max_timesteps={self.max_timesteps} must be <= {MAX_TIMESTEPS}"),
                  (self.systematic_failures >= 0,
                   f"systematic_failures={self.systematic_failures} must be >= 0"),
                  (self.preflight_timeout > 0,
                   f"preflight_timeout={self.preflight_timeout} must be > 0"),
                  (self.trial_timeout > 0, f"trial_timeout={self.trial_timeout} must be > 0"),
                  (self.cooldown >= 0, f"cooldown={self.cooldown} must be >= 0"),
                  (self.eval_episodes >= 1, f"eval_episodes={self.eval_episodes} must be >= 1"),
                  (self.explore is None or self.explore >= 0,
                   f"explore={self.explore} must be >= 0"),
                  (0 <= self.confirm_seeds <= MAX_CONFIRM_SEEDS,
                   f"confirm_seeds={self.confirm_seeds} must be in [0, {MAX_CONFIRM_SEEDS}] (0 "
                   "disables confirmation)"),
                  (not (self.objective == PARETO and self.until_converged),
                   "until_converged does not apply to the pareto objective (a front has no single "
                   "optimum to converge to)"),
                  (self.executor in EXECUTORS,
                   f"executor={self.executor!r} must be one of {', '.join(EXECUTORS)}"),
                  (self.cpus_per_trial > 0, f"cpus_per_trial={self.cpus_per_trial} must be > 0"),
                  (self.executor == "ray" or (self.ray_address is None and self.ray_shared_dir is None),
                   "ray_address and ray_shared_dir need executor='ray'"),
                  (not self.prune.enabled or self.objective in CHECKPOINT_OBJECTIVES,
                   f"early stopping (prune={self.prune.rule!r}) needs an objective the training "
                   f"checkpoints report ({', '.join(CHECKPOINT_OBJECTIVES)}), not "
                   f"{self.objective!r}"),
                  (not self.prune.enabled or self.prune.objective == self.objective,
                   f"prune.objective={self.prune.objective!r} must be the study's objective "
                   f"{self.objective!r}")]
        for ok, msg in checks:
            if not ok:
                raise ValueError(msg)
        render_template(self.trial_command)  # empty or unbalanced quotes: ValueError now
        if not self.objective or not self.objective.replace("_", "").isalnum():
            raise ValueError(f"objective={self.objective!r} must be a result-file field name "
                             f"such as {list(OBJECTIVES)}")

    @property
    def pareto(self) -> bool:
        """True for a two-objective study (``objective="pareto"``)."""
        return self.objective == PARETO

    @property
    def champion_rule(self) -> ChampionRule:
        """The champion rule of this study (no confirmation under ``pareto``; a random phase of
        at most ``trials`` trials, so that a short study still confirms its best trial)."""
        return ChampionRule(confirm_seeds=0 if self.pareto else self.confirm_seeds,
                            n_initial=min(self.n_initial, self.trials), pareto=self.pareto)


@dataclass(frozen=True)
class Progress:
    """Where the study stands, sent to the reporter after every trial."""

    completed: int
    total: int
    running: int
    elapsed_sec: float
    """Wall time of this controller run."""
    eta_sec: float | None
    """Estimated remaining wall time (None until a trial finished in this run)."""
    champion: TrialRecord | None
    champion_mean: float | None = None
    """The champion's mean objective over its confirmed runs (its objective without
    confirmation)."""


class Reporter(Protocol):
    """What the controller tells its user interface (the CLI prints; tests collect)."""

    def note(self, message: str) -> None: ...
    def proposal(self, trial: int, params: dict[str, Any],
                 candidates: Sequence[Candidate]) -> None: ...
    def started(self, trial: int, params: dict[str, Any], progress: Progress) -> None: ...
    def finished(self, record: TrialRecord, progress: Progress) -> None: ...


class LogReporter:
    """Reporter that only logs (the default of library callers)."""

    def __init__(self) -> None:
        self.log = logging.getLogger("donkeyrl.research")

    def note(self, message: str) -> None:
        self.log.info("%s", message)

    def proposal(self, trial: int, params: dict[str, Any],
                 candidates: Sequence[Candidate]) -> None:
        self.log.info("trial %d proposal %s", trial, params)

    def started(self, trial: int, params: dict[str, Any], progress: Progress) -> None:
        self.log.info("trial %d started", trial)

    def finished(self, record: TrialRecord, progress: Progress) -> None:
        self.log.info("trial %d %s objective=%s", record.trial, record.run_status,
                      record.objective)
