"""Gymnasium environments over a DonkeyCar simulator, and the one factory the project uses.

Three envs over one step core (:mod:`donkeyrl.envs.common`), named after the simulator they drive:

- :class:`~donkeyrl.envs.embedded.EmbeddedDonkeyEnv`: one car on the built-in simulator (``sim/``);
- :class:`~donkeyrl.envs.vector.BatchedDonkeyEnv`: many cars of the built-in simulator stepped and
  rendered in one batched call, as a Stable-Baselines3 ``VecEnv`` (the training path);
- :class:`~donkeyrl.envs.unity.UnityDonkeyEnv`: the real DonkeyCar (Unity) simulator over TCP.

``make_env`` hides which simulator runs the car: the built-in one (``sim="embedded"``) or the
real DonkeyCar simulator over TCP (``sim="donkey"``). Both give the same observation, action,
reward and info contract (see ``EmbeddedDonkeyEnv``).

Importing this package registers the environments with Gymnasium under the ``donkeyrl/``
namespace: ``gym.make("donkeyrl/Donkey-v0", track="mountain_track")`` and one id per DonkeyCar
env id, e.g. ``gym.make("donkeyrl/donkey-generated-roads-v0")``.
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym

from donkeyrl.envs.common import EpisodeLimits
from donkeyrl.sim.camera import CameraConfig
from donkeyrl.sim.tracks import ENV_IDS

#: The gym-donkeycar env ids and the scene (catalogue track) each one loads (protocol doc, section 5).
DONKEY_ENV_IDS: dict[str, str] = ENV_IDS

SIMULATORS = ("embedded", "donkey")


def make_env(track: str | Sequence[str] = "generated_track", *, sim: str = "embedded",
             host: str = "127.0.0.1", port: int = 9091, sim_path: str | None = None,
             camera: CameraConfig | None = None, max_cte: float = 8.0, steer_limit: float = 1.0,
             throttle_min: float = 0.0, throttle_max: float = 1.0, domain_randomization: bool = False,
             max_steps: int | None = None, max_laps: int | None = None, start_noise: bool = True,
             seed: int | None = None, render_mode: str | None = None) -> gym.Env:
    """Build a DonkeyCar environment on the chosen simulator.

    ``track`` is a catalogue name, DonkeyCar scene name or env id, a training regime
    (``procedural``, ``catalogue``, ``mixed``; embedded only), or several of them (one is drawn per
    episode). ``seed`` seeds the first reset. Bad values raise ValueError naming the value and what
    is valid.
    """
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; valid: {', '.join(SIMULATORS)}")
    limits = EpisodeLimits(max_cte=max_cte, max_steps=max_steps, max_laps=max_laps)
    names = [track] if isinstance(track, str) else list(track)
    if sim == "embedded":
        from donkeyrl.envs.embedded import EmbeddedDonkeyEnv

        env: gym.Env = EmbeddedDonkeyEnv(names, camera=camera, limits=limits, steer_limit=steer_limit,
                                         throttle_min=throttle_min, throttle_max=throttle_max,
                                         domain_randomization=domain_randomization,
                                         start_noise=start_noise, render_mode=render_mode)
    else:
        if len(names) != 1:
            raise ValueError(f"the real simulator runs one scene at a time; got {len(names)} tracks: {names}")
        from donkeyrl.envs.unity import make_unity_env

        env = make_unity_env(names[0], host=host, port=port, sim_path=sim_path, camera=camera,
                             limits=limits, steer_limit=steer_limit, throttle_min=throttle_min,
                             throttle_max=throttle_max, render_mode=render_mode)
    if seed is not None:
        env.reset(seed=seed)
    return env


def _register() -> None:
    """Register the ``donkeyrl/`` ids with Gymnasium (idempotent)."""
    if "donkeyrl/Donkey-v0" in gym.registry:
        return
    gym.register("donkeyrl/Donkey-v0", entry_point="donkeyrl.envs.embedded:EmbeddedDonkeyEnv")
    for env_id, scene in DONKEY_ENV_IDS.items():
        gym.register(f"donkeyrl/{env_id}", entry_point="donkeyrl.envs.embedded:EmbeddedDonkeyEnv",
                     kwargs={"track": scene})


_register()

__all__ = ["DONKEY_ENV_IDS", "SIMULATORS", "CameraConfig", "EpisodeLimits", "make_env"]
