"""The real DonkeyCar simulator: protocol codec (``protocol``, ``messages``), TCP client
(``client``), Gymnasium env (``env``: ``make_donkey_env``), simulator launcher (``launcher``) and a
protocol server over the built-in simulator (``server``, ``donkeyrl sim serve``).

Submodules are imported on demand so ``import donkeyrl.donkey`` stays cheap.
"""
