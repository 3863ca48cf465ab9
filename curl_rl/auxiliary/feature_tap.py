"""Capture the output of a features extractor during the RL forward pass.

The auxiliary loss reuses the RL loss's forward pass of the augmented observations as its
anchor, which saves one encoder forward and backward per update (the maths are the same: the
anchor is the online encoder applied to one augmented view).
"""

from __future__ import annotations

from types import TracebackType

import torch
from torch import nn


class FeatureTap:
    """Context manager recording the first output of ``module`` while active.

    :param module: the module to watch (an SB3 features extractor).
    :param enabled: when False the tap does nothing (no hook is installed).
    """

    def __init__(self, module: nn.Module, enabled: bool = True) -> None:
        self.module = module
        self.enabled = enabled
        self.features: torch.Tensor | None = None
        self._handle: torch.utils.hooks.RemovableHandle | None = None

    def _hook(self, _module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        if self.features is None:
            self.features = output

    def __enter__(self) -> FeatureTap:
        if self.enabled:
            self._handle = self.module.register_forward_hook(self._hook)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
