"""CurlEncoder's conv trunk: conv+ReLU in one oneDNN kernel on a CPU, bit-identical to nn.Sequential."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from curl_rl import CurlEncoder
from curl_rl.auxiliary import conv_trunk
from curl_rl.auxiliary.conv_trunk import ConvTrunk

pytestmark = pytest.mark.skipif(conv_trunk._CONV_RELU is None, reason="this PyTorch has no oneDNN")


def _encoder(channels_last: bool, batch: int = 5) -> tuple[CurlEncoder, torch.Tensor]:
    torch.manual_seed(0)
    encoder = CurlEncoder(gym.spaces.Box(0, 255, (6, 36, 36), np.uint8), features_dim=8)
    x = torch.rand(batch, 6, 36, 36)
    if channels_last:
        encoder = encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=torch.channels_last)
    return encoder, x


def _run(encoder: CurlEncoder, x: torch.Tensor, fuse: bool) -> list[torch.Tensor]:
    """No-grad output, output with grad, then the gradients of every parameter and of the input."""
    assert isinstance(encoder.convs, ConvTrunk)
    encoder.convs.fuse = fuse
    encoder.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    with torch.no_grad():
        quiet = encoder(x)
    out = encoder(x)
    out.square().sum().backward()
    assert x.grad is not None
    return [quiet, out.detach(), x.grad, *(p.grad for p in encoder.parameters() if p.grad is not None)]


@pytest.mark.parametrize("batch", [5, 1], ids=["batch", "one-frame"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_fused_trunk_computes_exactly_what_the_plain_sequential_does(channels_last: bool, batch: int) -> None:
    encoder, x = _encoder(channels_last, batch)
    if batch == 1:  # PyTorch runs a lone small frame through its own im2col kernel: the trunk must too
        assert not conv_trunk._runs_on_onednn(x, encoder.convs[0])
    plain, fused = _run(encoder, x, fuse=False), _run(encoder, x, fuse=True)
    assert len(plain) == len(fused) == 3 + 12  # outputs, input grad; 4 convs, the linear, the LayerNorm (w, b)
    for a, b in zip(plain, fused, strict=True):
        assert torch.equal(a, b)


def test_fused_trunk_runs_each_conv_relu_pair_as_one_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder, x = _encoder(channels_last=False)
    calls: list[str] = []
    real = conv_trunk._CONV_RELU

    def counting(*args: Any) -> torch.Tensor:
        calls.append(args[7])
        return real(*args)

    monkeypatch.setattr(conv_trunk, "_CONV_RELU", counting)
    with torch.no_grad():
        encoder(x)
    encoder(x).sum().backward()
    assert calls == ["relu"] * 8  # 4 layers, no-grad and with grad


def test_a_hook_on_a_layer_still_fires() -> None:
    encoder, x = _encoder(channels_last=False)
    seen: list[tuple[int, ...]] = []
    encoder.convs[1].register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    with torch.no_grad():
        encoder(x)
    assert seen == [(5, 32, 17, 17)]


def test_bf16_autocast_still_runs_in_bf16() -> None:
    encoder, x = _encoder(channels_last=False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        trunk_out = encoder.convs(x)
    assert trunk_out.dtype == torch.bfloat16  # the fused fp32 kernel would have bypassed autocast


def test_double_backward_matches_the_plain_sequential() -> None:
    """A gradient penalty differentiates the trunk's backward; the fused one gives the same numbers."""
    encoder, x = _encoder(channels_last=False)
    results = []
    for fuse in (False, True):
        assert isinstance(encoder.convs, ConvTrunk)
        encoder.convs.fuse = fuse
        encoder.zero_grad(set_to_none=True)
        inp = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(encoder(inp).square().sum(), inp, create_graph=True)
        grad.square().sum().backward()
        results.append([p.grad.clone() for p in encoder.parameters() if p.grad is not None])
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_state_dict_keys_are_those_of_the_sequential_trunk() -> None:
    encoder, _ = _encoder(channels_last=False)
    keys = [k for k in encoder.state_dict() if k.startswith("convs.")]
    assert keys == [f"convs.{i}.{name}" for i in (0, 2, 4, 6) for name in ("weight", "bias")]


def test_a_traced_trunk_holds_standard_ops_for_export() -> None:
    encoder, x = _encoder(channels_last=False)
    traced = torch.jit.trace(encoder, x)
    graph = str(traced.inlined_graph)
    assert "_convolution_pointwise" not in graph and "aten::_convolution" in graph
    with torch.no_grad():
        assert torch.equal(traced(x), encoder(x))


def test_the_trunk_still_scripts() -> None:
    encoder, x = _encoder(channels_last=False)
    scripted = torch.jit.script(encoder)
    with torch.no_grad():
        assert torch.equal(scripted(x), encoder(x))
