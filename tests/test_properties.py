"""Property tests (hypothesis) of the augmentations and the losses."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from curl_rl.auxiliary.augmentations import build_augmentation
from curl_rl.auxiliary.config import AUGMENTATION_NAMES, resolve_aux_config
from curl_rl.auxiliary.losses import cosine_prediction_loss, info_nce, triplet_loss

FAST = settings(max_examples=15, deadline=None)
GEOMETRIC = {"crop", "shift", "cutout"}  # keep the input dtype; the others return float32


@st.composite
def image_batches(draw: st.DrawFn) -> tuple[torch.Tensor, int, int]:
    """A uint8 batch of ``frames`` identical frames of ``fc`` channels, and (frames, fc)."""
    b = draw(st.integers(1, 4))
    frames = draw(st.integers(1, 3))
    fc = draw(st.sampled_from([1, 3]))
    size = draw(st.integers(10, 20))
    seed = draw(st.integers(0, 2**16))
    one = torch.randint(0, 256, (b, fc, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return one.repeat(1, frames, 1, 1), frames, fc


@FAST
@given(
    batch=image_batches(),
    names=st.lists(st.sampled_from(AUGMENTATION_NAMES), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 2**31 - 1),
)
def test_augmentations_keep_shape_dtype_range_and_treat_frames_alike(
    batch: tuple[torch.Tensor, int, int], names: list[str], seed: int
) -> None:
    images, frames, fc = batch
    if "crop" in names and "shift" in names:
        names.remove("shift")
    size = images.shape[-1]
    crop = size - 2
    cfg = resolve_aux_config(
        {
            "preset": "none",
            "augment": names,
            "crop_size": crop if "crop" in names else None,
            "frame_channels": fc,
            "cutout_max": 6,
        }
    )
    aug = build_augmentation(cfg, images.shape[1])
    out = aug(images, torch.Generator().manual_seed(seed))

    side = crop if "crop" in names else size
    assert out.shape == (images.shape[0], images.shape[1], side, side)
    photometric = set(names) - GEOMETRIC - ({"grayscale"} if fc != 3 else set())  # gray leaves 1-channel frames
    assert out.dtype == (torch.float32 if photometric else torch.uint8)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 255.0
    # identical frames in, identical frames out: every frame of a stack got the same transform
    split = out.reshape(out.shape[0], frames, fc, side, side)
    for j in range(1, frames):
        assert torch.equal(split[:, 0], split[:, j])
    # the seed reproduces it
    assert torch.equal(out, aug(images, torch.Generator().manual_seed(seed)))


@st.composite
def embeddings(draw: st.DrawFn, min_b: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    b = draw(st.integers(min_b, 8))
    d = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.floats(0.01, 10.0))
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=gen) * scale, torch.randn(b, d, generator=gen) * scale


@FAST
@given(qk=embeddings(), bilinear=st.booleans(), symmetric=st.booleans(), temperature=st.floats(0.05, 2.0))
def test_info_nce_is_non_negative_and_permutation_invariant(
    qk: tuple[torch.Tensor, torch.Tensor], bilinear: bool, symmetric: bool, temperature: float
) -> None:
    query, key = qk
    d = query.shape[1]
    weight = torch.randn(d, d, generator=torch.Generator().manual_seed(d)) if bilinear else None
    out = info_nce(query, key, weight=weight, temperature=temperature, symmetric=symmetric)
    assert torch.isfinite(out.loss) and float(out.loss) >= -1e-6
    assert 0.0 <= float(out.metrics["accuracy"]) <= 1.0
    # permuting the pairs jointly permutes the rows and columns of the logits alike
    perm = torch.randperm(query.shape[0], generator=torch.Generator().manual_seed(1))
    permuted = info_nce(query[perm], key[perm], weight=weight, temperature=temperature, symmetric=symmetric)
    assert torch.allclose(out.loss, permuted.loss, rtol=1e-5, atol=1e-5)


@FAST
@given(qk=embeddings(), queue_size=st.integers(0, 5))
def test_info_nce_with_zero_logits_is_log_of_the_candidates(
    qk: tuple[torch.Tensor, torch.Tensor], queue_size: int
) -> None:
    query, key = qk
    d = query.shape[1]
    queue = torch.randn(queue_size, d)
    out = info_nce(query, key, weight=torch.zeros(d, d), queue=queue)
    assert math.isclose(float(out.loss), math.log(query.shape[0] + queue_size), rel_tol=1e-5, abs_tol=1e-6)


@FAST
@given(b=st.integers(2, 8), extra_dims=st.integers(0, 4), scale=st.floats(2.0, 20.0), bilinear=st.booleans())
def test_info_nce_recognises_orthogonal_pairs(b: int, extra_dims: int, scale: float, bilinear: bool) -> None:
    query = torch.eye(b, b + extra_dims) * scale
    key = query.clone()
    weight = torch.eye(b + extra_dims) if bilinear else None
    out = info_nce(query, key, weight=weight, temperature=0.1)
    assert float(out.metrics["accuracy"]) == 1.0
    # well separated: the loss approaches its lower bound 0 as the margin grows
    bound = math.log1p((b - 1) * math.exp(-(scale**2 if bilinear else 10.0)))
    assert float(out.loss) <= bound + 1e-5


@FAST
@given(qk=embeddings(min_b=2), margin=st.floats(0.0, 2.0), mining=st.sampled_from(["random", "hard", "semi-hard"]))
def test_triplet_loss_is_non_negative(qk: tuple[torch.Tensor, torch.Tensor], margin: float, mining: str) -> None:
    query, key = qk
    out = triplet_loss(query, key, margin=margin, mining=mining, generator=torch.Generator().manual_seed(0))
    assert float(out.loss) >= 0.0
    # positives on top of the anchors, all other keys orthogonal: distance 0 vs 2, so any margin < 2 is met
    b = query.shape[0]
    eye = torch.eye(b)
    met = triplet_loss(
        eye, eye * 3.0, margin=min(margin, 1.99), mining=mining, generator=torch.Generator().manual_seed(0)
    )
    assert float(met.loss) == 0.0


@FAST
@given(qk=embeddings(), masked=st.booleans())
def test_cosine_prediction_loss_lies_in_zero_four(qk: tuple[torch.Tensor, torch.Tensor], masked: bool) -> None:
    prediction, target = qk
    mask = torch.arange(prediction.shape[0]) % 2 == 0 if masked else None
    out = cosine_prediction_loss(prediction, target, mask)
    assert -1e-6 <= float(out.loss) <= 4.0 + 1e-6
    assert math.isclose(float(cosine_prediction_loss(prediction, prediction).loss), 0.0, abs_tol=1e-5)
    assert math.isclose(float(cosine_prediction_loss(prediction, -prediction).loss), 4.0, rel_tol=1e-5)
