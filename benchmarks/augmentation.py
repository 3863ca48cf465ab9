"""Random crop and random shift throughput: ours (batched torch) against plain numpy, one run.

Batch of 512 uint8 images, 9 channels (3 stacked RGB frames), channel-first as the replay buffer
hands them over: crop 100x100 -> 84x84 (CURL/RAD), shift 84x84 with replicate padding 4 (DrQ).

Arms, timed in alternating rounds (order reversed every other round):

- ``numpy``: the per-sample loops of the reference code (CURL's ``random_crop`` slicing one
  sample at a time; DrQ's ``np.pad(mode="edge")`` then one slice per sample);
- ``ours``: :class:`curl_rl.common.augmentations.RandomCrop` / ``RandomShift`` (two ``gather``
  calls with clamped indices);
- ``strided`` (a proposal, prototyped here): every crop window is a view of the flat storage
  (``as_strided`` with a window per start offset), so one ``index_select`` of the B per-sample
  start offsets copies contiguous 84-byte rows instead of indexing byte by byte; the shift first
  builds the replicate-padded batch with ``F.pad`` and then crops it the same way.

On CUDA the torch arms are also timed on the device (input already there, synchronised).
The strided arms are checked to give exactly ``crop_at``'s output for the same offsets.

    python -m benchmarks.augmentation
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import machine_description, stamp
from curl_rl.common.augmentations import RandomCrop, RandomShift, crop_at


# -- plain numpy, as the reference implementations do it ------------------------------------------
def numpy_random_crop(images: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """CURL's random crop: one random window per sample, sliced in a Python loop.

    :param images: ``(B, C, H, W)`` uint8.
    :param size: output side.
    :param rng: numpy generator.
    :return: ``(B, C, size, size)``.
    """
    n, c, h, w = images.shape
    top = rng.integers(0, h - size + 1, size=(n,)).tolist()
    left = rng.integers(0, w - size + 1, size=(n,)).tolist()
    out = np.empty((n, c, size, size), dtype=images.dtype)
    for i in range(n):
        out[i] = images[i, :, top[i] : top[i] + size, left[i] : left[i] + size]
    return out


def numpy_random_shift(images: np.ndarray, pad: int, rng: np.random.Generator) -> np.ndarray:
    """DrQ's random shift in numpy: edge-pad, then crop back to the input size per sample.

    :param images: ``(B, C, H, W)`` uint8.
    :param pad: padding per side.
    :param rng: numpy generator.
    :return: same shape as ``images``.
    """
    n, _, h, w = images.shape
    padded: np.ndarray = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="edge")
    top = rng.integers(0, 2 * pad + 1, size=(n,)).tolist()
    left = rng.integers(0, 2 * pad + 1, size=(n,)).tolist()
    out = np.empty_like(images)
    for i in range(n):
        out[i] = padded[i, :, top[i] : top[i] + h, left[i] : left[i] + w]
    return out


# -- the proposal ---------------------------------------------------------------------------------
def strided_crop_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """``crop_at`` for in-range offsets by one ``index_select`` over overlapping window views.

    Window ``k`` of the flat storage is the ``(C, size, size)`` crop whose first element sits at
    flat offset ``k``; selecting the B offsets ``b*C*H*W + top*W + left`` copies whole rows.

    :param images: ``(B, C, H, W)``, any dtype, any device.
    :param top: ``(B,)`` row offsets in ``[0, H - size]``.
    :param left: ``(B,)`` column offsets in ``[0, W - size]``.
    :param size: output side.
    :return: ``(B, C, size, size)``, contiguous.
    """
    b, c, h, w = images.shape
    flat = images.contiguous().view(-1)
    extent = (c - 1) * h * w + (size - 1) * w + size
    windows = flat.as_strided((flat.numel() - extent + 1, c, size, size), (1, h * w, w, 1))
    start = torch.arange(b, device=images.device) * (c * h * w) + top * w + left
    return windows.index_select(0, start)


def strided_shift_at(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, pad: int) -> torch.Tensor:
    """``crop_at(images, top, left, H)`` for offsets in ``[-pad, pad]``: replicate-pad, then crop.

    :param images: ``(B, C, H, W)`` square batch.
    :param top: ``(B,)`` row shifts in ``[-pad, pad]``.
    :param left: ``(B,)`` column shifts in ``[-pad, pad]``.
    :param pad: padding per side.
    :return: same shape as ``images``.
    """
    padded = F.pad(images, (pad, pad, pad, pad), mode="replicate")
    return strided_crop_at(padded, top + pad, left + pad, images.shape[-1])


class StridedRandomCrop(RandomCrop):
    """:class:`RandomCrop` drawing the same offsets from the generator, cropping by windows."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        b, _, h, w = images.shape
        top = torch.randint(0, h - self.size + 1, (b,), generator=generator, device=images.device)
        left = torch.randint(0, w - self.size + 1, (b,), generator=generator, device=images.device)
        return strided_crop_at(images, top, left, self.size)


class StridedRandomShift(RandomShift):
    """:class:`RandomShift` drawing the same offsets from the generator, padding then windowing."""

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.pad == 0:
            return images
        b = images.shape[0]
        top = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator, device=images.device) - self.pad
        left = torch.randint(0, 2 * self.pad + 1, (b,), generator=generator, device=images.device) - self.pad
        return strided_shift_at(images, top, left, self.pad)


def check_equal(device: torch.device) -> None:
    """The proposal gives bit-identical output to ``crop_at`` and to the library classes."""
    rng = torch.Generator(device="cpu").manual_seed(1)
    big = torch.randint(0, 256, (16, 9, 100, 100), generator=rng, dtype=torch.uint8).to(device)
    small = torch.randint(0, 256, (16, 9, 84, 84), generator=rng, dtype=torch.uint8).to(device)
    top = torch.randint(0, 17, (16,), generator=rng).to(device)
    left = torch.randint(0, 17, (16,), generator=rng).to(device)
    assert torch.equal(strided_crop_at(big, top, left, 84), crop_at(big, top, left, 84))
    assert torch.equal(strided_shift_at(small, top - 8, left - 8, 8), crop_at(small, top - 8, left - 8, 84))
    for ours, proposal, x in (
        (RandomCrop(84), StridedRandomCrop(84), big),
        (RandomShift(4), StridedRandomShift(4), small),
    ):
        g1 = torch.Generator(device=device).manual_seed(3)
        g2 = torch.Generator(device=device).manual_seed(3)
        assert torch.equal(ours(x, g1), proposal(x, g2))


def _time(fn: Callable[[], object], reps: int, device: torch.device | None) -> float:
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / reps


Arms = dict[str, tuple[Callable[[], object], torch.device | None]]


def measure(arms: Arms, rounds: int, reps: int) -> dict[str, list[float]]:
    """Seconds per call of each arm in each of ``rounds`` alternating rounds.

    :param arms: name -> (zero-argument callable, device to synchronise or ``None``).
    :param rounds: rounds; the order reverses every other round.
    :param reps: calls per arm per round.
    :return: name -> seconds per call, one value per round.
    """
    for fn, dev in arms.values():
        _time(fn, 1, dev)  # warm-up: first-touch page faults, CUDA kernels, oneDNN caches
    times: dict[str, list[float]] = {name: [] for name in arms}
    order = list(arms)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            fn, dev = arms[name]
            times[name].append(_time(fn, reps, dev))
    return times


def speedup(times: dict[str, list[float]], fast: str, slow: str) -> float:
    """Median over rounds of ``slow / fast`` in the same round (pairs cancel most load drift)."""
    return statistics.median(s / f for s, f in zip(times[slow], times[fast]))


def _ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.3g} ({1000 * min(values):.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--channels", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=5, help="calls per arm per round")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    cuda = torch.device("cuda") if torch.cuda.is_available() else None
    check_equal(cpu)
    if cuda is not None:
        check_equal(cuda)

    print(f"# augmentation throughput — {stamp()}")
    print(f"# machine: {machine_description()}")
    print(f"# command: python -m benchmarks.augmentation {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"# batch {args.batch} x {args.channels} channels uint8, {args.rounds} alternating rounds of {args.reps} calls"
    )
    print("# strided = proposed implementation, checked bit-identical to crop_at")
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (args.batch, args.channels, 100, 100), dtype=np.uint8)
    small = rng.integers(0, 256, (args.batch, args.channels, 84, 84), dtype=np.uint8)
    gen = torch.Generator().manual_seed(0)
    tasks = {
        "crop 100->84": (big, lambda x: numpy_random_crop(x, 84, rng), RandomCrop(84), StridedRandomCrop(84)),
        "shift pad 4 @84": (small, lambda x: numpy_random_shift(x, 4, rng), RandomShift(4), StridedRandomShift(4)),
    }
    print("\n| op | device | numpy ms | ours ms | strided ms | ours vs numpy | strided vs numpy | strided vs ours |")
    print("|---|---|---|---|---|---|---|---|")
    for op, (array, np_fn, ours, strided) in tasks.items():
        tensor = torch.from_numpy(array)
        res = measure(
            {
                "numpy": (partial(np_fn, array), None),
                "ours": (partial(ours, tensor, gen), cpu),
                "strided": (partial(strided, tensor, gen), cpu),
            },
            args.rounds,
            args.reps,
        )
        print(
            f"| {op} | cpu | {_ms(res['numpy'])} | {_ms(res['ours'])} | {_ms(res['strided'])} | "
            f"{speedup(res, 'ours', 'numpy'):.2f}x | {speedup(res, 'strided', 'numpy'):.2f}x | "
            f"{speedup(res, 'strided', 'ours'):.2f}x |"
        )
        if cuda is not None:
            on_dev = tensor.to(cuda)
            gcuda = torch.Generator(device=cuda).manual_seed(0)
            np_times = res["numpy"]
            dev_res = measure(
                {
                    "ours": (partial(ours, on_dev, gcuda), cuda),
                    "strided": (partial(strided, on_dev, gcuda), cuda),
                },
                args.rounds,
                args.reps * 10,
            )
            numpy_ms = statistics.median(np_times)
            o, st = statistics.median(dev_res["ours"]), statistics.median(dev_res["strided"])
            print(
                f"| {op} | cuda (on device) | {1000 * numpy_ms:.1f} (cpu) | {_ms(dev_res['ours'])} | "
                f"{_ms(dev_res['strided'])} | {numpy_ms / o:.0f}x | {numpy_ms / st:.0f}x | "
                f"{speedup(dev_res, 'strided', 'ours'):.2f}x |"
            )
    print("\nms: median over rounds (best round); speed-up 'X vs Y' = median over rounds of Y time / X time")
    print("in the same round, above 1 means X is faster; on CUDA the numpy column is the CPU time")


if __name__ == "__main__":
    main()
