"""``donkeyrl research``: the unattended GP+UCB autoresearch study (see donkeyrl.research)."""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any, cast
from collections.abc import Callable, Sequence

from rich.markup import escape

from donkeyrl.cli.common import (CLIError, add_simulator_arguments, non_negative_float,
                                 positive_float, positive_int, simulator_overrides)
from donkeyrl.research.limits import (MAX_CONFIRM_SEEDS, MAX_TIMESTEPS, MAX_TRIALS, MAX_WORKERS,
                                      SEED_LIMIT)
from donkeyrl.rl.algorithms import AGENTS

EPILOG = """\
trial command template (--trial-command):
  Split like a shell line; placeholders {python} (this interpreter), {trial}, {study_dir},
  {trial_dir}. The controller appends: --agent A --track T.. --eval-episodes E --seed S
  --save-dir <study>/models/trial-N --result-file <study>/models/trial-N/result.json
  [--reward R] [--tensorboard DIR], then one '--foo-bar VALUE' per searched parameter foo_bar
  (booleans as 'true'/'false'; a searched 'tracks' replaces --track), then every --train-arg
  (and --init-model DIR for a fine-tuning study). The trial must write the
  result JSON of 'donkeyrl train --result-file'; the objective is read from it, never from
  stdout. Each trial runs under a small leader process in its own process group: when the
  trial ends, is stopped, or the controller dies (even by SIGKILL), the leader kills
  everything the trial started (workers, wrapped commands) within --kill-grace seconds.

study directory: results.jsonl (one record per trial, append-only), study.log (readable),
  logs/trial-N.log (live trial output), models/trial-N/, models/champion/{model.zip,
  manifest.json}, final/ and head_to_head.{json,txt} (the final test), report.html.
  Re-run the same command to resume after a crash or Ctrl-C.

objective (--objective): race_score (default) is the mean race score over the validation set's
  tracks (docs/evaluation.md): a track counts only after a clean flying lap, then the score rises
  with pace relative to the scripted expert; it does not saturate. driving_score and mean_reward
  stay available (every record keeps all three). 'pareto' minimises two values instead: the
  validation lap time relative to the expert's (3.0 for a track not lapped) and the mean |cte|;
  proposals use ParEGO (a new random weighting of the two per proposal), every record carries
  the Pareto front after it (pareto_front), the study ends by naming the front, and
  models/champion holds the front member with the highest race score.

champion (--confirm-seeds K, default 2): a trial that beats the champion's mean objective is a
  candidate; its configuration is re-trained on K fresh seeds (confirmation runs: ordinary
  records with the same params, their own trial numbers and seeds, and 'confirms' naming the
  candidate) before new proposals, and crowned only if its MEAN over the K+1 runs beats the
  champion's; the installed model is its best run. During the first --n-initial trials (at most
  --trials; the random proposals) nothing is confirmed; then the best of them is the candidate. A failed confirmation
  run drops the configuration. Confirmation runs count towards --trials; one in progress when
  --trials is reached is completed (at most K trials past --trials). Every run is told to the
  optimizer (replicates: the GP learns the noise). Under --objective pareto confirmation is off:
  a front is a set of trade-offs, and replicates of one point do not choose between them.
  K=0: the first trial with a strictly better objective is crowned at once.

executors (--executor, docs/cluster.md): local (default) runs trials as process groups here;
  ray runs each trial as a detached Ray actor asking for --cpus-per-trial CPUs on the cluster at
  --ray-address (without it: a private Ray instance on this machine), with the same records,
  timeouts and cancellation. Files land in the study directory (written directly where the
  nodes see it, at --ray-shared-dir when they mount it elsewhere, else shipped back when the
  trial ends). A node that dies mid-trial gives a 'lost' record (not counted, not told to the
  optimizer, re-run by --rerun-interrupted); after a controller crash the same command adopts
  the trials still running on the cluster: none runs twice.

early stopping (--prune asha|median): trials race the validation set at --prune-fractions of
  their budget (progress.jsonl beside result.json; confirmation runs excepted) and one whose
  score falls below its rung's cut by more than --prune-min-delta is stopped and recorded
  'pruned' with that score as its
  objective, its steps and checkpoints in metrics and its checkpoint model kept; it never
  becomes champion and is told to the optimizer as a failure (a partial-budget score is not
  comparable with finished trials'). Needs --objective race_score or validation_lap_rate.

final test (unless --no-final-test): when the study ends normally (trials reached or converged)
  with a champion, the documented hand-tuned baseline (donkeyrl.rl.headtohead: PPO, mixed
  tracks, domain randomisation) is trained with the champion's step budget and seed by the
  trial command into final/baseline (log logs/final-baseline.log), then the champion, the
  baseline and the scripted expert race every test-set track ('donkeyrl evaluate --set test',
  built-in simulator, log logs/final-test.log) and the head-to-head table ends the output (also
  in head_to_head.txt). Each step runs in its own process group with --trial-timeout. A champion
  already tested (final/final.json names its SHA-256) is not tested again. Then the HTML report
  is written to report.html (unless --no-report).

fine-tuning (--init-model DIR): every trial starts from the saved model's weights; its agent,
  actions, observation and network parameters are fixed to the model's values (removed from the
  searched space); the rest is searched as usual.

Trials flagged by the trainer as reward hacking are recorded but kept out of the surrogate
model and never become champion. A searched parameter that the trainer does not report back
with the same value is noted in the trial's message (and logged as a warning).

Before the first trial the setup is checked (unless --no-preflight): tracks, seed, the trial
program, --git-branch, and, when the trial command's --help lists them, the search space
against '--print-schema' and a dry run of one trial's command line with '--check' (donkeyrl
train has both). A result's model_path must be a zip inside the trial's directory, and an
objective outside its plausible range (driving_score 0..100, race_score 0..1000, else
|x| <= 1e12) is refused. --track must name training tracks or regimes (validation and test
tracks are refused, also when a search space searches 'tracks'), and an objective measured by
the validation race (race_score, pareto) cannot go with --train-arg=--validation false.

A trial launched with --rerun-interrupted re-runs an interrupted trial with the same params
and seed under a new number; its record names the original in 'rerun_of'. A trial that fails
because the disk filled up is recorded 'interrupted' (not counted) and the study stops (exit 4).

exit codes: 0 done (trials reached or converged), 2 bad arguments or a setup error found before
the first trial (nothing created), 3 study dir locked by another controller, 4 the study cannot
continue: study dir or journal unwritable, not a regular file, disk full, or a trial cannot be
started (records intact; re-run to resume), 5 no success: no trial of the study succeeded, or
the first --systematic-failures trials of this run failed with the same error, or the result
lacks --objective, 6 all trials done but the last git publish failed (results are local and
intact), 7 all trials done but the final test failed (records and champion intact; re-run the
same command to retry it; 6 wins when both happened), 128+N stopped by signal N (130 Ctrl-C,
143 SIGTERM) after killing and recording the running trials.
"""

def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    """argparse type: an integer in [low, high]; the error names the value and the range."""
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} must be in [{low}, {high}]")
        return value

    convert.__name__ = f"integer in [{low}, {high}]"
    return convert


def _explore(text: str) -> float | None:
    if text == "auto":
        return None
    return cast(Callable[[str], float], non_negative_float)(text)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "research", help="run a GP+UCB autoresearch study (train, evaluate, keep a champion)",
        description="Propose hyperparameters with GP+UCB, train and evaluate an agent for each "
        "in its own process with a timeout, record every trial, keep the champion model, "
        "publish results to git; resumes where it stopped.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = p.add_argument
    a("--trials", type=_bounded_int(1, MAX_TRIALS), default=100,
      help="total finished trials wanted in the study, counting earlier runs (default 100)")
    a("--explore", type=_explore, default=2.0,
      help="UCB exploration weight kappa (mean + kappa*std), or 'auto' for the GP-UCB "
      "schedule (default 2.0)")
    a("--agent", choices=AGENTS, default="ppo",
      help="RL algorithm; selects the default search space (default ppo)")
    a("--min-timesteps", type=_bounded_int(1, MAX_TIMESTEPS), default=5000,
      help="lower bound of the searched training timesteps (default 5000)")
    a("--max-timesteps", type=_bounded_int(1, MAX_TIMESTEPS), default=20000,
      help="upper bound of the searched training timesteps (default 20000)")
    a("--push-every", type=positive_int, default=10,
      help="commit and push results every N finished trials (needs --git-remote; default 10)")
    a("--name", default=None, help="study name (default research-<agent>)")
    a("--study-dir", type=Path, default=None, help="study directory (default runs/<name>)")
    a("--track", nargs="+", default=["generated_track"], metavar="NAME",
      help="training track(s) or regimes (procedural, catalogue, mixed) passed to every trial "
      "unless the space searches 'tracks'; validation and test tracks are refused (see "
      "'donkeyrl tracks'; default generated_track)")
    a("--workers", type=_bounded_int(1, MAX_WORKERS), default=1,
      help=f"trials run in parallel on this machine, at most {MAX_WORKERS} (default 1)")
    a("--trial-timeout", type=positive_float, default=360.0,
      help="seconds before a trial's whole process group is killed, recorded as timeout "
      "(default 360)")
    a("--cooldown", type=non_negative_float, default=2.0,
      help="seconds to wait after a trial before the next starts (default 2)")
    a("--objective", default="race_score",
      help="result-file field to maximise: race_score (the validation set's mean race score, "
      "default), driving_score, mean_reward, or 'pareto' (minimise validation lap time and mean "
      "|cte|, see below); records keep all of them")
    a("--confirm-seeds", type=_bounded_int(0, MAX_CONFIRM_SEEDS), default=None, metavar="K",
      help="re-train a candidate champion's configuration on K fresh seeds and crown it by its "
      "mean objective (default 2; 0 disables; not used with --objective pareto, see below)")
    a("--init-model", type=Path, default=None, metavar="DIR",
      help="fine-tuning study: every trial starts from this saved model (its directory or "
      "model.zip); its agent, actions, observation and network are fixed to the model's")
    a("--no-final-test", action="store_true",
      help="do not train the baseline and race champion, baseline and expert on the test set at "
      "the end (see below)")
    a("--evaluate-command", default=None, metavar="TEMPLATE",
      help="command template of the final test's evaluation (default '{python} -m donkeyrl "
      "evaluate'; it gets --model, --set test, --baseline and --out)")
    a("--no-report", action="store_true",
      help="do not write the HTML report (report.html) at the end")
    a("--search-space", type=Path, default=None, metavar="FILE",
      help="JSON search space {name: {type: float|int|categorical|fixed, ...}}; default: the "
      "agent's documented space (see --print-space)")
    a("--print-space", action="store_true", help="print the search space as JSON and exit")
    a("--warm-start", type=Path, action="append", default=[], metavar="FILE",
      help="JSONL file of prior results (record schema) the optimizer learns from; repeatable")
    a("--until-converged", action="store_true",
      help="stop early when the optimizer's UCB-LCB gap falls below the noise")
    a("--n-initial", type=positive_int, default=5,
      help="successful random trials before the GP proposes (default 5: on the optimizer "
      "benchmarks 5 beat 2 on every problem at 20 and 30 trials; minimum 1)")
    a("--git-remote", default=None, metavar="URL",
      help="git remote (URL or bare-repo path) receiving results; default: no publishing")
    a("--git-branch", default="main", help="remote branch to push to (default main)")
    a("--push-models", choices=("none", "champion", "all"), default="champion",
      help="model files to commit: none, champion (default) or all trial models")
    a("--push-max-mb", type=non_negative_float, default=50.0,
      help="never commit model files larger than this many MiB (default 50)")
    a("--push-exclude", action="append", default=[], metavar="GLOB",
      help="study-relative paths (fnmatch glob) never to commit; repeatable")
    a("--trial-command", default=None, metavar="TEMPLATE",
      help="command template of one trial (default '{python} -m donkeyrl train'; see below)")
    a("--train-arg", action="append", default=[], metavar="ARG",
      help="extra argument appended verbatim to every trial command; repeatable "
      "(use --train-arg=--flag for values starting with '-')")
    a("--eval-episodes", type=positive_int, default=5,
      help="evaluation episodes per trial (default 5)")
    a("--reward", choices=("donkey", "speed", "progress"), default=None,
      help="training reward passed to every trial (default: the trainer's)")
    a("--seed", type=_bounded_int(0, SEED_LIMIT - 1), default=0,
      help="base seed: trial N uses seed+N (< 2**32); also seeds the optimizer (default 0)")
    add_simulator_arguments(p, defaults=False, unset="the trainer's, i.e. the built-in simulator")
    a("--kill-grace", type=non_negative_float, default=3.0,
      help="seconds between SIGTERM and SIGKILL when a trial is killed (default 3)")
    a("--tensorboard", type=Path, default=None, metavar="DIR",
      help="TensorBoard logs: every trial gets 'donkeyrl train --tensorboard DIR' and logs to "
      "DIR/trial-N; view with 'tensorboard --logdir DIR' (default: none)")
    a("--rerun-interrupted", action="store_true",
      help="first re-run every interrupted trial with its original params and seed (new trial "
      "number; the record's rerun_of names the original), like Ray Tune's restore")
    a("--no-preflight", action="store_true",
      help="skip the setup checks before the first trial (see below)")
    a("--systematic-failures", type=_bounded_int(0, MAX_TRIALS), default=3, metavar="N",
      help="stop (exit 5) when the first N trials of a run all fail with the same error; 0 = "
      "never (default 3)")
    g = p.add_argument_group("executor (where trials run; docs/cluster.md)")
    g.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: process groups on this machine (default); ray: each trial as a "
                   "Ray actor on a Ray cluster (pip install 'donkeyrl[ray]')")
    g.add_argument("--ray-address", default=None, metavar="HOST:PORT",
                   help="the Ray cluster's address (with --executor ray; default: a private Ray "
                   "instance on this machine)")
    g.add_argument("--cpus-per-trial", type=positive_float, default=1.0, metavar="N",
                   help="CPUs each trial asks the Ray cluster for (default 1)")
    g.add_argument("--ray-shared-dir", type=Path, default=None, metavar="DIR",
                   help="the study directory as the Ray nodes see it (a shared file system "
                   "mounted elsewhere); default: the same path, or files shipped back where a "
                   "node cannot see it")
    g = p.add_argument_group("early stopping (docs/cluster.md)")
    g.add_argument("--prune", choices=("none", "asha", "median"), default="none",
                   help="stop hopeless trials at checkpoints of their budget: asha (successive "
                   "halving: keep the top 1/eta of a rung), median (stop below the median of a "
                   "rung), none (default)")
    g.add_argument("--prune-fractions", type=_fractions, default=None, metavar="F,F,..",
                   help="checkpoints (rungs) as fractions of each trial's budget "
                   "(default 0.25,0.5,0.75)")
    g.add_argument("--prune-eta", type=_bounded_int(2, 100), default=3, metavar="N",
                   help="asha: keep the top 1/N of each rung (default 3)")
    g.add_argument("--prune-min-trials", type=_bounded_int(1, MAX_TRIALS), default=3, metavar="N",
                   help="stop nothing at a rung before N other trials reported there (default 3)")
    g.add_argument("--prune-min-delta", type=non_negative_float, default=None, metavar="X",
                   help="stop a trial only when its score is more than X below the rung's cut "
                   "(objective units; default 5 for race_score, 0.1 for validation_lap_rate: "
                   "untrained cars' checkpoint scores differ by chance; 0 = plain ASHA/median)")
    p.set_defaults(func=run)


def _fractions(text: str) -> tuple[float, ...]:
    """argparse type of --prune-fractions: fractions in (0, 1), comma-separated."""
    from donkeyrl.rl.checkpoints import parse_fractions
    try:
        out = parse_fractions(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not out:
        raise argparse.ArgumentTypeError("give at least one fraction (or --prune none)")
    return out


def build_config(args: argparse.Namespace) -> Any:
    """The StudyConfig of the parsed arguments (raises CLIError on inconsistent flags)."""
    from donkeyrl.research import PublishConfig, StudyConfig
    from donkeyrl.research.pruning import PruneConfig
    from donkeyrl.research.trialcmd import DEFAULT_TRIAL_COMMAND, render_template
    if args.min_timesteps > args.max_timesteps:
        raise CLIError(f"--min-timesteps {args.min_timesteps} is larger than --max-timesteps "
                       f"{args.max_timesteps}")
    if args.trial_command is not None:
        try:
            render_template(args.trial_command)
        except ValueError as exc:
            raise CLIError(f"{exc} (default: '{DEFAULT_TRIAL_COMMAND}')") from None
    if args.evaluate_command is not None:
        try:
            render_template(args.evaluate_command)
        except ValueError as exc:
            raise CLIError(str(exc).replace("--trial-command", "--evaluate-command")) from None
    if args.objective == "pareto" and args.confirm_seeds:
        raise CLIError(f"--confirm-seeds {args.confirm_seeds} does not apply to --objective pareto "
                       "(no confirmation: a front is a set of trade-offs; use --confirm-seeds 0)")
    _check_tracks(args.track)
    if args.executor != "ray":
        for flag, value in (("--ray-address", args.ray_address), ("--ray-shared-dir", args.ray_shared_dir)):
            if value is not None:
                raise CLIError(f"{flag} needs --executor ray")
    name = args.name or f"research-{args.agent}"
    try:
        return StudyConfig(
            study_dir=args.study_dir or Path("runs") / name, trials=args.trials,
            agent=args.agent, explore=args.explore, min_timesteps=args.min_timesteps,
            max_timesteps=args.max_timesteps, search_space=args.search_space,
            warm_start=tuple(args.warm_start), objective=args.objective, workers=args.workers,
            confirm_seeds=(0 if args.objective == "pareto" else 2) if args.confirm_seeds is None
            else args.confirm_seeds, init_model=args.init_model,
            trial_timeout=args.trial_timeout, cooldown=args.cooldown,
            until_converged=args.until_converged,
            trial_command=DEFAULT_TRIAL_COMMAND if args.trial_command is None
            else args.trial_command,
            tracks=tuple(args.track), eval_episodes=args.eval_episodes, reward=args.reward,
            seed=args.seed, n_initial=args.n_initial, kill_grace=args.kill_grace,
            extra_args=_simulator_train_args(args) + tuple(args.train_arg),
            publish=PublishConfig(remote=args.git_remote, every=args.push_every,
                                  models=args.push_models, max_model_mb=args.push_max_mb,
                                  exclude=tuple(args.push_exclude), branch=args.git_branch),
            tensorboard=args.tensorboard, rerun_interrupted=args.rerun_interrupted,
            preflight=not args.no_preflight, systematic_failures=args.systematic_failures,
            executor=args.executor, ray_address=args.ray_address,
            cpus_per_trial=args.cpus_per_trial, ray_shared_dir=args.ray_shared_dir,
            prune=PruneConfig(rule=args.prune, reduction_factor=args.prune_eta,
                              min_peers=args.prune_min_trials, objective=args.objective,
                              min_delta=args.prune_min_delta,
                              **({"fractions": args.prune_fractions} if args.prune_fractions else {})))
    except ValueError as exc:
        raise CLIError(str(exc)) from None


def _check_tracks(tracks: Sequence[str]) -> None:
    """``--track``: training tracks or regimes only (one line naming the value otherwise)."""
    from donkeyrl.sim.tracksets import check_training_tracks

    try:
        check_training_tracks(list(tracks))
    except ValueError as exc:
        raise CLIError(f"--track: {exc}") from None


def _simulator_train_args(args: argparse.Namespace) -> tuple[str, ...]:
    """``--sim/--host/--port/--sim-path`` given to research, passed on to every trial."""
    out: list[str] = []
    for key, value in simulator_overrides(args).items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return tuple(out)


def _hms(sec: float | None) -> str:
    if sec is None:
        return "--:--:--"
    sec = int(round(sec))
    return f"{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}"


class ConsoleReporter:
    """Prints one progress line per trial and the running champion summary (rich markup)."""

    def __init__(self) -> None:
        from rich.console import Console
        self.console = Console(highlight=False, soft_wrap=True)

    def _p(self, text: str) -> None:
        self.console.print(text)

    def note(self, message: str) -> None:
        self._p(f"[dim]{escape(message)}[/dim]")

    def proposal(self, trial: int, params: dict[str, Any], candidates: Sequence[Any]) -> None:
        self._p(f"trial {trial}: proposal {_fmt_params(params)}" +
                ("" if candidates else " [dim](random)[/dim]"))
        for i, c in enumerate(candidates, 1):
            self._p(f"  [dim]cand {i}: mean {c.mean:.4g} std {c.std:.4g} ucb {c.ucb:.4g} "
                    f"{_fmt_params(c.params)}[/dim]")

    def started(self, trial: int, params: dict[str, Any], progress: Any) -> None:
        pass

    def finished(self, record: Any, progress: Any) -> None:
        value = "-" if record.objective is None else f"{record.objective:.4g}"
        colour = "green" if record.run_status == "ok" else "red"
        champ = progress.champion
        mean = progress.champion_mean
        best = "best -"
        if champ is not None:
            best = (f"best {champ.objective:.4g} (trial {champ.trial})" if mean is None
                    or mean == champ.objective else
                    f"best mean {mean:.4g} (trial {champ.trial}: {champ.objective:.4g})")
        self._p(f"[bold][{progress.completed}/{progress.total}][/bold] trial {record.trial} "
                f"[{colour}]{record.run_status}[/{colour}] {record.objective_name}={value} "
                f"in {record.elapsed_sec:.1f}s | elapsed {_hms(progress.elapsed_sec)} "
                f"ETA {_hms(progress.eta_sec)} | {best}"
                + (f" [dim](confirms trial {record.confirms})[/dim]"
                   if record.confirms is not None else "")
                + (" [bold yellow]NEW CHAMPION[/bold yellow]" if record.champion
                   and record.crowned_trial == record.trial else "")
                + (f" [bold yellow]NEW CHAMPION: trial {record.crowned_trial}[/bold yellow]"
                   if record.champion and record.crowned_trial != record.trial else "")
                + (f"\n  [red]{escape(record.message)}[/red]" if record.run_status != "ok"
                   else ""))
        if champ:
            self._p(f"  champion: trial {champ.trial} {champ.objective_name}="
                    f"{champ.objective:.4g} mean_reward={_num(champ.mean_reward)} "
                    f"{_fmt_params(champ.params)}")


def _fmt_params(params: dict[str, Any]) -> str:
    """Compact ``k=v`` list, markup-escaped (values may contain brackets)."""
    return escape(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in params.items()))


def _num(value: Any) -> str:
    """A number with 4 significant digits, or '-' when missing."""
    return "-" if value is None else f"{value:.4g}"


def _champion_metrics(champ: Any) -> str:
    """The champion's driving metrics on its evaluation episodes, in one readable line."""
    m = champ.metrics or {}
    best = m.get("best_lap_time")
    return (f"mean_reward {_num(champ.mean_reward)} +/- {_num(champ.std_reward)}, "
            f"laps per episode {_num(m.get('laps'))}, best lap "
            f"{'-' if best is None else f'{best:.2f} s'}, completion {_num(m.get('completion'))}, "
            f"mean |cte| {_num(m.get('mean_abs_cte'))}, mean speed {_num(m.get('mean_speed'))}, "
            f"hacking flag {m.get('reward_hacking_flag', '-')}")


def run(args: argparse.Namespace) -> int:
    from donkeyrl.bo import SearchSpaceError
    from donkeyrl.research import Controller, StudyError, StudyLockedError
    from donkeyrl.research.executors import ExecutorError
    from donkeyrl.research.preflight import PreflightError
    config = build_config(args)
    try:
        controller = Controller(config, ConsoleReporter())
    except (SearchSpaceError, ValueError, OSError) as exc:
        raise CLIError(str(exc)) from None
    if args.print_space:
        print(json.dumps(controller.space.to_dict(), indent=1))
        return 0
    try:
        summary = controller.run()
    except (PreflightError, ExecutorError) as exc:
        raise CLIError(str(exc)) from None
    except StudyLockedError as exc:
        raise CLIError(str(exc), exit_code=3) from None
    except StudyError as exc:
        raise CLIError(str(exc), exit_code=4) from None
    champ = summary.champion
    print(f"study {config.study_dir}: {summary.completed}/{config.trials} trials "
          f"({summary.stop_reason}); results {config.study_dir / 'results.jsonl'}, log "
          f"{config.study_dir / 'study.log'}")
    if summary.pareto_front:
        print(_front_table(summary.pareto_front))
    if champ:
        runs = summary.champion_runs
        confirmed = (f" (configuration of trial {runs[0]}, mean {summary.champion_mean:.4g} over "
                     f"trials {', '.join(map(str, runs))})" if len(runs) > 1 else "")
        print(f"champion: trial {champ.trial} {champ.objective_name}={champ.objective:.4g}"
              f"{confirmed} -> {config.study_dir / 'models' / 'champion' / 'model.zip'}")
        print(f"champion metrics: {_champion_metrics(champ)}")
    if config.tensorboard is not None:
        print(f"TensorBoard: tensorboard --logdir {config.tensorboard}")
    if summary.failure:
        print(f"study ended without success: {summary.failure}")
    if summary.publish_error:
        print(f"publishing to {config.publish.remote} failed: {summary.publish_error}")
    signalled = summary.stop_reason.startswith("stopped by ")
    final_failed, publish_error = "", summary.publish_error
    if summary.ended_normally and champ and not args.no_final_test:
        final_failed, signum, final_publish_error = _final_test(args, config)
        if signum:
            return 128 + signum
        publish_error = publish_error or final_publish_error
    if not signalled and not args.no_report:
        _write_report(config.study_dir)
    if signalled:
        return 128 + int(signal.Signals[summary.stop_reason.split()[-1]])
    if summary.failure:
        return 5
    if publish_error:
        return 6
    if final_failed:
        return 7
    return 0


def _front_table(front: Sequence[Any]) -> str:
    """The Pareto front named at the end of a Pareto study, one line per member."""
    from donkeyrl.research.records import PARETO_OBJECTIVES

    lap, cte = PARETO_OBJECTIVES
    lines = [f"Pareto front ({len(front)} trials; both minimised):",
             f"  {'trial':>5}  {'lap time / expert':>17}  {'mean |cte|':>10}  {'race score':>10}"]
    for r in sorted(front, key=lambda r: r.objectives[lap]):
        lines.append(f"  {r.trial:>5}  {r.objectives[lap]:>17.3f}  {r.objectives[cte]:>10.3f}  "
                     f"{_num(r.objective):>10}")
    return "\n".join(lines)


def _final_test(args: argparse.Namespace, config: Any) -> tuple[str, int, str]:
    """The final test (research/final.py); prints its table and publishes it (with
    --git-remote). Returns (failure, signal number, publish error)."""
    from donkeyrl.research.final import DEFAULT_EVALUATE_COMMAND, FinalConfig, run_final_test

    print("final test: training the baseline and racing champion, baseline and expert on the "
          f"test set (logs in {config.study_dir / 'logs'}/final-*.log) ...", flush=True)
    result = run_final_test(FinalConfig(
        study_dir=config.study_dir, train_command=config.trial_command,
        evaluate_command=args.evaluate_command or DEFAULT_EVALUATE_COMMAND,
        extra_args=config.extra_args, eval_episodes=config.eval_episodes,
        timeout=config.trial_timeout, kill_grace=config.kill_grace, cwd=config.cwd))
    if result.status == "interrupted":
        print(f"final test interrupted: {result.message}")
        name = result.message.split("stopped by ")[-1].split()[0]
        signum = int(signal.Signals[name]) if name in signal.Signals.__members__ else 2
        return result.message, signum, ""
    if result.status == "failed":
        print(f"final test failed: {result.message} (records and champion intact; re-run the same "
              "command to retry)")
        return result.message, 0, ""
    publish_error = ""
    if config.publish.remote and result.status == "done":
        from donkeyrl.research import Publisher

        publisher = Publisher(config.study_dir, config.publish)
        if not publisher.publish(f"{Path(config.study_dir).name}: final test, {result.message}"):
            publish_error = publisher.last_error
            print(f"publishing the final test to {config.publish.remote} failed: {publish_error}")
    print(f"final test: {result.message}")
    if result.table:
        print(result.table)
    return "", 0, publish_error


def _write_report(study_dir: Path) -> None:
    """``donkeyrl.report.write_report`` when the report package has it; a failure is a warning."""
    try:
        from donkeyrl.report import write_report
    except ImportError:
        return
    try:
        path = write_report(study_dir)
    except Exception as exc:  # the report must never change the study's outcome
        print(f"warning: the HTML report was not written: {type(exc).__name__}: {exc}")
        return
    print(f"report: {path}")
