"""DrAC's regularisers (Raileanu et al. 2021): augmentation in on-policy RL without a biased ratio.

The PPO/A2C loss runs on un-augmented observations ``s``; two terms make the policy and the value
invariant to the augmentation:

- ``G_pi = KL(pi(.|s) || pi(.|aug s))``, the policy on ``s`` held fixed (detached);
- ``G_V = (V(s) - V(aug s))^2``, ``V(s)`` held fixed;

added to the RL loss with one weight ``alpha_r`` (0.1 in the paper).

Where this differs from DrAC's reference code, and why: the code estimates ``G_pi`` by
``-log pi(a'|aug s)`` with ``a'`` sampled from ``pi(.|s)`` and scales ``G_V`` by 0.5. We compute
the paper's formula: the exact KL (its gradient is that estimator's expectation, without the
sampling noise) and ``G_V`` without the 0.5.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.distributions import Bernoulli, Categorical, Distribution, Normal, kl_divergence

from curl_rl.auxiliary.losses import LossOutput


def _detached(dist: Distribution) -> Distribution:
    if isinstance(dist, Categorical):
        return Categorical(logits=dist.logits.detach())
    if isinstance(dist, Normal):
        return Normal(dist.loc.detach(), dist.scale.detach())
    if isinstance(dist, Bernoulli):
        return Bernoulli(logits=dist.logits.detach())
    raise TypeError(f"DrAC's policy KL does not support {type(dist).__name__} policies")


def policy_kl(dist_s: Any, dist_aug: Any) -> torch.Tensor:
    """Per-sample ``KL(pi(.|s) || pi(.|aug s))`` with ``pi(.|s)`` detached.

    :param dist_s: the policy's torch distribution on ``s`` (SB3's ``action_dist.distribution``:
        a ``Categorical``, a ``Normal`` over independent dimensions, a ``Bernoulli``, or a list of
        ``Categorical`` for MultiDiscrete).
    :param dist_aug: the same on ``aug(s)``.
    :return: ``(B,)``, summed over independent action dimensions.
    """
    if isinstance(dist_s, list):
        return torch.stack([policy_kl(p, q) for p, q in zip(dist_s, dist_aug, strict=True)], dim=1).sum(dim=1)
    kl = kl_divergence(_detached(dist_s), dist_aug)
    return kl.sum(dim=-1) if kl.dim() > 1 else kl


def drac_regularisers(
    dist_s: Any, values_s: torch.Tensor, dist_aug: Any, values_aug: torch.Tensor, weight: float
) -> LossOutput:
    """``weight * (G_pi + G_V)``, batch-averaged, with diagnostics ``policy_kl`` and ``value_gap``.

    :param dist_s: policy distribution on ``s`` (its gradient is not used).
    :param values_s: ``V(s)``, ``(B,)`` (its gradient is not used).
    :param dist_aug: policy distribution on ``aug(s)`` (trained).
    :param values_aug: ``V(aug s)``, ``(B,)`` (trained).
    :param weight: DrAC's ``alpha_r``.
    :return: the weighted loss and detached diagnostics.
    """
    g_pi = policy_kl(dist_s, dist_aug).mean()
    g_v = (values_s.detach().flatten() - values_aug.flatten()).pow(2).mean()
    return LossOutput(weight * (g_pi + g_v), {"policy_kl": g_pi.detach(), "value_gap": g_v.detach()})
