"""Reinforcement learning: one training trial and its evaluation, from pixels.

Modules: ``config`` (TrialConfig, saved beside model.zip), ``wrappers`` (action grid, rewards,
guards, preprocessing), ``envbuild`` (the one env + wrapper stack for training and evaluation),
``policies`` (compact CNN), ``agents`` (PPO/DQN/SAC from a config), ``callbacks`` (progress,
divergence, lap checks), ``metrics`` (driving metrics, driving_score), ``train`` (run_trial),
``evaluate`` (evaluate, load_trained, expert_lap_time).
"""
