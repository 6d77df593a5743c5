"""The Ray executor: each trial runs as a detached, named Ray actor on a Ray cluster.

Ray is the engine here; nothing below schedules anything. The controller connects to a cluster
(``ray_address``; None starts a local one in-process) and creates, per trial, one actor that asks
for ``cpus_per_trial`` CPUs; Ray places it on a node with room (or queues it until one has).
On its node the actor runs the trial exactly like the local executor does on this machine: a
:class:`~donkeyrl.research.runner.TrialProcess`, i.e. the trial command under the trial leader
in a process group of its own, with the same timeout, kill grace and no-orphans guarantees.

Why an actor per trial, and why detached and named: a plain Ray task fate-shares with the
process that submitted it, so a controller that crashed would take every running trial down
with it; a *detached* actor lives on, and its *name* (``donkeyrl-<study id>-trial-<N>`` in the
``donkeyrl`` namespace; the study id hashes this host's name and the study's path) lets the next
controller find it, from the running-trial file the controller writes into ``running/`` before
creating the actor. At restart the controller adopts every actor it finds (waits for it like for
its own trials; an actor that already finished hands its result over at once) and records as
``lost`` a trial whose actor is gone. A trial is never started twice: its file is written before
its actor exists and removed only after its record is in the journal, and adoption re-attaches
to the running actor instead of starting anything.

Files: before submitting, the controller writes ``launch.json`` with a random token into the
trial directory. The actor looks for that file under the study directory as its node sees it
(``shared_dir`` when the user names one, e.g. the same NFS export mounted elsewhere; else the
study path itself). Found with the same token: the node shares the file system, and the trial
writes its model, result, progress file and log there directly (the log then grows live). Not
found: the trial runs in a scratch directory on the node (``$TMPDIR/donkeyrl-ray/<study id>``,
paths in its command line rewritten), and when it ends its files (everything in its save
directory, and its log) travel back with the actor's return value and are written into the
study directory, with the scratch paths in its JSON files mapped back; the scratch directory is
removed. Checkpoint scores of a running trial are then read through the actor.

Cancellation (``cancel``): the actor kills the trial's process group (SIGTERM, SIGKILL after the
grace) and ships what the trial wrote so far; then ``ray.kill`` (Ray's forced stop of an actor:
``ray.cancel(force=True)`` does not apply to actor calls) ends the actor itself, and with it, by
the leader's parent-death signal, anything of the trial still alive. A node that dies mid-trial
makes the actor's call fail with ``ActorDiedError``: the trial ends as ``lost``, the study goes
on.

Requirements on the cluster's nodes: Python with donkeyrl (and its trainer) installed. The trial
command's ``{python}`` is this controller's interpreter; on a node where that path does not
exist the node's own interpreter runs the trial.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from donkeyrl.rl.checkpoints import ProgressPoint, parse_progress, read_progress

from ..files import read_regular, write_bytes_atomic, write_json_atomic
from ..records import now_iso
from ..runner import (LAUNCH_FILE, Finished, TrialProcess, TrialSpec, is_local, read_pid_files,
                      reap_leftover, remove_trial_tmp)
from .base import EXECUTOR_KEY, ExecutorError, Recovered

__all__ = ["RayExecutor", "RayTrial", "TrialActor", "NAMESPACE", "study_id", "actor_name"]

log = logging.getLogger(__name__)

NAMESPACE = "donkeyrl"
"""Ray namespace of every trial actor (detached actor names are unique per namespace)."""

LOG_KEY = "\0log"
"""Key of the trial's log among the shipped files (never a file name)."""

PROGRESS_POLL_SEC = 2.0
"""Least seconds between two questions to a remote actor for its trial's checkpoints."""

CANCEL_MARGIN_SEC = 30.0
"""Extra seconds a cancel waits for the actor's answer beyond the kill grace, before forcing."""

UNAVAILABLE_RETRIES = 20
"""Times a call to an actor that Ray reports temporarily unavailable is issued again."""

HANDOVER_SEC = 30.0
"""Most seconds ``submit`` waits for Ray's control store to hold the actor's creation task."""


def study_id(study_dir: Path) -> str:
    """A short id of the study: this host's name and the study's resolved path, hashed."""
    key = f"{socket.gethostname()}:{Path(study_dir).resolve()}"
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def actor_name(sid: str, trial: int) -> str:
    """The detached actor's name of ``trial`` in the study ``sid``."""
    return f"donkeyrl-{sid}-trial-{trial}"


def _map_str(text: str, old: str, new: str) -> str:
    return text.replace(old, new) if old != new else text


def _map_path(path: Path, old: Path, new: Path) -> Path:
    try:
        return new / Path(path).relative_to(old)
    except ValueError:
        return Path(path)


# --------------------------------------------------------------------------- on the node
class TrialActor:
    """Runs one trial on a node of the cluster (wrapped with ``ray.remote`` by RayExecutor).

    Threaded (``max_concurrency``): ``run`` blocks until the trial ended while ``progress`` and
    ``cancel`` are answered. ``run`` is idempotent: the first call starts the trial, every call
    waits for it and returns the same result, so a restarted controller simply calls it again.
    """

    def __init__(self, spec: TrialSpec, *, study_root: str, worker_root: str, token: str,
                 sid: str, kill_grace: float, controller_python: str) -> None:
        self.spec = spec
        self.study_root = Path(study_root)
        self.worker_root = Path(worker_root)
        self.token = token
        self.sid = sid
        self.kill_grace = kill_grace
        self.controller_python = controller_python
        self.scratch = Path(tempfile.gettempdir()) / "donkeyrl-ray" / sid
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.tp: TrialProcess | None = None
        self.root = self.worker_root
        self.shared = False
        self.local: TrialSpec | None = None
        self.payload: dict[str, Any] | None = None
        self.start_error = ""

    # the files the trial sees on this node ---------------------------------------------------
    def _shares_study_dir(self) -> bool:
        launch = _map_path(self.spec.model_dir, self.study_root, self.worker_root) / LAUNCH_FILE
        try:
            import json
            return json.loads(read_regular(launch, 1 << 20)).get("token") == self.token
        except (OSError, ValueError, AttributeError):
            return False

    def _local_spec(self) -> TrialSpec:
        spec, old, new = self.spec, str(self.study_root), str(self.root)
        argv = [_map_str(a, old, new) for a in spec.argv]
        if argv and argv[0] == self.controller_python and not Path(argv[0]).exists():
            argv[0] = sys.executable
        model_dir = _map_path(spec.model_dir, self.study_root, self.root)
        cwd = spec.cwd if Path(spec.cwd).is_dir() else model_dir
        return replace(spec, argv=argv, model_dir=model_dir, cwd=cwd,
                       result_file=_map_path(spec.result_file, self.study_root, self.root),
                       log_file=_map_path(spec.log_file, self.study_root, self.root))

    def _start(self) -> None:
        self.shared = self._shares_study_dir()
        self.root = self.worker_root if self.shared else self.scratch / "study"
        self.local = self._local_spec()
        pid_dir = self.scratch / "running"
        pid_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.tp = TrialProcess(self.local, pid_dir, kill_grace=self.kill_grace)
        except OSError as exc:
            self.start_error = f"cannot start the trial on {socket.gethostname()}: {exc}"
            self._finish(Finished(None, 0.0, "error", self.start_error))
            return
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while not self.done.is_set():
            with self.lock:
                if self.payload is None and self.tp is not None:
                    fin = self.tp.poll()
                    if fin is not None:
                        self._finish(fin)
            time.sleep(0.1)

    def _finish(self, fin: Finished) -> None:
        """Store the result (once); collect the files when the study dir is not shared."""
        if self.payload is not None:
            return
        files: dict[str, bytes] | None = None
        if self.tp is not None:
            self.tp.remove_pid_file()
        if self.local is not None:
            remove_trial_tmp(self.local.model_dir)
            if not self.shared:
                files = self._collect()
        self.payload = {"exit_code": fin.exit_code, "elapsed_sec": fin.elapsed_sec,
                        "killed": fin.killed, "kill_message": fin.kill_message,
                        "node": socket.gethostname(), "shared": self.shared, "files": files}
        self.done.set()

    def _collect(self) -> dict[str, bytes]:
        assert self.local is not None
        out: dict[str, bytes] = {}
        old, new = str(self.root), str(self.study_root)
        base = self.local.model_dir
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            if not path.is_file() or path.is_symlink() or path.name == LAUNCH_FILE:
                continue
            data = path.read_bytes()
            if path.suffix in (".json", ".jsonl"):  # paths inside the results: back to the study's
                data = data.replace(old.encode(), new.encode())
            out[str(path.relative_to(base))] = data
        try:
            out[LOG_KEY] = self.local.log_file.read_bytes()
        except OSError:
            pass
        return out

    # the calls -----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        with self.lock:
            if self.local is None and self.payload is None:
                self._start()
        self.done.wait()
        assert self.payload is not None
        return self.payload

    def cancel(self, reason: str, message: str) -> dict[str, Any]:
        with self.lock:
            if self.payload is None:
                if self.tp is not None:
                    self._finish(self.tp.kill(reason, message))
                else:  # never started: nothing ran
                    self._finish(Finished(None, 0.0, reason, message))
        assert self.payload is not None
        return self.payload

    def progress(self) -> str:
        if self.local is None:
            return ""
        try:
            return read_regular(self.local.model_dir / "progress.jsonl", 1 << 20).decode("utf-8", "replace")
        except OSError:
            return ""

    def cleanup(self) -> None:
        """Remove the scratch copy of the trial (its files were shipped)."""
        if self.local is not None and not self.shared:
            shutil.rmtree(self.local.model_dir, ignore_errors=True)
            self.local.log_file.unlink(missing_ok=True)


# --------------------------------------------------------------------------- the controller
class RayTrial:
    """The controller's handle of one trial actor (the TrialHandle of executors/base.py)."""

    def __init__(self, executor: RayExecutor, spec: TrialSpec, actor: Any, pid_file: Path) -> None:
        self.executor = executor
        self.spec = spec
        self.actor = actor
        self.pid_file = pid_file
        self.started = time.monotonic()
        self.ref = actor.run.remote()
        self._retries = 0
        self._progress: list[ProgressPoint] = []
        self._progress_at = 0.0
        self._progress_ref: Any = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def poll(self) -> Finished | None:
        ray = self.executor.ray
        ready, _ = ray.wait([self.ref], timeout=0)
        if not ready:
            return None
        try:
            payload = ray.get(self.ref)
        except ray.exceptions.ActorUnavailableError as exc:
            if self._retries < UNAVAILABLE_RETRIES:
                self._retries += 1
                log.warning("trial %d: actor unavailable (%s); asking again", self.spec.trial, exc)
                self.ref = self.actor.run.remote()
                return None
            return self._lost(exc)
        except (ray.exceptions.RayActorError, ray.exceptions.RayError) as exc:
            return self._lost(exc)
        return self._land(payload)

    def _lost(self, exc: BaseException) -> Finished:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("trial %d lost: %s", self.spec.trial, first)
        return Finished(None, self.elapsed, "lost",
                        f"the Ray actor running the trial died (its node or worker process was "
                        f"lost): {type(exc).__name__}: {first[:200]}")

    def _land(self, payload: dict[str, Any]) -> Finished:
        """Write shipped files into the study directory; the trial's Finished."""
        files = payload.get("files")
        if files:
            for rel, data in files.items():
                if rel == LOG_KEY:
                    self.spec.log_file.parent.mkdir(parents=True, exist_ok=True)
                    with open(self.spec.log_file, "ab") as fh:
                        fh.write(data)
                    continue
                dest = (self.spec.model_dir / rel).resolve()
                if self.spec.model_dir.resolve() not in dest.parents:
                    log.error("trial %d: shipped file %r is outside the trial dir: dropped",
                              self.spec.trial, rel)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(dest, data)
        return Finished(payload.get("exit_code"), float(payload.get("elapsed_sec") or self.elapsed),
                        payload.get("killed"), payload.get("kill_message") or "")

    def cancel(self, reason: str, message: str) -> Finished:
        ray = self.executor.ray
        try:
            payload = ray.get(self.actor.cancel.remote(reason, message),
                              timeout=self.executor.kill_grace + CANCEL_MARGIN_SEC)
            fin = self._land(payload)
            if fin.killed is None:  # it had ended on its own just before: report it as it ended
                return fin
            return Finished(fin.exit_code, fin.elapsed_sec, reason, message)
        except Exception as exc:  # the actor is gone or stuck: forced below
            log.warning("trial %d: cancel through the actor failed (%s); killing the actor",
                        self.spec.trial, exc)
            return Finished(None, self.elapsed, reason, message)
        finally:
            self._kill_actor()

    def progress(self) -> list[ProgressPoint]:
        """The shared progress file when the node writes into the study dir; else the actor's
        answer, asked at most every PROGRESS_POLL_SEC and never waited for (an actor still
        queued for resources answers once it runs)."""
        local = read_progress(self.spec.progress_file)
        if local:
            return local
        ray = self.executor.ray
        if self._progress_ref is not None:
            ready, _ = ray.wait([self._progress_ref], timeout=0)
            if ready:
                try:
                    self._progress = parse_progress(ray.get(self._progress_ref))
                except Exception as exc:  # a lost actor: its poll reports the loss
                    log.debug("trial %d: no progress from the actor: %s", self.spec.trial, exc)
                self._progress_ref = None
        elif time.monotonic() - self._progress_at >= PROGRESS_POLL_SEC:
            self._progress_at = time.monotonic()
            self._progress_ref = self.actor.progress.remote()
        return self._progress

    def _kill_actor(self) -> None:
        try:
            self.actor.cleanup.remote()
            self.executor.ray.kill(self.actor, no_restart=True)
        except Exception as exc:  # already dead
            log.debug("trial %d: ray.kill: %s", self.spec.trial, exc)

    def release(self) -> None:
        self._kill_actor()
        self.pid_file.unlink(missing_ok=True)


class RayExecutor:
    """Runs trials as detached Ray actors (see the module docstring)."""

    name = "ray"

    def __init__(self, study_dir: Path, *, kill_grace: float = 3.0, address: str | None = None,
                 cpus_per_trial: float = 1.0, shared_dir: Path | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray: pip install 'donkeyrl[ray]' "
                                "(or pip install 'ray>=2.9')") from None
        if cpus_per_trial <= 0:
            raise ExecutorError(f"--cpus-per-trial {cpus_per_trial:g} must be > 0")
        self.ray = ray
        self.study_root = Path(study_dir).resolve()
        self.pid_dir = self.study_root / "running"
        self.kill_grace = kill_grace
        self.address = address
        self.cpus_per_trial = float(cpus_per_trial)
        self.worker_root = Path(shared_dir) if shared_dir is not None else self.study_root
        self.sid = study_id(self.study_root)
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"namespace": NAMESPACE, "logging_level": logging.WARNING,
                                      "log_to_driver": False}
            if address is None:
                kwargs["include_dashboard"] = False
            try:
                ray.init(address=address, **kwargs)
            except Exception as exc:
                raise ExecutorError(f"cannot connect to the Ray cluster "
                                    f"{address or '(local)'}: {type(exc).__name__}: "
                                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
            self._owns_ray = True
        self._check_room()
        self._actor_cls: Any = ray.remote(TrialActor)

    def _check_room(self) -> None:
        """ExecutorError when the cluster's nodes with CPUs are all too small for one trial.

        A cluster without such nodes yet (a head without CPUs whose workers are joining, an
        autoscaling cluster) is accepted: trials wait for a node, as Ray queues them.
        """
        cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in self.ray.nodes() if n.get("Alive")]
        cpus = [c for c in cpus if c > 0]
        if not cpus:
            log.warning("the Ray cluster has no node with CPUs yet: trials wait for one")
        elif max(cpus) < self.cpus_per_trial:
            raise ExecutorError(f"--cpus-per-trial {self.cpus_per_trial:g}: no node of the Ray cluster "
                                f"has that many CPUs (largest: {max(cpus):g})")

    @property
    def cluster_cpus(self) -> float:
        """CPUs of the alive nodes of the cluster (for a study's log)."""
        return float(self.ray.cluster_resources().get("CPU", 0.0))

    def _options(self, trial: int) -> dict[str, Any]:
        return {"name": actor_name(self.sid, trial), "namespace": NAMESPACE,
                "lifetime": "detached", "num_cpus": self.cpus_per_trial, "max_restarts": 0,
                "max_concurrency": 4}

    def submit(self, spec: TrialSpec) -> RayTrial:
        """Write launch.json and the running-trial file, then create the trial's actor."""
        token = uuid.uuid4().hex
        made_dir = not spec.model_dir.exists()
        pid_file = self.pid_dir / f"trial-{spec.trial}.json"
        actor: Any = None
        try:
            spec.result_file.unlink(missing_ok=True)
            spec.model_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(spec.model_dir / LAUNCH_FILE, {
                "trial": spec.trial, "params": spec.params, "seed": spec.seed,
                "rerun_of": spec.rerun_of, "argv": spec.argv, "started_at": now_iso(),
                "token": token, EXECUTOR_KEY: self.name})
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(pid_file, {
                "trial": spec.trial, EXECUTOR_KEY: self.name, "actor": actor_name(self.sid, spec.trial),
                "namespace": NAMESPACE, "ray_address": self.address, "token": token,
                "params": spec.params, "seed": spec.seed, "rerun_of": spec.rerun_of,
                "started_at": now_iso(), "trial_argv": spec.argv,
                "result_file": str(spec.result_file), "log_file": str(spec.log_file),
                "model_dir": str(spec.model_dir), "timeout": spec.timeout})
            actor = self._actor_cls.options(**self._options(spec.trial)).remote(
                spec, study_root=str(self.study_root), worker_root=str(self.worker_root),
                token=token, sid=self.sid, kill_grace=self.kill_grace,
                controller_python=sys.executable)
            self._await_handover(actor, spec.trial)
            return RayTrial(self, spec, actor, pid_file)
        except BaseException as exc:
            if actor is not None:
                try:
                    self.ray.kill(actor, no_restart=True)
                except Exception:
                    pass
            pid_file.unlink(missing_ok=True)
            if made_dir:
                shutil.rmtree(spec.model_dir, ignore_errors=True)
            if isinstance(exc, (OSError, KeyboardInterrupt, SystemExit)):
                raise
            raise OSError(f"cannot create the trial's Ray actor: {type(exc).__name__}: {exc}") from exc

    def _await_handover(self, actor: Any, trial: int) -> None:
        """Wait until Ray's control store holds the actor's creation task, not only its name.

        Why: ``.remote()`` registers a named actor at once but hands its creation task over
        asynchronously; a controller killed in between leaves a registered-but-unresolved actor
        that Ray destroys with its owner, and the trial would come back ``lost`` instead of
        adopted. Past DEPENDENCIES_UNREADY the actor is Ray's (queued for resources or running)
        and survives the controller. Ray has no public call for an actor's state without its
        dashboard, hence its private state table; without it the wait is skipped.
        """
        try:
            from ray._private import state as ray_state
            actor_id = actor._actor_id.hex()
        except (ImportError, AttributeError):
            return
        deadline = time.monotonic() + HANDOVER_SEC
        while time.monotonic() < deadline:
            try:
                entry = ray_state.actors(actor_id=actor_id)
            except Exception as exc:  # a table Ray changed: adoption may then miss this trial
                log.debug("trial %d: actor state unavailable: %s", trial, exc)
                return
            if (entry or {}).get("State", "DEPENDENCIES_UNREADY") != "DEPENDENCIES_UNREADY":
                return
            time.sleep(0.02)
        log.warning("trial %d: Ray has not taken the actor's creation over after %.0f s; a "
                    "controller crash now would leave the trial lost", trial, HANDOVER_SEC)

    def recover(self, pid_dir: Path, known: set[int]) -> list[Recovered]:
        """Adopt every trial actor still on the cluster; local leftovers are reaped."""
        out = []
        for info in read_pid_files(pid_dir):
            trial = int(info["trial"])
            if is_local(info):
                note = reap_leftover(info, self.kill_grace)
                out.append(Recovered(trial, info, None, "interrupted", note))
                continue
            name = str(info.get("actor") or actor_name(self.sid, trial))
            try:
                actor = self.ray.get_actor(name, namespace=str(info.get("namespace") or NAMESPACE))
            except ValueError:
                out.append(Recovered(trial, info, None, "lost",
                                     f"trial {trial}: its Ray actor {name} is no longer on the "
                                     "cluster (its node died, or the cluster was restarted)"))
                continue
            spec = _spec_from_info(info, trial)
            handle = RayTrial(self, spec, actor, Path(info["_path"]))
            if trial in known:  # recorded already: it must not run on
                handle.cancel("interrupted", "already recorded")
                out.append(Recovered(trial, info, None, "interrupted",
                                     f"trial {trial} was already recorded: its actor was stopped"))
                continue
            out.append(Recovered(trial, info, handle, "", f"trial {trial} still runs on the Ray "
                                 f"cluster (actor {name}): adopted, its result will be recorded"))
        return out

    def close(self) -> None:
        if self._owns_ray and self.ray.is_initialized():
            self.ray.shutdown()


def _spec_from_info(info: dict[str, Any], trial: int) -> TrialSpec:
    """The TrialSpec of an adopted trial, from its running-trial file."""
    raw = info.get("params")
    seed = info.get("seed")
    rerun = info.get("rerun_of")
    model_dir = Path(str(info.get("model_dir")))
    return TrialSpec(trial=trial, params=dict(raw) if isinstance(raw, dict) else {},
                     argv=[str(a) for a in info.get("trial_argv") or []],
                     result_file=Path(str(info.get("result_file") or model_dir / "result.json")),
                     log_file=Path(str(info.get("log_file"))), model_dir=model_dir,
                     seed=seed if isinstance(seed, int) else 0,
                     timeout=float(info.get("timeout") or 0.0), cwd=model_dir,
                     rerun_of=rerun if isinstance(rerun, int) else None)
