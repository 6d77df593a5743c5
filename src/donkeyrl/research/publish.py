"""Commit the study's results, logs and champion manifest to git and push them to a remote.

The study directory becomes its own git repository (``git init`` on first use). Every
``every`` completed trials (and once at the end of the run, and after the final test) the
publisher stages the results journal, the study log and config, the trial logs and result files,
the final test's head-to-head table and marker, the champion manifest and,
depending on ``models``, model files (``none``, ``champion`` = only models/champion/model.zip,
``all`` = every trial model too) no larger than ``max_model_mb``; ``exclude`` globs (relative
paths, fnmatch syntax) drop anything else. It commits if something changed and pushes ``HEAD``
to ``branch`` on ``remote`` (a URL or a path to a bare repository).

Publishing must never stop the study: every git failure (no git, a remote that is down, a
rejected push, a hung ssh killed after ``timeout`` seconds) is logged, and the publish is retried
after the next trial until it succeeds. git runs non-interactively (no password prompt).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .procs import kill_group

__all__ = ["PublishConfig", "Publisher", "MODEL_POLICIES"]

log = logging.getLogger(__name__)

MODEL_POLICIES = ("none", "champion", "all")

_GITIGNORE = """# written by donkeyrl research: controller state that must not be published
controller.lock
running/
.*.tmp-*
*.zip
"""
_ALWAYS = ("results.jsonl", "study.log", "study.json", "logs/*.log", "models/trial-*/result.json",
           "models/champion/manifest.json", ".gitignore", "head_to_head.json", "head_to_head.txt",
           "final/final.json", "final/baseline/result.json")


@dataclass(frozen=True)
class PublishConfig:
    """Where and what to publish."""

    remote: str | None = None
    """git remote URL or path; None disables publishing."""
    every: int = 10
    """Publish after every this many completed trials (and at the end of the run)."""
    models: str = "champion"
    """Model files to include: ``none``, ``champion`` or ``all``."""
    max_model_mb: float = 50.0
    """Model files larger than this (MiB) are never committed (a warning is logged)."""
    exclude: tuple[str, ...] = ()
    """fnmatch globs of study-relative paths never to commit."""
    branch: str = "main"
    """Remote branch that receives the commits."""
    timeout: float = 120.0
    """Seconds before a git command (e.g. a hung push) is killed."""

    def __post_init__(self) -> None:
        if self.models not in MODEL_POLICIES:
            raise ValueError(f"models={self.models!r}; valid: {list(MODEL_POLICIES)}")
        if self.every < 1:
            raise ValueError(f"every={self.every} must be >= 1")
        if not self.max_model_mb >= 0:
            raise ValueError(f"max_model_mb={self.max_model_mb} must be >= 0")


class GitError(RuntimeError):
    """A git command failed (message includes its output)."""


class Publisher:
    """Publishes ``study_dir`` according to ``config``; see the module docstring."""

    def __init__(self, study_dir: Path, config: PublishConfig) -> None:
        self.study_dir = Path(study_dir)
        self.config = config
        self.retry = False
        """True after a failed publish: the next ``maybe_publish`` tries again."""
        self.last_error = ""
        self.pushes = 0
        """Successful pushes in this run."""

    @property
    def enabled(self) -> bool:
        return bool(self.config.remote)

    def _git(self, *args: str) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true",
               "LC_ALL": "C"}
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20")
        try:
            proc = subprocess.Popen(["git", *args], cwd=self.study_dir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            raise GitError(f"cannot run git: {exc}") from exc
        try:
            out, _ = proc.communicate(timeout=self.config.timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid, 2.0)
            proc.communicate()
            raise GitError(f"git {args[0]} timed out after {self.config.timeout:g} s") from None
        text = out.decode("utf-8", "replace").strip()
        if proc.returncode:
            raise GitError(f"git {' '.join(args[:2])} failed ({proc.returncode}): {text[-400:]}")
        return text

    def _ensure_repo(self) -> None:
        if not (self.study_dir / ".git").exists():
            # an invalid branch would make `git init -b` fail half-way, leaving a broken .git
            self._git("check-ref-format", "--branch", self.config.branch)
            self._git("init", "-q", "-b", self.config.branch)
            log.info("initialised a git repository in %s", self.study_dir)
        ignore = self.study_dir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE)
        try:
            self._git("config", "user.email")
        except GitError:
            self._git("config", "user.email", "donkeyrl@localhost")
            self._git("config", "user.name", "donkeyrl research")

    def _excluded(self, rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, pat) for pat in self.config.exclude)

    def files(self) -> list[str]:
        """Study-relative paths that the next commit would include."""
        out: list[str] = []
        for pattern in _ALWAYS:
            out += [str(p.relative_to(self.study_dir)) for p in sorted(self.study_dir.glob(pattern))]
        models: list[Path] = []
        if self.config.models in ("champion", "all"):
            models.append(self.study_dir / "models" / "champion" / "model.zip")
        if self.config.models == "all":
            models += sorted(self.study_dir.glob("models/trial-*/*.zip"))
        limit = self.config.max_model_mb * 2**20
        for m in models:
            if not m.is_file():
                continue
            if m.stat().st_size > limit:
                log.warning("not publishing %s: %.1f MiB > --push-max-mb %g", m,
                            m.stat().st_size / 2**20, self.config.max_model_mb)
                continue
            out.append(str(m.relative_to(self.study_dir)))
        return [p for p in out if not self._excluded(p)]

    def publish(self, message: str) -> bool:
        """Commit (if anything changed) and push; returns success, never raises."""
        if not self.enabled:
            return True
        try:
            self._ensure_repo()
            files = self.files()
            if files:
                self._git("add", "-f", "--", *files)
            try:
                self._git("diff", "--cached", "--quiet")
            except GitError:
                self._git("commit", "-q", "-m", message)
            self._git("push", "-q", str(self.config.remote), f"HEAD:refs/heads/{self.config.branch}")
        except (GitError, OSError) as exc:
            self.retry = True
            self.last_error = str(exc)
            log.warning("publishing to %s failed (will retry after the next trial): %s",
                        self.config.remote, exc)
            return False
        self.retry = False
        self.last_error = ""
        self.pushes += 1
        log.info("published study to %s (%s)", self.config.remote, message)
        return True

    def maybe_publish(self, completed: int, message: str) -> bool | None:
        """Publish every ``every`` trials or to retry a failure; None when nothing was due."""
        if not self.enabled or not (self.retry or completed % self.config.every == 0):
            return None
        return self.publish(message)
