"""The real DonkeyCar simulator: protocol codec (``protocol``, ``messages``), TCP client
(``client``), simulator launcher (``launcher``), the scene and camera rig it is asked for
(``scene``, ``camera_rig``), lidar, and a protocol server over the built-in simulator (``server``,
``donkeyrl sim serve``). Its Gymnasium env is ``donkeyrl.envs.unity`` (``make_donkey_env``).

Submodules are imported on demand so ``import donkeyrl.donkey`` stays cheap.
"""
