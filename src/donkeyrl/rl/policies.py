"""Compact CNN features extractor for small grey frames, and the policy_kwargs that select it.

Why: SB3's NatureCNN on raw 120x160x3 images trains at 5-15 steps/s on a 2-core CPU; the road is
already recognisable in a 64x32 grey crop, and three small strided convolutions on it cost a few
percent of NatureCNN's FLOPs (see benchmarks/README.md, "rl pipeline speed").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from donkeyrl.rl.algorithms import FEATURE_EXTRACTORS, load_object


class CompactCNN(BaseFeaturesExtractor):
    """Three strided convolutions + one linear layer.

    Input: (C, H, W) images (SB3 transposes channel-last images and scales them to [0, 1]),
    C = channels x frame_stack. Shapes for the default 2x32x64 input:
        conv 5x5/2 -> 16x14x30, conv 3x3/2 -> 32x6x14, conv 3x3/1 -> 32x4x12, flatten 1536,
        linear -> features_dim.
    """

    def __init__(self, observation_space: gym.spaces.Box, features_dim: int = 128) -> None:
        super().__init__(observation_space, features_dim)
        channels = observation_space.shape[0]
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, 16, kernel_size=5, stride=2), nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, kernel_size=3, stride=1), nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.cnn(torch.zeros(1, *observation_space.shape)).shape[1]
        self.linear = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.linear(self.cnn(observations))


def features_extractor(policy_net: str) -> type[BaseFeaturesExtractor]:
    """The extractor class named by ``policy_net`` (a key of ``FEATURE_EXTRACTORS``)."""
    if policy_net not in FEATURE_EXTRACTORS:
        raise ValueError(f"unknown policy_net {policy_net!r}; valid: {', '.join(FEATURE_EXTRACTORS)}")
    cls: type[BaseFeaturesExtractor] = load_object(FEATURE_EXTRACTORS[policy_net])
    return cls


def policy_kwargs(policy_net: str, features_dim: int, net_width: int, net_depth: int,
                  net_arch_keys: tuple[str, ...]) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for the extractor and the hidden layers after it.

    ``net_arch_keys`` (from the algorithm's registry entry) names the networks that get their own
    hidden layers (PPO: pi/vf, SAC: pi/qf); an empty tuple gives SB3 a single list (DQN's
    q-network).
    """
    if net_width < 1 or net_depth < 0:
        raise ValueError(f"net_width must be >= 1 and net_depth >= 0, got {net_width}, {net_depth}")
    hidden = [int(net_width)] * int(net_depth)
    net_arch: list[int] | dict[str, list[int]] = {k: list(hidden) for k in net_arch_keys} if net_arch_keys \
        else hidden
    return {
        "features_extractor_class": features_extractor(policy_net),
        "features_extractor_kwargs": {"features_dim": int(features_dim)},
        "net_arch": net_arch,
    }
