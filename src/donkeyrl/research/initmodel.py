"""A fine-tuning study (``donkeyrl research --init-model DIR``): every trial starts from one model.

Every trial gets ``--init-model DIR`` (the trainer copies the saved policy's weights into the
new model, :mod:`donkeyrl.rl.finetune`). The saved network only fits a trial with the same
*contract* (``donkeyrl.rl.finetune.CONTRACT``: agent, actions and the discrete grid, observation
size, grey, crop, frame stack, network shape), so the study fixes those parameters to the model's
values and takes them out of the searched space; everything else (learning rate, tracks, reward,
domain randomisation, ...) is searched as usual. The model's configuration is read from the
``trial_config.json`` beside its ``model.zip`` before anything starts, so that a model of
another agent, or a missing or unreadable model, is one error line, not a study of failed trials.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

__all__ = ["InitModelError", "model_file", "contract_values"]


class InitModelError(ValueError):
    """``--init-model`` cannot start a fine-tuning study (one line: the path and the reason)."""


def model_file(path: str | Path) -> Path:
    """The ``model.zip`` of ``path`` (the model file or its directory), checked to be a zip."""
    p = Path(path)
    model = p / "model.zip" if p.is_dir() else p
    if not model.is_file():
        raise InitModelError(f"--init-model {path}: no model file at {model} (give a trained "
                             "model's directory or its model.zip)")
    if not zipfile.is_zipfile(model):
        raise InitModelError(f"--init-model {path}: {model} is not a saved model (not a zip "
                             "archive)")
    return model


def contract_values(path: str | Path, agent: str) -> dict[str, Any]:
    """The contract parameters of the saved model at ``path`` as flat trial parameters.

    ``agent`` is the study's ``--agent``: a model of another agent is an InitModelError.
    ``actions`` is the resolved kind (``auto`` becomes ``discrete`` or ``continuous``) and the
    grid parameters are left out for continuous actions (they do not apply there).
    """
    from donkeyrl.rl.config import TrialConfig
    from donkeyrl.rl.finetune import CONTRACT

    model = model_file(path)
    try:
        saved = TrialConfig.load(model)
    except FileNotFoundError as exc:
        raise InitModelError(f"--init-model {path}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise InitModelError(f"--init-model {path}: cannot read its trial config: {exc}") from None
    if saved.agent != agent:
        raise InitModelError(f"--init-model {path} is a {saved.agent} model but --agent is {agent}; "
                             f"a fine-tuning study keeps the model's agent (pass --agent "
                             f"{saved.agent})")
    flat = saved.to_dict()
    flat["actions"] = saved.action_kind
    return {k: flat[k] for k in CONTRACT if k != "agent" and flat.get(k) is not None}
