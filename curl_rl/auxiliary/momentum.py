"""The momentum (key) encoder: an explicit EMA copy of an online module.

Kept apart from every other soft update on purpose: in the CURL reference code the key encoder
was the critic target's encoder, updated inside the critic's soft update, and users could not
find it. Here it is its own module, with its own ``tau`` and period, and it never has gradients.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """``target <- (1 - tau) * target + tau * online`` for parameters; buffers are copied.

    :param online: the module being trained.
    :param target: its EMA copy (same architecture).
    :param tau: EMA coefficient in (0, 1]; 1 copies.
    """
    online_params = [p.detach() for p in online.parameters()]
    target_params: list[torch.Tensor] = list(target.parameters())
    if len(online_params) != len(target_params):
        raise ValueError("online and target modules differ in structure")
    torch._foreach_lerp_(target_params, online_params, tau)
    for t_buf, o_buf in zip(target.buffers(), online.buffers(), strict=True):
        t_buf.copy_(o_buf)


class MomentumEncoder(nn.Module):
    """EMA copy of ``online`` updated every ``update_period`` calls of :meth:`step`.

    :param online: module to copy (not registered here: the online module belongs to the policy,
        so its parameters are never stepped by the auxiliary optimizer).
    :param tau: EMA coefficient in (0, 1].
    :param update_period: update every this many :meth:`step` calls.
    """

    def __init__(self, online: nn.Module, tau: float, update_period: int = 1) -> None:
        super().__init__()
        if not 0.0 < tau <= 1.0:
            raise ValueError(f"tau={tau} must lie in (0, 1]")
        if update_period < 1:
            raise ValueError(f"update_period={update_period} must be >= 1")
        self.target = copy.deepcopy(online)
        self.target.requires_grad_(False)
        self.target.train(False)
        self.tau = tau
        self.update_period = update_period
        # a Python counter (saved as extra state): a tensor counter would need a host sync per step
        self.num_steps = 0
        self.follows_other = False

    def follow(self, module: nn.Module) -> None:
        """Use ``module`` itself as the key encoder; from now on :meth:`step` never moves it.

        For an algorithm whose own target network already is the EMA the keys need (CURL's SAC:
        the key encoder *is* the target critic's encoder, moved by the critic's soft update). An
        own copy on the same schedule would still differ: its period starts one step apart.

        :param module: a module with this copy's architecture, moved by its owner.
        """
        self.target = module
        self.follows_other = True

    def step(self, online: nn.Module) -> None:
        """Count one gradient step; every ``update_period`` steps move the copy towards ``online``.

        :param online: the online module (same architecture as the copy).
        """
        self.num_steps += 1
        if self.num_steps % self.update_period == 0 and not self.follows_other:
            ema_update(online, self.target, self.tau)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.target(*args)

    def train(self, mode: bool = True) -> MomentumEncoder:
        # the key encoder always runs in eval mode (like SB3's target networks)
        super().train(mode)
        self.target.train(False)
        return self

    @torch.no_grad()
    def distance(self, online: nn.Module) -> torch.Tensor:
        """Root-mean-square parameter difference to ``online`` (a drift diagnostic)."""
        diffs = [
            (o.detach() - t).pow(2).sum() for o, t in zip(online.parameters(), self.target.parameters(), strict=True)
        ]
        count = sum(p.numel() for p in self.target.parameters())
        return (torch.stack(diffs).sum() / max(count, 1)).sqrt()

    def get_extra_state(self) -> dict[str, int]:
        return {"num_steps": self.num_steps}

    def set_extra_state(self, state: dict[str, int]) -> None:
        self.num_steps = int(state["num_steps"])
