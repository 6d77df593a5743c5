"""A short PPO training on the real-simulator env through the TCP path (protocol server in fast mode)."""

from __future__ import annotations

import numpy as np
import pytest

from donkeyrl.sim.camera import CameraConfig

from unity_helpers import unity_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def test_ppo_trains_a_few_hundred_steps_over_tcp(fast_server):
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env

    env = unity_env(fast_server, "generated_track", camera=CameraConfig(width=64, height=48),
                   max_steps=100)
    try:
        check_env(env, skip_render_check=True)
        model = PPO("CnnPolicy", env, n_steps=128, batch_size=64, n_epochs=2, seed=0, device="cpu")
        before = [p.detach().clone() for p in model.policy.parameters()]
        model.learn(total_timesteps=256)
        assert model.num_timesteps >= 256
        changed = any(not np.allclose(a.numpy(), b.detach().numpy())
                      for a, b in zip(before, model.policy.parameters()))
        assert changed
        obs, _ = env.reset()
        action, _ = model.predict(obs, deterministic=True)
        assert env.action_space.contains(action.astype(np.float32))
        env.step(action)
    finally:
        env.close()
