"""The conv trunk of :class:`~curl_rl.CurlEncoder`: conv/ReLU pairs that run as one oneDNN kernel on a CPU.

An ``nn.Sequential`` of ``Conv2d, ReLU(inplace), ..., Flatten``, with the same children, state-dict
keys and values as before. On a CPU, in fp32, each conv/ReLU pair that PyTorch would run with
oneDNN anyway runs as oneDNN's convolution with a ReLU post-op (``mkldnn._convolution_pointwise``,
the kernel ``torch.compile`` uses): the ReLU is applied to each output tile while it is still in
cache, instead of as a second pass over the whole activation map. The numbers are bit-identical
(ReLU is exact and the convolution is the same oneDNN kernel: tested in the suite on whatever CPU
runs it; a layer PyTorch gives its own im2col kernel, as it does a lone small frame, is left
unfused), and the backward is autograd's own two steps (``threshold_backward``,
``convolution_backward``) on the same saved tensors.

Anywhere else (GPU, bf16 autocast, ``torch.compile`` or ``torch.jit.trace`` tracing, TorchScript,
a hook on a child module, a PyTorch without oneDNN) the trunk is the plain ``nn.Sequential``. A
double backward (a gradient penalty) differentiates the backward's two ops, as it does autograd's.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def _fused_op() -> Any:
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.ops.mkldnn, "_convolution_pointwise", None)


_CONV_RELU = _fused_op()
_MKLDNN = getattr(getattr(torch._C, "_ConvBackend", None), "Mkldnn", None)


def _runs_on_onednn(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether PyTorch itself would run this convolution with oneDNN.

    For small inputs (one frame of a small image, say) it picks its own im2col kernel, which
    rounds differently; fusing there would change the numbers, so such layers run unfused.
    """
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str):
        return False
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None or _MKLDNN is None:
        return False
    args = (conv.stride, conv.padding, conv.dilation, False, (0, 0), conv.groups, None)
    return bool(select(x, conv.weight, conv.bias, *args) == _MKLDNN)


def _conv_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> torch.Tensor:
    assert _CONV_RELU is not None
    return _CONV_RELU(x, weight, bias, conv.padding, conv.stride, conv.dilation, conv.groups, "relu", [], "")


class _ConvReLU(torch.autograd.Function):
    """``relu(conv(x))`` in one kernel; the backward is what autograd runs for ``Conv2d`` then ``ReLU``."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, conv: nn.Conv2d) -> Any:
        out = _conv_relu(x, weight, bias, conv)
        ctx.save_for_backward(x, weight, out)
        ctx.conv = conv
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        x, weight, out = ctx.saved_tensors
        conv: nn.Conv2d = ctx.conv
        grad = torch.ops.aten.threshold_backward(grad, out, 0)
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            grad,
            x,
            weight,
            [weight.shape[0]] if ctx.has_bias else None,
            conv.stride,
            conv.padding,
            conv.dilation,
            False,
            [0, 0],
            conv.groups,
            mask,
        )
        return grad_x, grad_w, grad_b, None


class ConvTrunk(nn.Sequential):
    """``nn.Sequential`` of conv layers, each followed by an in-place ReLU, then ``nn.Flatten``.

    :param layers: ``Conv2d, ReLU, Conv2d, ReLU, ..., Flatten``.
    :param fuse: run each conv/ReLU pair as one oneDNN kernel where it can (see the module notes);
        ``False`` is the plain ``nn.Sequential`` (for comparisons).
    """

    def __init__(self, *layers: nn.Module, fuse: bool = True) -> None:
        super().__init__(*layers)
        self.fuse = fuse

    def _can_fuse(self, x: torch.Tensor) -> bool:
        if not self.fuse or _CONV_RELU is None or x.device.type != "cpu" or x.dtype != torch.float32:
            return False
        if torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return False  # autocast must see the conv; traced graphs (ONNX export) want standard ops
        # a hook on a child would be skipped by the fused path (torch's global hooks too)
        hooked = any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks for m in self.children())
        registry = nn.modules.module
        global_hooks = (
            registry._global_forward_hooks or registry._global_forward_pre_hooks or registry._global_backward_hooks
        )
        return not hooked and not global_hooks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TorchScript compiles only the plain loop (it skips a branch guarded by is_scripting)
        if not torch.jit.is_scripting():
            if self._can_fuse(x):
                return self._fused_forward(x)
        for layer in self:
            x = layer(x)
        return x

    def _fused_forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = list(self)
        i = 0
        while i < len(layers):
            layer = layers[i]
            pair = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            if pair and isinstance(layer, nn.Conv2d) and _runs_on_onednn(x, layer):
                weight, bias = layer.weight, layer.bias
                if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
                    x = _ConvReLU.apply(x, weight, bias, layer)
                else:
                    x = _conv_relu(x, weight, bias, layer)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x
