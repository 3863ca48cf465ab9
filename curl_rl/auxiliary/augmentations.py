"""Batched image augmentations on the batch's device.

All transforms take channel-first batches ``(B, C, H, W)`` in pixel units (0-255, uint8 or float)
and draw per-sample randomness from an explicit ``torch.Generator``, so a seed reproduces them.
Channel-stacked frames (``C = frames * frame_channels``) get the *same* transform in every frame:
crops and cutouts are shared by construction, colour transforms reshape to
``(B, frames, frame_channels, H, W)`` and broadcast their per-sample parameters over frames.
Geometric transforms keep the dtype; photometric ones return float32 clamped to [0, 255].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from curl_rl.auxiliary.config import AuxConfig

#: augmentations whose result depends on where one stacked frame ends and the next begins
FRAME_AWARE_AUGMENTATIONS = ("grayscale", "color_jitter", "noise")


def _uniform(n: int, low: float, high: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (high - low) + low


def crop_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """Crop a ``size`` x ``size`` window at a per-sample offset, gathering without a Python loop.

    Offsets may point outside the image: coordinates are clamped to the border, which is the
    same as cropping from a replicate-padded image without building the padded copy.

    :param images: ``(B, C, H, W)`` batch.
    :param top: ``(B,)`` integer row offsets (may be negative).
    :param left: ``(B,)`` integer column offsets (may be negative).
    :param size: side of the square window.
    :return: ``(B, C, size, size)`` with the input dtype.
    """
    b, c, h, w = images.shape
    ar = torch.arange(size, device=images.device)
    # two gathers with broadcast (stride-0) indices: no (B, C, H, W) int64 index tensor is built
    rows = (top.view(b, 1) + ar).clamp(0, h - 1).view(b, 1, size, 1).expand(b, c, size, w)
    picked = images.gather(2, rows)
    cols = (left.view(b, 1) + ar).clamp(0, w - 1).view(b, 1, 1, size).expand(b, c, size, size)
    return picked.gather(3, cols)


def window_crop(
    images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int, channels_last: bool = False
) -> torch.Tensor:
    """Crop at in-range per-sample offsets with one ``index_select`` of overlapping window views.

    Window ``k`` of the flat storage is the ``(C, size, size)`` crop whose first element sits at
    flat offset ``k`` (an ``as_strided`` view: nothing is copied to build it), so selecting the B
    start offsets copies whole rows. ``gather`` (:func:`crop_at`) reads an int64 index per byte
    moved, which made it 15x slower than this on a CPU (docs/perf_notes.md).

    :param images: ``(B, C, H, W)`` batch.
    :param top: ``(B,)`` row offsets in ``[0, H - size]`` (not checked: a check costs a host sync).
    :param left: ``(B,)`` column offsets in ``[0, W - size]``.
    :param size: side of the square window.
    :param channels_last: write the crops in channels_last layout (the same values): a
        channels_last encoder then needs no relayout copy of the batch.
    :return: ``(B, C, size, size)`` with the input dtype, contiguous in the asked layout.
    """
    b, c, h, w = images.shape
    flat = images.contiguous().view(-1)
    extent = (c - 1) * h * w + (size - 1) * w + size
    if channels_last:
        # the same windows with the channel axis innermost: the selection writes NHWC directly
        windows = flat.as_strided((flat.numel() - extent + 1, size, size, c), (1, w, 1, h * w))
    else:
        windows = flat.as_strided((flat.numel() - extent + 1, c, size, size), (1, h * w, w, 1))
    start = torch.arange(b, device=images.device) * (c * h * w) + top * w + left
    crops = windows.index_select(0, start)
    return crops.permute(0, 3, 1, 2) if channels_last else crops


def replicate_pad(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Replicate-pad the last two dims by ``pad`` (any dtype; integer support in ``F.pad`` is recent)."""
    try:
        return F.pad(images, (pad, pad, pad, pad), mode="replicate")
    except (RuntimeError, NotImplementedError):
        rows = torch.cat(
            [images[:, :, :1].expand(-1, -1, pad, -1), images, images[:, :, -1:].expand(-1, -1, pad, -1)], 2
        )
        return torch.cat([rows[..., :1].expand(-1, -1, -1, pad), rows, rows[..., -1:].expand(-1, -1, -1, pad)], 3)


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """Deterministic centre crop used when acting with a policy trained on random crops.

    :param images: ``(..., H, W)`` batch.
    :param size: output side.
    :return: the centre ``size`` x ``size`` window.
    """
    h, w = images.shape[-2:]
    if h == size and w == size:
        return images
    top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size]


class Augmentation:
    """Base class: a callable ``(images, generator) -> images`` on channel-first batches."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size produced from an input of ``height`` x ``width``."""
        return height, width

    def write_channels_last(self, on: bool) -> bool:
        """Ask for channels_last output where this transform can write it at no cost.

        :param on: the layout the consumer (a channels_last encoder) wants.
        :return: whether this transform honours it (only the window crops do).
        """
        return False


class _WindowCropping(Augmentation):
    """A transform that ends in :func:`window_crop`, so it can write channels_last at no cost."""

    channels_last = False

    def write_channels_last(self, on: bool) -> bool:
        self.channels_last = on
        return True


class RandomCrop(_WindowCropping):
    """Random ``size`` crop (CURL/RAD); evaluation uses :func:`center_crop` of the same size.

    :param size: output side.
    """

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        top = torch.randint(0, h - self.size + 1, (b,), generator=generator, device=images.device)
        left = torch.randint(0, w - self.size + 1, (b,), generator=generator, device=images.device)
        return window_crop(images, top, left, self.size, self.channels_last)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return self.size, self.size


class RandomShift(_WindowCropping):
    """DrQ's random shift: replicate-pad by ``pad`` then crop back to the input size.

    Integer shifts cropped from the replicate-padded batch, which equals DrQ-v2's bilinear
    ``grid_sample`` at integer offsets but keeps uint8 and costs one pad and one row copy.

    :param pad: padding on each side; shifts lie in ``[-pad, pad]``.
    """

    def __init__(self, pad: int) -> None:
        self.pad = pad

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.pad == 0:
            return images
        b, _, h, w = images.shape
        if h != w:
            raise ValueError(f"random shift needs square images, got {h}x{w}")
        # the same draws as before (offsets into the padded image), so seeded runs are unchanged
        top = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator, device=images.device)
        left = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator, device=images.device)
        return window_crop(replicate_pad(images, self.pad), top, left, h, self.channels_last)

    def write_channels_last(self, on: bool) -> bool:
        return super().write_channels_last(on) and self.pad != 0  # pad 0 hands the input back as it came


class _FrameWise(Augmentation):
    """Photometric transforms that must treat every stacked frame alike."""

    def __init__(self, frame_channels: int) -> None:
        self.frame_channels = frame_channels

    def _frames(self, images: torch.Tensor) -> torch.Tensor:
        """A float copy of ``images`` as ``(B, frames, frame_channels, H, W)``, safe to modify in place
        (in-place arithmetic gives the same bits with one allocation instead of one per step:
        2.7x faster for Intensity, 3.4x for ColorJitter at 256x9x84x84 on one CPU thread)."""
        b, c, h, w = images.shape
        return images.to(torch.float32, copy=True).reshape(b, c // self.frame_channels, self.frame_channels, h, w)


class Intensity(_FrameWise):
    """Per-sample multiplicative intensity (SPR): ``x * (1 + scale * clip(N(0,1), -2, 2))``.

    :param scale: std of the factor.
    """

    def __init__(self, scale: float) -> None:
        super().__init__(1)
        self.scale = scale

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b = images.shape[0]
        noise = torch.randn(b, generator=generator, device=images.device).clamp(-2.0, 2.0)
        factor = (1.0 + self.scale * noise).view(b, 1, 1, 1, 1)
        return self._frames(images).mul_(factor).clamp_(0.0, 255.0).reshape(images.shape)


class GaussianNoise(_FrameWise):
    """Additive pixel noise; one noise map per sample, shared by all frames of the stack.

    :param std: noise std in pixel units.
    :param frame_channels: channels per frame.
    """

    def __init__(self, std: float, frame_channels: int) -> None:
        super().__init__(frame_channels)
        self.std = std

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        frames = self._frames(images)
        b, _, fc, h, w = frames.shape
        noise = torch.randn((b, 1, fc, h, w), generator=generator, device=images.device) * self.std
        return frames.add_(noise).clamp_(0.0, 255.0).reshape(images.shape)


class ColorJitter(_FrameWise):
    """Random brightness, contrast and saturation, the same for every frame of a sample.

    :param strength: max relative change of each property.
    :param frame_channels: channels per frame (saturation applies to 3-channel frames only).
    """

    def __init__(self, strength: float, frame_channels: int) -> None:
        super().__init__(frame_channels)
        self.strength = strength

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        frames = self._frames(images)
        b, dev, s = frames.shape[0], images.device, self.strength
        shape = (b, 1, 1, 1, 1)
        brightness = _uniform(b, 1 - s, 1 + s, generator, dev).view(shape)
        contrast = _uniform(b, 1 - s, 1 + s, generator, dev).view(shape)
        saturation = _uniform(b, 1 - s, 1 + s, generator, dev).view(shape)
        frames.mul_(brightness)
        mean = frames.mean(dim=(2, 3, 4), keepdim=True)
        frames.sub_(mean).mul_(contrast).add_(mean)
        if self.frame_channels == 3:
            gray = _luma(frames)
            frames.sub_(gray).mul_(saturation).add_(gray)
        return frames.clamp_(0.0, 255.0).reshape(images.shape)


class Cutout(Augmentation):
    """Zero a random rectangle, the same for every channel of a sample.

    :param min_size: smallest side.
    :param max_size: largest side.
    """

    def __init__(self, min_size: int, max_size: int) -> None:
        self.min_size, self.max_size = min_size, max_size

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        dev = images.device
        hi = min(self.max_size, h, w)
        lo = min(self.min_size, hi)
        size = torch.randint(lo, hi + 1, (b,), generator=generator, device=dev)
        top = (torch.rand(b, generator=generator, device=dev) * (h - size + 1)).long()
        left = (torch.rand(b, generator=generator, device=dev) * (w - size + 1)).long()
        ys = torch.arange(h, device=dev).view(1, h, 1)
        xs = torch.arange(w, device=dev).view(1, 1, w)
        inside = (
            (ys >= top.view(b, 1, 1))
            & (ys < (top + size).view(b, 1, 1))
            & (xs >= left.view(b, 1, 1))
            & (xs < (left + size).view(b, 1, 1))
        )
        return images.masked_fill(inside.unsqueeze(1), 0)


class RandomGrayscale(_FrameWise):
    """Turn a sample's RGB frames to gray (kept as 3 equal channels) with probability ``p``.

    :param p: probability per sample.
    :param frame_channels: channels per frame; frames that are not RGB are left alone.
    """

    def __init__(self, p: float, frame_channels: int) -> None:
        super().__init__(frame_channels)
        self.p = p

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.frame_channels != 3:
            return images
        frames = self._frames(images)
        b = frames.shape[0]
        pick = (torch.rand(b, generator=generator, device=images.device) < self.p).view(b, 1, 1, 1, 1)
        gray = _luma(frames).expand_as(frames)
        return torch.where(pick, gray, frames).reshape(images.shape)


def _luma(frames: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114], device=frames.device).view(1, 1, 3, 1, 1)
    return (frames * weights).sum(dim=2, keepdim=True)


class Compose(Augmentation):
    """Apply augmentations in order.

    :param augmentations: the transforms.
    """

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        self.augmentations = list(augmentations)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for aug in self.augmentations:
            images = aug(images, generator)
        return images

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        for aug in self.augmentations:
            height, width = aug.output_size(height, width)
        return height, width

    def write_channels_last(self, on: bool) -> bool:
        """Only the last transform's layout reaches the encoder; the ones before it stay as they are."""
        return bool(self.augmentations) and self.augmentations[-1].write_channels_last(on)

    def __len__(self) -> int:
        return len(self.augmentations)


def infer_frame_channels(channels: int, frame_channels: int | None) -> int:
    """Channels per stacked frame: the configured value, else the whole image is one frame.

    Never guessed from the channel count (3 channels may be one RGB frame or three grayscale
    frames); the algorithms fill ``frame_channels`` in from the env's frame stacking.

    :param channels: total channels of the image.
    :param frame_channels: configured value or ``None``.
    :return: channels per frame.
    """
    if frame_channels is None:
        return channels
    if channels % frame_channels != 0:
        raise ValueError(
            f"the image has {channels} channels, which do not divide into frames of {frame_channels} "
            f"channels; set aux frame_channels to a divisor of {channels}"
        )
    return frame_channels


def build_augmentation(config: AuxConfig, channels: int) -> Compose:
    """Build the configured pipeline for images with ``channels`` channels.

    :param config: the auxiliary config (``augment`` and its parameters).
    :param channels: total channels of the (channel-first) image.
    :return: the composed augmentation (empty when ``config.augment`` is empty).
    """
    fc = infer_frame_channels(channels, config.frame_channels)
    table = {
        "crop": lambda: RandomCrop(int(config.crop_size or 0)),
        "shift": lambda: RandomShift(config.pad),
        "intensity": lambda: Intensity(config.intensity_scale),
        "noise": lambda: GaussianNoise(config.noise_std, fc),
        "color_jitter": lambda: ColorJitter(config.jitter_strength, fc),
        "cutout": lambda: Cutout(config.cutout_min, config.cutout_max),
        "grayscale": lambda: RandomGrayscale(config.grayscale_p, fc),
    }
    return Compose([table[name]() for name in config.augment])
