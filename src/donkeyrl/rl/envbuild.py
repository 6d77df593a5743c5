"""Build the exact env + wrapper stack of a TrialConfig, for training and for evaluation.

Two paths, one set of numbers (tests/rl/test_batched_training.py runs both on the same seeds and
actions and compares observations, rewards, dones, infos and driving metrics bit for bit):

**Batched** (``vec_env="batched"``, what ``auto`` means for the built-in simulator): all cars of the
trial in one :class:`~donkeyrl.envs.vector.BatchedDonkeyEnv` (one physics and one render call per
step for every car, each on its own track), then the batch form of every wrapper:

    BatchedDonkeyEnv(n_envs, track(s) or regime, small CameraConfig, seed)
      VecThrottleClamp -> [VecSteeringRateLimit] -> [VecDiscretizedAction]
      vec reward (donkey | speed | progress) -> VecMinLapTimeGuard -> VecRewardCheck
      VecDrivingMetrics -> VecEpisodeMonitor                 (float32 rewards, like DummyVecEnv)
    VecFrameStack(frame_stack, channels last)

**Per env** (``dummy``/``subproc``; evaluation, other simulators, custom env factories): one env per
car, each wrapped (inner to outer):

    make_env(track(s), camera=small CameraConfig)   the simulator draws (or is cut to) the small image
      ThrottleClamp                                  throttle minimum guard
      [SteeringRateLimit]                            smooth steering (steer_rate_limit)
      [DiscretizedAction]                            discrete agents
      reward wrapper (donkey | speed | progress)
      MinLapTimeGuard                                implausibly short laps end the episode
      ScalarRewardCheck                              NaN rewards fail loudly
      DrivingMetrics                                 per-episode driving metrics
      Monitor                                        episode reward/length for SB3
    DummyVecEnv | SubprocVecEnv -> VecFrameStack(frame_stack, channels last)

Env ``i`` (car ``i``) is seeded ``seed + i`` on both paths. The env itself carries the step limit and
the stuck/no-progress watchdog (:mod:`donkeyrl.envs.common`). Stable-Baselines3 is imported inside
the functions. The vec env kinds are declared once, with the trial schema (:data:`donkeyrl.rl.config.VEC_ENVS`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from donkeyrl.rl.config import VEC_ENVS
from donkeyrl.rl.metrics import DrivingMetrics
from donkeyrl.rl.wrappers import (DiscretizedAction, MinLapTimeGuard, ScalarRewardCheck, SteeringRateLimit,
                                  ThrottleClamp, wrap_reward)

if TYPE_CHECKING:
    from stable_baselines3.common.vec_env import VecEnv

    from donkeyrl.rl.config import TrialConfig

log = logging.getLogger(__name__)

EnvFactory = Callable[..., gym.Env]

#: Render threads of the batched training env: 1 = every car's frame drawn on the training thread.
#: Measured (benchmarks/README.md, "Training paths"): numba's parallel render pool, once started
#: in the training process, kept an OpenMP worker spinning next to torch and made PPO's learner
#: 5-8x slower; a 2-thread render also ran 4-10x slower under load (waiting for its descheduled
#: thread); drawn car by car on one thread it is as fast per frame as the batched kernel.
RENDER_THREADS = 1


def default_env_factory() -> EnvFactory:
    """``donkeyrl.envs.make_env`` (imported late: it pulls in the simulator)."""
    from donkeyrl.envs import make_env

    return make_env


def camera_config(cfg: TrialConfig) -> Any:
    """The small-image CameraConfig the simulator draws (or the real simulator's frame is cut to)."""
    from donkeyrl.sim.camera import CameraConfig

    return CameraConfig(width=cfg.obs_width, height=cfg.obs_height, grey=cfg.grey,
                        crop_top=cfg.crop_top)


def resolve_vec_env(kind: str, sim: str, builtin_factory: bool = True) -> str:
    """The concrete vec env kind: ``auto`` is ``batched`` on the built-in simulator with its own
    env factory, else ``dummy``. ValueError for an unknown kind or ``batched`` where it cannot run."""
    if kind not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {kind!r}; valid: {', '.join(VEC_ENVS)}")
    batched_ok = sim == "embedded" and builtin_factory
    if kind == "auto":
        return "batched" if batched_ok else "dummy"
    if kind == "batched" and not batched_ok:
        raise ValueError(f"vec_env batched steps the built-in simulator (sim=embedded), not sim={sim}"
                         + ("" if sim != "embedded" else " with a custom env factory")
                         + "; use dummy or subproc")
    return kind


def build_env(cfg: TrialConfig, *, tracks: Sequence[str] | None = None, seed: int | None = None,
              env_factory: EnvFactory | None = None) -> gym.Env:
    """One wrapped env of ``cfg`` (on ``tracks`` if given, else the training tracks)."""
    factory = env_factory or default_env_factory()
    names = list(tracks) if tracks is not None else list(cfg.tracks)
    track: str | list[str] = names[0] if len(names) == 1 else names
    kwargs: dict[str, Any] = dict(
        sim=cfg.sim, max_cte=cfg.max_cte, steer_limit=cfg.steer_limit,
        throttle_min=cfg.throttle_min, throttle_max=cfg.throttle_max,
        domain_randomization=cfg.domain_randomization, max_steps=cfg.max_steps, seed=seed,
        max_laps=cfg.max_laps, camera=camera_config(cfg),
    )
    if cfg.sim != "embedded":
        kwargs.update(host=cfg.host, port=cfg.port, sim_path=cfg.sim_path)
    return wrap(factory(track, **kwargs), cfg)


def wrap(env: gym.Env, cfg: TrialConfig) -> gym.Env:
    """Adds the action, reward, guard and metrics wrappers of ``cfg`` to a base env."""
    env = ThrottleClamp(env, cfg.throttle_min, cfg.throttle_max)
    if cfg.steer_rate_limit is not None:
        env = SteeringRateLimit(env, cfg.steer_rate_limit)
    if cfg.discrete:
        env = DiscretizedAction(env, cfg.n_steer, cfg.n_throttle)
    env = wrap_reward(env, cfg.reward, cfg.max_cte, cfg.crash_penalty)
    env = MinLapTimeGuard(env, cfg.min_lap_time, penalty=cfg.crash_penalty)
    env = ScalarRewardCheck(env)
    env = DrivingMetrics(env, cfg.max_cte, cfg.min_lap_time)
    from stable_baselines3.common.monitor import Monitor

    return Monitor(env)


def build_batched(cfg: TrialConfig, n_envs: int, *, tracks: Sequence[str] | None = None,
                  seed: int | None = None) -> VecEnv:
    """``n_envs`` cars of ``cfg`` in one BatchedDonkeyEnv with the batch wrappers (no frame stack)."""
    from donkeyrl.envs.common import EpisodeLimits
    from donkeyrl.envs.vector import BatchedDonkeyEnv

    names = list(tracks) if tracks is not None else list(cfg.tracks)
    base = BatchedDonkeyEnv(
        n_envs, names, camera=camera_config(cfg),
        limits=EpisodeLimits(max_cte=cfg.max_cte, max_steps=cfg.max_steps, max_laps=cfg.max_laps),
        steer_limit=cfg.steer_limit, throttle_min=cfg.throttle_min, throttle_max=cfg.throttle_max,
        domain_randomization=cfg.domain_randomization, seed=cfg.seed if seed is None else seed,
        render_threads=RENDER_THREADS)
    return vec_wrap(base, cfg)


def vec_wrap(venv: VecEnv, cfg: TrialConfig) -> VecEnv:
    """:func:`wrap` for a batch: the same wrappers, in the same order, in their batch form."""
    from donkeyrl.rl.vecwrappers import (VecDiscretizedAction, VecDrivingMetrics, VecEpisodeMonitor,
                                         VecMinLapTimeGuard, VecRewardCheck, VecSteeringRateLimit,
                                         VecThrottleClamp, vec_wrap_reward)

    venv = VecThrottleClamp(venv, cfg.throttle_min, cfg.throttle_max)
    if cfg.steer_rate_limit is not None:
        venv = VecSteeringRateLimit(venv, cfg.steer_rate_limit)
    if cfg.discrete:
        venv = VecDiscretizedAction(venv, cfg.n_steer, cfg.n_throttle)
    venv = vec_wrap_reward(venv, cfg.reward, cfg.max_cte, cfg.crash_penalty)
    venv = VecMinLapTimeGuard(venv, cfg.min_lap_time, penalty=cfg.crash_penalty)
    venv = VecRewardCheck(venv)
    venv = VecDrivingMetrics(venv, cfg.max_cte, cfg.min_lap_time)
    return VecEpisodeMonitor(venv)


def build_vec_env(cfg: TrialConfig, *, n_envs: int | None = None, tracks: Sequence[str] | None = None,
                  seed: int | None = None, env_factory: EnvFactory | None = None,
                  vec_env: str | None = None) -> VecEnv:
    """``n_envs`` cars (default: the config's) of ``cfg`` as a VecEnv with frame stacking.

    ``vec_env`` overrides ``cfg.vec_env`` (see :data:`VEC_ENVS`). Car/env ``i`` is seeded
    ``seed + i``, so each samples its own track sequence and appearance.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecFrameStack

    n = int(n_envs if n_envs is not None else cfg.n_envs or 1)
    base_seed = cfg.seed if seed is None else seed
    builtin = env_factory is None and default_env_factory() is _builtin_make_env()
    kind = resolve_vec_env(vec_env or cfg.vec_env, cfg.sim, builtin)
    venv: VecEnv
    if kind == "batched":
        venv = build_batched(cfg, n, tracks=tracks, seed=base_seed)
    else:
        def thunk(i: int) -> Callable[[], gym.Env]:
            return lambda: build_env(cfg, tracks=tracks, seed=base_seed + i, env_factory=env_factory)

        fns = [thunk(i) for i in range(n)]
        venv = SubprocVecEnv(fns, start_method="fork") if kind == "subproc" and n > 1 else DummyVecEnv(fns)
    log.info("%d %s env(s) on %s", n, kind, ", ".join(tracks if tracks is not None else cfg.tracks))
    if cfg.frame_stack > 1:
        venv = VecFrameStack(venv, cfg.frame_stack, channels_order="last")
    return venv


def _builtin_make_env() -> EnvFactory:
    from donkeyrl.envs import make_env

    return make_env


def metrics_wrappers(venv: VecEnv) -> list[Any]:
    """What records each car's episodes (``.episodes``): the DrivingMetrics wrapper of each env of
    a DummyVecEnv-based stack, or the per-car recorders of a batched stack."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from donkeyrl.rl.vecwrappers import VecDrivingMetrics

    base = venv
    while hasattr(base, "venv"):
        if isinstance(base, VecDrivingMetrics):
            return list(base.recorders)
        base = base.venv
    if not isinstance(base, DummyVecEnv):
        raise TypeError("metrics are read from DummyVecEnv envs; evaluate with vec_env='dummy'")
    found = []
    for env in base.envs:
        e: gym.Env = env
        while not isinstance(e, DrivingMetrics):
            if not hasattr(e, "env"):
                raise TypeError("env stack has no DrivingMetrics wrapper")
            e = e.env
        found.append(e)
    return found
