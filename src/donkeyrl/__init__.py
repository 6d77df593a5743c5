"""donkeyrl: reinforcement learning for DonkeyCar with GP+UCB autoresearch.

Layers (imports point one way): sim <- envs <- rl <- research <- cli.
"""

__version__ = "0.1.0"
