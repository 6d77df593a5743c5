"""Compatibility re-export: the real-simulator env now lives in :mod:`donkeyrl.envs.unity`.

Kept only while code outside the env package still imports ``donkeyrl.donkey.env``; it is the one
import from ``donkey`` into ``envs`` the layering test allows (tests/test_import_graph.py), and it
goes away once nothing imports it. New code imports :class:`donkeyrl.envs.unity.UnityDonkeyEnv`.
"""

from donkeyrl.envs.unity import (DonkeySimEnv, UnityDonkeyEnv, fit_image, make_donkey_env, make_unity_env,
                                 path_from_nodes, scene_name)

__all__ = ["DonkeySimEnv", "UnityDonkeyEnv", "fit_image", "make_donkey_env", "make_unity_env",
           "path_from_nodes", "scene_name"]
