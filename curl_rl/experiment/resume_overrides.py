"""The settings a resumed run may change: the ones a diverging run is advised to change.

A ``FloatingPointError`` from the auxiliary loss says "lower aux lr or weight, keep grad_clip on,
or set nan_policy='skip'"; a resumed run must be able to follow that advice without starting
over. Everything else (the env, the architecture, gamma, batch sizes ...) defines the run and is
refused by name: changing it mid-run would make one run out of two different experiments.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm

from curl_rl.experiment.config import UsageError

__all__ = ["SAFE_ON_RESUME", "apply_resume_overrides", "check_resume_overrides"]

#: ``--set`` keys a resumed run accepts, and what each changes in the loaded model
SAFE_ON_RESUME: dict[str, str] = {
    "algo.learning_rate": "the RL optimizer's learning rate (from the next update on)",
    "aux.weight": "the auxiliary loss weight",
    "aux.future_weight": "the future-prediction loss weight",
    "aux.lr": "the auxiliary optimizer's learning rate",
    "aux.grad_clip": "the auxiliary gradient clip",
    "aux.nan_policy": "what a non-finite auxiliary loss does (raise or skip)",
}


def check_resume_overrides(pairs: Sequence[tuple[str, Any]], arm: str) -> None:
    """Refuse, by name, every ``--set`` a resumed run cannot take.

    :param pairs: the parsed ``--set`` pairs given with ``--resume``.
    :param arm: the run's arm (``none`` has no auxiliary settings to change).
    """
    for key, _ in pairs:
        if key not in SAFE_ON_RESUME:
            raise UsageError(
                f"--set {key} cannot change on --resume (it defines the run); a resumed run accepts "
                f"{', '.join(SAFE_ON_RESUME)}. Start a new run (--name NEW_NAME) to change {key}"
            )
        if key.startswith("aux.") and arm == "none":
            raise UsageError(f"--set {key}: this run's arm is 'none', which has no auxiliary loss")


def apply_resume_overrides(model: BaseAlgorithm, pairs: Sequence[tuple[str, Any]]) -> None:
    """Apply checked overrides to a model loaded from a checkpoint.

    :param model: the loaded model.
    :param pairs: ``(key, value)`` pairs, values already validated by the experiment config.
    """
    aux_changes = {key.split(".", 1)[1]: value for key, value in pairs if key.startswith("aux.")}
    if aux_changes:
        config = dataclasses.replace(getattr(model, "aux_config"), **aux_changes)  # noqa: B009
        model.aux_config = config.validate()  # type: ignore[attr-defined]
        optimizer = getattr(model, "aux_optimizer", None)
        if "lr" in aux_changes and optimizer is not None:
            for group in optimizer.param_groups:
                group["lr"] = float(aux_changes["lr"])
    for key, value in pairs:
        if key == "algo.learning_rate":
            model.learning_rate = value
            model._setup_lr_schedule()  # SB3 sets the optimizer's lr from the schedule at each update
