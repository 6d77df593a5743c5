"""Fine-tuning: start a trial from a saved model's weights instead of a random policy.

Why weights into a fresh model rather than ``Algorithm.load`` and ``learn`` again: the fine-tuning
trial has its own hyperparameters (a smaller learning rate, another reward, other tracks, the real
simulator), which must all reach SB3 exactly as in any other trial; only the network is carried
over. Replay buffers and optimizer state are not (they belong to the old data).

The contract a saved model must share with the new trial (checked before anything trains, with an
error naming every difference): the same agent, the same action space (kind, and the discrete
grid), the same observation (image size, grey, crop, frame stack: the network's input) and the
same network shape (features extractor and hidden layers). Everything else may change.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Flat parameters that must match between the saved model and the fine-tuning trial.
CONTRACT = ("agent", "actions", "n_steer", "n_throttle", "obs_width", "obs_height", "grey", "crop_top",
            "frame_stack", "policy_net", "features_dim", "net_width", "net_depth")


class InitModelError(ValueError):
    """The saved model cannot start this trial (missing, corrupt, or another contract)."""


def _contract(cfg: Any) -> dict[str, Any]:
    flat = cfg.to_dict()
    out = {k: flat.get(k) for k in CONTRACT}
    out["actions"] = cfg.action_kind  # "auto" resolved: auto and its kind are the same contract
    return out


def check_compatible(saved: Any, cfg: Any, path: str | Path) -> None:
    """InitModelError naming each contract field where ``saved`` (the model's config) and ``cfg`` differ."""
    a, b = _contract(saved), _contract(cfg)
    diffs = [f"{k}: model {a[k]!r}, trial {b[k]!r}" for k in CONTRACT if a[k] != b[k]]
    if diffs:
        raise InitModelError(f"--init-model {path} does not fit this trial ({'; '.join(diffs)}); the agent, "
                             "actions, observation and network must match the saved model's "
                             f"(see {Path(path) / 'trial_config.json'})")


def load_init(path: str | Path, cfg: Any) -> Any:
    """The saved model at ``path`` (model.zip or its directory), checked against ``cfg``."""
    from donkeyrl.rl.evaluate import ModelLoadError, load_trained

    try:
        model, saved = load_trained(path)
    except ModelLoadError as exc:
        raise InitModelError(f"--init-model: {exc}") from None
    check_compatible(saved, cfg, path)
    return model


def init_weights(model: Any, saved_model: Any, path: str | Path) -> None:
    """Copies the saved policy's weights into ``model`` (same architecture, checked tensor by tensor)."""
    new, old = model.policy.state_dict(), saved_model.policy.state_dict()
    bad = [k for k in new if k not in old or tuple(old[k].shape) != tuple(new[k].shape)]
    if bad or set(old) != set(new):
        raise InitModelError(f"--init-model {path}: the saved policy's layers do not match this trial's "
                             f"network (first mismatch: {(bad or sorted(set(old) ^ set(new)))[0]})")
    model.policy.load_state_dict(old)
    # off-policy agents keep a target network: start it from the same weights
    for attr in ("q_net_target", "critic_target", "actor_target"):
        target = getattr(model.policy, attr, None)
        source = getattr(model.policy, attr.replace("_target", ""), None)
        if target is not None and source is not None:
            target.load_state_dict(source.state_dict())
    log.info("initialised the policy from %s", path)
