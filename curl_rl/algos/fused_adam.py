"""The ``fused_adam`` speed switch: a model's Adam/AdamW optimizers step with PyTorch's fused kernel.

PyTorch's default Adam on a CPU walks each parameter tensor once per operation of the update
(moments, square root, division, step); the fused kernel does all of them in one pass. On a
CurlSAC update that is 4.3M critic parameters every step, cold in cache by then: 1.04x per update
with one thread, 1.01x with two, on a 2-core Xeon (BENCHMARKS.md, 2026-12-01 17:46 UTC). Same
formula in float32; it rounds differently in the last bit, so it is a switch, off wherever
``performance`` promises SB3's exact arithmetic.

Torch reads the flag from each parameter group at every ``step()``, so switching flips the
groups' ``fused``/``foreach`` entries of an optimizer that exists. ``load_state_dict`` restores
the saved groups' flags, so the switch is applied again after every load.
"""

from __future__ import annotations

from typing import Any

import torch

#: device types PyTorch's fused Adam runs on that curl_rl can run on
_FUSED_DEVICES = ("cpu", "cuda")


def model_optimizers(model: Any) -> list[torch.optim.Optimizer]:
    """Every optimizer of a built SB3/Curl model, each once.

    Covers the policy's (``policy.optimizer``; the actor's and critic's for SAC/TD3), SAC's
    entropy coefficient's and the auxiliary head's.

    :param model: a built algorithm (``model.policy`` exists).
    """
    candidates: list[Any] = [getattr(m, "optimizer", None) for m in model.policy.modules()]
    candidates += [getattr(model, "ent_coef_optimizer", None), getattr(model, "aux_optimizer", None)]
    found: dict[int, torch.optim.Optimizer] = {}
    for opt in candidates:
        if isinstance(opt, torch.optim.Optimizer):
            found.setdefault(id(opt), opt)
    return list(found.values())


def _fusable(group: dict[str, Any]) -> bool:
    if group.get("differentiable") or group.get("capturable"):
        return False
    return all(p.is_floating_point() and p.device.type in _FUSED_DEVICES for p in group["params"])


def set_fused_adam(model: Any, on: bool) -> None:
    """Make every Adam/AdamW optimizer of ``model`` step fused (``on``) or as it was built (off).

    Off restores each optimizer's constructor choice (``optimizer_kwargs``), so a user's own
    ``fused=True`` stays. Groups the fused kernel cannot run (differentiable, capturable, other
    devices) are left as built.

    :param model: a built algorithm.
    :param on: the resolved ``fused_adam`` switch.
    """
    for opt in model_optimizers(model):
        if not isinstance(opt, (torch.optim.Adam, torch.optim.AdamW)):
            continue  # A2C's RMSprop and the like: no fused CPU kernel
        for group in opt.param_groups:
            if on and _fusable(group):
                group["fused"], group["foreach"] = True, False
                for p in group["params"]:
                    step = opt.state.get(p, {}).get("step")
                    if isinstance(step, torch.Tensor) and step.device != p.device:
                        # unfused CUDA Adam keeps its step count on the host; fused wants it beside p
                        opt.state[p]["step"] = step.to(p.device, torch.float32)
            else:
                group["fused"], group["foreach"] = opt.defaults.get("fused"), opt.defaults.get("foreach")
