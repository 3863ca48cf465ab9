"""Augmentations, the momentum encoder, rollout future windows, config validation."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from curl_rl.auxiliary.augmentations import (
    ColorJitter,
    Compose,
    Cutout,
    GaussianNoise,
    Intensity,
    RandomCrop,
    RandomGrayscale,
    RandomShift,
    build_augmentation,
    center_crop,
    crop_at,
    window_crop,
)
from curl_rl.auxiliary.config import AUX_PRESETS, resolve_aux_config
from curl_rl.auxiliary.momentum import MomentumEncoder, ema_update
from curl_rl.buffers.rollout import IndexedRolloutBuffer

ALL_AUGS = ("shift", "intensity", "noise", "color_jitter", "cutout", "grayscale")


def _stack(b: int = 6, frames: int = 3, size: int = 20) -> torch.Tensor:
    one = torch.randint(0, 256, (b, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return one.repeat(1, frames, 1, 1)  # identical frames: any frame-wise difference is a bug


@pytest.mark.parametrize("name", ALL_AUGS)
def test_augmentation_shape_dtype_reproducible_and_frames_alike(name: str) -> None:
    x = _stack()
    aug = build_augmentation(resolve_aux_config({"preset": "none", "augment": [name], "frame_channels": 3}), x.shape[1])
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    if name in ("shift", "cutout"):
        assert a.dtype == torch.uint8
    assert float(a.float().min()) >= 0.0 and float(a.float().max()) <= 255.0
    frames = a.reshape(a.shape[0], 3, 3, *a.shape[2:])
    assert torch.equal(frames[:, 0], frames[:, 1]) and torch.equal(frames[:, 0], frames[:, 2])


def test_samples_get_different_transforms() -> None:
    x = _stack(b=1).repeat(16, 1, 1, 1)
    out = RandomShift(4)(x, torch.Generator().manual_seed(0))
    assert len({bytes(o.numpy()) for o in out}) > 4


def test_crop_and_center_crop() -> None:
    x = torch.arange(2 * 3 * 10 * 10).reshape(2, 3, 10, 10)
    out = RandomCrop(6)(x, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 6, 6)
    for i in range(2):  # each crop is a contiguous window of the input
        top = int((out[i, 0, 0, 0] % 100) // 10)
        left = int(out[i, 0, 0, 0] % 10)
        assert torch.equal(out[i], x[i, :, top : top + 6, left : left + 6])
    assert torch.equal(center_crop(x, 6), x[..., 2:8, 2:8])


def test_window_crop_equals_crop_at_for_in_range_offsets() -> None:
    # the strided fast path must give exactly the reference crop (it moved here from the benchmark)
    rng = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (16, 9, 100, 100), generator=rng, dtype=torch.uint8)
    top = torch.randint(0, 17, (16,), generator=rng)
    left = torch.randint(0, 17, (16,), generator=rng)
    assert torch.equal(window_crop(x, top, left, 84), crop_at(x, top, left, 84))


@pytest.mark.parametrize(
    "make, side", [(lambda: RandomCrop(84), 100), (lambda: RandomShift(4), 84)], ids=["crop", "shift"]
)
def test_crops_written_channels_last_hold_the_same_pixels_and_draws(make: Any, side: int) -> None:
    x = torch.randint(0, 256, (8, 9, side, side), dtype=torch.uint8)
    plain, fast = make(), make()
    assert not Compose([fast, Intensity(0.05)]).write_channels_last(True)  # only the last step's layout counts
    assert Compose([Intensity(0.05), fast]).write_channels_last(True)
    a = plain(x, torch.Generator().manual_seed(3))
    b = fast(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.is_contiguous() and b.is_contiguous(memory_format=torch.channels_last)
    assert not RandomShift(0).write_channels_last(True)  # pad 0 hands its input back untouched


def test_shift_is_pad_and_crop() -> None:
    x = torch.randint(0, 255, (4, 3, 8, 8), dtype=torch.uint8)
    out = RandomShift(2)(x, torch.Generator().manual_seed(0))
    padded = torch.nn.functional.pad(x.float(), (2, 2, 2, 2), mode="replicate").to(torch.uint8)
    for i in range(4):
        windows = [padded[i, :, t : t + 8, c : c + 8] for t in range(5) for c in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_photometric_keep_range() -> None:
    x = _stack()
    g = torch.Generator().manual_seed(0)
    for aug in (GaussianNoise(50.0, 3), ColorJitter(0.9, 3), RandomGrayscale(1.0, 3), Cutout(2, 5)):
        y = aug(x, g)
        assert y.shape == x.shape and float(y.float().min()) >= 0 and float(y.float().max()) <= 255


def test_ema_arithmetic() -> None:
    online, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        online.bias.fill_(2.0)
        target.weight.fill_(0.0)
        target.bias.fill_(0.0)
    ema_update(online, target, 0.25)
    assert torch.allclose(target.weight, torch.full((1, 2), 0.25))
    assert torch.allclose(target.bias, torch.tensor([0.5]))
    ema_update(online, target, 0.25)
    assert torch.allclose(target.weight, torch.full((1, 2), 0.25 + 0.75 * 0.25))


def test_momentum_encoder_period_and_no_grad() -> None:
    online = nn.Linear(3, 2)
    key = MomentumEncoder(online, tau=0.5, update_period=2)
    with torch.no_grad():
        online.weight.add_(1.0)
    start = key.target.weight.clone()
    key.step(online)  # step 1: no update (period 2)
    assert torch.equal(key.target.weight, start)
    key.step(online)
    assert torch.allclose(key.target.weight, 0.5 * start + 0.5 * online.weight)
    out = key(torch.randn(4, 3))
    assert not out.requires_grad
    assert all(not p.requires_grad for p in key.parameters())
    state = key.state_dict()
    fresh = MomentumEncoder(online, tau=0.5, update_period=2)
    fresh.load_state_dict(state)
    assert fresh.num_steps == 2


def test_rollout_future_windows_never_cross_episode_ends() -> None:
    n_steps, n_envs = 6, 2
    buf = IndexedRolloutBuffer(n_steps, spaces.Box(0, 255, (3, 4, 4), np.uint8), spaces.Discrete(2), n_envs=n_envs)
    starts = np.zeros((n_steps, n_envs), dtype=np.float32)
    starts[3, 0] = 1.0  # env 0: a new episode begins at t=3
    starts[1, 1] = 1.0  # env 1: at t=1 and t=5
    starts[5, 1] = 1.0
    for t in range(n_steps):
        obs = np.stack([np.full((3, 4, 4), 10 * t + e, np.uint8) for e in range(n_envs)])
        buf.add(obs, np.zeros((n_envs, 1)), np.zeros(n_envs), starts[t], torch.zeros(n_envs), torch.zeros(n_envs))
    buf.compute_returns_and_advantage(torch.zeros(n_envs), np.zeros(n_envs))
    list(buf.get(batch_size=None))
    rows = np.arange(n_steps * n_envs)
    future, action_rows, valid = buf.future_windows(rows, horizon=3)
    obs = buf.observations[:, 0, 0, 0]
    for r in rows:
        env, t = divmod(r, n_steps)
        for j in range(1, 4):
            expect = t + j < n_steps and not starts[t + 1 : t + j + 1, env].any()
            assert valid[r, j - 1] == expect, (env, t, j)
            if expect:
                assert obs[future[r, j - 1]] == 10 * (t + j) + env
                assert action_rows[r, j - 1] == r + j - 1


def test_presets_resolve_and_bad_values_fail_with_fix() -> None:
    for name in AUX_PRESETS:
        assert resolve_aux_config(name).name == name
    assert resolve_aux_config({"preset": "curl", "tau": 0.01}).tau == 0.01
    assert resolve_aux_config({"preset": "aug", "augment": "shift,cutout"}).augment == ("shift", "cutout")
    bad = [
        ({"preset": "curl", "tau": 0.0}, "tau"),
        ({"preset": "curl", "tau": 1.5}, "tau"),
        ({"preset": "atc", "future_k": 0}, "future_k"),
        ({"preset": "curl", "batch_size": 1}, "batch_size"),
        ({"preset": "curl", "augment": ["crop"]}, "crop_size"),
        ({"preset": "curl", "similarity": "dot"}, "similarity"),
        ({"preset": "curl", "augment": []}, "augmentation"),
        ({"preset": "curl", "bogus": 1}, "unknown aux config field"),
        ("curly", "unknown aux preset"),
    ]
    for value, needle in bad:
        with pytest.raises(ValueError, match=needle):
            resolve_aux_config(value)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_in_place_photometric_augmentations_equal_the_formulas_and_leave_the_input(dtype: torch.dtype) -> None:
    from curl_rl.auxiliary.augmentations import ColorJitter, GaussianNoise, Intensity, _luma, _uniform

    images = torch.randint(0, 256, (8, 6, 12, 12), dtype=torch.uint8).to(dtype)
    before = images.clone()
    frames = images.float().reshape(8, 2, 3, 12, 12)

    gen = torch.Generator().manual_seed(3)
    factor = (1.0 + 0.05 * torch.randn(8, generator=gen).clamp(-2.0, 2.0)).view(8, 1, 1, 1)
    expected = (images.float() * factor).clamp(0.0, 255.0)
    assert torch.equal(Intensity(0.05)(images, torch.Generator().manual_seed(3)), expected)

    gen = torch.Generator().manual_seed(4)
    noise = torch.randn((8, 1, 3, 12, 12), generator=gen) * 8.0
    expected = (frames + noise).clamp(0.0, 255.0).reshape(images.shape)
    assert torch.equal(GaussianNoise(8.0, 3)(images, torch.Generator().manual_seed(4)), expected)

    gen = torch.Generator().manual_seed(5)
    b, c, s = [_uniform(8, 0.8, 1.2, gen, images.device).view(8, 1, 1, 1, 1) for _ in range(3)]
    jittered = frames * b
    mean = jittered.mean(dim=(2, 3, 4), keepdim=True)
    jittered = (jittered - mean) * c + mean
    gray = _luma(jittered)
    expected = ((jittered - gray) * s + gray).clamp(0.0, 255.0).reshape(images.shape)
    assert torch.equal(ColorJitter(0.2, 3)(images, torch.Generator().manual_seed(5)), expected)
    assert torch.equal(images, before)  # in-place arithmetic works on a copy, never on the caller's batch
