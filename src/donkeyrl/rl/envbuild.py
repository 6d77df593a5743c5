"""Build the exact env + wrapper stack of a TrialConfig, for training and for evaluation.

Stack, inner to outer (one place, so training and evaluation cannot drift apart):

    make_env(track(s), camera=small CameraConfig)   embedded: the renderer draws the small image
      [ImagePreprocess]                              other sims: crop/resize/grey in numpy+pillow
      ThrottleClamp                                  throttle minimum guard
      [SteeringRateLimit]                            smooth steering (steer_rate_limit)
      [DiscretizedAction]                            discrete agents
      reward wrapper (donkey | speed | progress)
      MinLapTimeGuard                                implausibly short laps end the episode
      ScalarRewardCheck                              NaN rewards fail loudly
      DrivingMetrics                                 per-episode driving metrics
      Monitor                                        episode reward/length for SB3
    DummyVecEnv | SubprocVecEnv -> VecFrameStack(frame_stack, channels last)

The env itself carries the step limit and the stuck/no-progress watchdog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecFrameStack

from donkeyrl.rl.config import TrialConfig
from donkeyrl.rl.metrics import DrivingMetrics
from donkeyrl.rl.wrappers import (DiscretizedAction, ImagePreprocess, MinLapTimeGuard,
                                  ScalarRewardCheck, SteeringRateLimit, ThrottleClamp,
                                  wrap_reward)

log = logging.getLogger(__name__)

EnvFactory = Callable[..., gym.Env]


def default_env_factory() -> EnvFactory:
    """``donkeyrl.envs.make_env`` (imported late: it pulls in the simulator)."""
    from donkeyrl.envs import make_env

    return make_env


def camera_config(cfg: TrialConfig) -> Any:
    """The small-image CameraConfig the embedded renderer draws directly."""
    from donkeyrl.sim.camera import CameraConfig

    return CameraConfig(width=cfg.obs_width, height=cfg.obs_height, grey=cfg.grey,
                        crop_top=cfg.crop_top)


def build_env(cfg: TrialConfig, *, tracks: Sequence[str] | None = None, seed: int | None = None,
              env_factory: EnvFactory | None = None) -> gym.Env:
    """One wrapped env of ``cfg`` (on ``tracks`` if given, else the training tracks)."""
    factory = env_factory or default_env_factory()
    names = list(tracks) if tracks is not None else list(cfg.tracks)
    track: str | list[str] = names[0] if len(names) == 1 else names
    embedded = cfg.sim == "embedded"
    kwargs: dict[str, Any] = dict(
        sim=cfg.sim, max_cte=cfg.max_cte, steer_limit=cfg.steer_limit,
        throttle_min=cfg.throttle_min, throttle_max=cfg.throttle_max,
        domain_randomization=cfg.domain_randomization, max_steps=cfg.max_steps, seed=seed,
        max_laps=cfg.max_laps,
        camera=camera_config(cfg) if embedded else None,
    )
    if not embedded:
        kwargs.update(host=cfg.host, port=cfg.port, sim_path=cfg.sim_path)
    env = factory(track, **kwargs)
    if not embedded:
        env = ImagePreprocess(env, cfg.obs_width, cfg.obs_height, cfg.grey, cfg.crop_top)
    return wrap(env, cfg)


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
    return Monitor(env)


def build_vec_env(cfg: TrialConfig, *, n_envs: int | None = None, tracks: Sequence[str] | None = None,
                  seed: int | None = None, env_factory: EnvFactory | None = None,
                  vec_env: str | None = None) -> VecEnv:
    """``n_envs`` wrapped envs (default: the resolved config's) in a VecEnv with frame stacking.

    Env ``i`` is built with ``seed + i``, so each samples its own track sequence and appearance.
    """
    rcfg = cfg.resolved()
    n = int(n_envs if n_envs is not None else rcfg.n_envs or 1)
    base_seed = cfg.seed if seed is None else seed
    kind = vec_env or cfg.vec_env

    def thunk(i: int) -> Callable[[], gym.Env]:
        return lambda: build_env(cfg, tracks=tracks, seed=base_seed + i, env_factory=env_factory)

    fns = [thunk(i) for i in range(n)]
    venv: VecEnv = SubprocVecEnv(fns, start_method="fork") if kind == "subproc" and n > 1 \
        else DummyVecEnv(fns)
    if cfg.frame_stack > 1:
        venv = VecFrameStack(venv, cfg.frame_stack, channels_order="last")
    return venv


def metrics_wrappers(venv: VecEnv) -> list[DrivingMetrics]:
    """The DrivingMetrics wrapper of each env of a DummyVecEnv-based stack."""
    base = venv
    while hasattr(base, "venv"):
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
