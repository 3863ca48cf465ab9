"""Random crop and random shift throughput: ours (batched torch) against plain numpy, one run.

Batch of 512 uint8 images, 9 channels (3 stacked RGB frames), channel-first as the replay buffer
hands them over: crop 100x100 -> 84x84 (CURL/RAD), shift 84x84 with replicate padding 4 (DrQ).

Arms, timed in alternating rounds (order reversed every other round):

- ``numpy``: the per-sample loops of the reference code (CURL's ``random_crop`` slicing one
  sample at a time; DrQ's ``np.pad(mode="edge")`` then one slice per sample);
- ``ours``: :class:`curl_rl.auxiliary.augmentations.RandomCrop` / ``RandomShift`` (one ``index_select``
  of whole rows from an overlapping ``as_strided`` view, see ``window_crop``; the shift replicate-pads
  first). This was a prototype arm ``strided`` here until it replaced the first, ``gather``-based
  version in the library; ``tests/test_core_units.py`` checks it against ``crop_at``.

On CUDA the torch arms are also timed on the device (input already there, synchronised).

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

from benchmarks.common import machine_description, stamp
from curl_rl.auxiliary.augmentations import RandomCrop, RandomShift


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

    print(f"# augmentation throughput — {stamp()}")
    print(f"# machine: {machine_description()}")
    print(f"# command: python -m benchmarks.augmentation {' '.join(sys.argv[1:])}".rstrip())
    print(
        f"# batch {args.batch} x {args.channels} channels uint8, {args.rounds} alternating rounds of {args.reps} calls"
    )
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (args.batch, args.channels, 100, 100), dtype=np.uint8)
    small = rng.integers(0, 256, (args.batch, args.channels, 84, 84), dtype=np.uint8)
    gen = torch.Generator().manual_seed(0)
    tasks = {
        "crop 100->84": (big, lambda x: numpy_random_crop(x, 84, rng), RandomCrop(84)),
        "shift pad 4 @84": (small, lambda x: numpy_random_shift(x, 4, rng), RandomShift(4)),
    }
    print("\n| op | device | numpy ms | ours ms | ours vs numpy |")
    print("|---|---|---|---|---|")
    for op, (array, np_fn, ours) in tasks.items():
        tensor = torch.from_numpy(array)
        res = measure(
            {"numpy": (partial(np_fn, array), None), "ours": (partial(ours, tensor, gen), cpu)},
            args.rounds,
            args.reps,
        )
        print(f"| {op} | cpu | {_ms(res['numpy'])} | {_ms(res['ours'])} | {speedup(res, 'ours', 'numpy'):.2f}x |")
        if cuda is not None:
            on_dev = tensor.to(cuda)
            gcuda = torch.Generator(device=cuda).manual_seed(0)
            dev_res = measure({"ours": (partial(ours, on_dev, gcuda), cuda)}, args.rounds, args.reps * 10)
            numpy_ms = statistics.median(res["numpy"])
            print(
                f"| {op} | cuda (on device) | {1000 * numpy_ms:.1f} (cpu) | {_ms(dev_res['ours'])} | "
                f"{numpy_ms / statistics.median(dev_res['ours']):.0f}x |"
            )
    print("\nms: median over rounds (best round); speed-up 'X vs Y' = median over rounds of Y time / X time")
    print("in the same round, above 1 means X is faster; on CUDA the numpy column is the CPU time")


if __name__ == "__main__":
    main()
