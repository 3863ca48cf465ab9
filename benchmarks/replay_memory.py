"""Replay memory and sampling speed: SB3's ReplayBuffer vs curl_rl's PixelReplayBuffer.

Observations are 84x84 RGB, 3 frames stacked along channels (channel-first (9, 84, 84), as SB3's
VecTransposeImage hands them to SAC/TD3/DQN). Synthetic episodes repeat the first frame at reset
(CURL's frame stack) and draw each new frame from a pool of random noise frames.

SB3's buffer is never allocated at full size: its bytes come from the shapes of the arrays it
allocates (checked against a real buffer of ``--sb3-fill`` transitions), and RSS growth is
measured while filling that smaller buffer and extrapolated. The PixelReplayBuffer is filled for
real at ``--pixel-fill`` transitions (100k by default: about 2.1 GiB).

Run from the repo root::

    python benchmarks/replay_memory.py --transitions 100000 --sb3-fill 10000 --pixel-fill 100000
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing as mp
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from curl_rl.buffers.replay import PixelReplayBuffer, SequenceReplayBuffer

GIB = 2**30


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def sb3_allocated_bytes(n: int, obs_shape: tuple[int, ...], action_dim: int, optimize: bool, n_envs: int = 1) -> int:
    """Bytes of SB3 ReplayBuffer's arrays: uint8 obs; float32 actions, rewards, dones, timeouts."""
    rows = max(n // n_envs, 1)
    obs = rows * n_envs * int(np.prod(obs_shape))
    small = rows * n_envs * (action_dim + 3) * 4
    return obs * (1 if optimize else 2) + small


class Feed:
    """Synthetic channel-stacked trajectories with resets every ``episode_length`` steps."""

    def __init__(self, k: int, frame_shape: tuple[int, int, int], episode_length: int, action_dim: int):
        pool_rng = np.random.default_rng(0)
        self.pool = pool_rng.integers(0, 256, (97, *frame_shape), dtype=np.uint8)  # prime: no short cycles
        self.k, self.episode_length = k, episode_length
        self.action = np.zeros((1, action_dim), np.float32)
        self.t = 0
        self.frames = [self.pool[0]] * k

    def next(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs = np.concatenate(self.frames)[None]
        self.t += 1
        self.frames = [*self.frames[1:], self.pool[(self.t * 7) % 97]]
        next_obs = np.concatenate(self.frames)[None]
        done = self.t % self.episode_length == 0
        infos: list[dict[str, Any]] = [{"TimeLimit.truncated": True}] if done else [{}]
        if done:
            self.frames = [self.pool[(self.t * 7 + 3) % 97]] * self.k
        return obs, next_obs, self.action, np.zeros(1, np.float32), np.array([done], np.float32), infos


def fill(buf: ReplayBuffer, n: int, feed: Feed) -> float:
    """Add ``n`` transitions; returns microseconds per add."""
    start = time.perf_counter()
    for _ in range(n):
        buf.add(*feed.next())
    return (time.perf_counter() - start) / n * 1e6


def time_call(fn: Callable[[], Any], repeats: int) -> float:
    """Median seconds per call after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


K, FRAME_SHAPE, ACTION_DIM = 3, (3, 84, 84), 6
OBS_SHAPE = (K * FRAME_SHAPE[0], *FRAME_SHAPE[1:])


def measure(
    kind: str,
    n_fill: int,
    episode_length: int,
    batch_size: int,
    horizon: int,
    repeats: int,
    threads: int,
    timing: bool,
) -> dict[str, float]:
    """
    Build one buffer, fill it, and measure it; runs in a fresh process (see :func:`isolated`).

    :param kind: ``"sb3"``, ``"sb3-optimize"`` or ``"pixel"``
    :param n_fill: Buffer size, filled completely
    :param episode_length: Steps per synthetic episode
    :param batch_size: Batch size of the timed calls
    :param horizon: ``K`` of the timed ``sample_sequences`` calls
    :param repeats: Timed calls per measurement (median reported)
    :param threads: torch threads
    :param timing: Whether to time ``sample`` and ``sample_sequences``
    :return: RSS growth, allocated bytes, add time, sampling times, frame counts
    """
    th.set_num_threads(threads)
    obs_space = spaces.Box(0, 255, OBS_SHAPE, dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (ACTION_DIM,), dtype=np.float32)
    gc.collect()
    before = rss_bytes()
    buf: SequenceReplayBuffer
    if kind == "pixel":
        buf = PixelReplayBuffer(n_fill, obs_space, act_space, device="cpu", frame_stack=K)
    else:
        optimize = kind == "sb3-optimize"
        kwargs: dict[str, Any] = (
            {"optimize_memory_usage": True, "handle_timeout_termination": False} if optimize else {}
        )
        buf = SequenceReplayBuffer(n_fill, obs_space, act_space, device="cpu", **kwargs)
        assert buf.nbytes == sb3_allocated_bytes(n_fill, OBS_SHAPE, ACTION_DIM, optimize)
    feed = Feed(K, FRAME_SHAPE, episode_length, ACTION_DIM)
    fill(buf, n_fill, feed)
    # Steady state: the ring is full, so adds overwrite (and, for PixelReplayBuffer, reclaim).
    add_us = fill(buf, min(n_fill, 10_000), feed)
    out: dict[str, float] = {"rss": rss_bytes() - before, "nbytes": buf.nbytes, "add_us": add_us}
    if isinstance(buf, PixelReplayBuffer):
        out.update(frames_in_use=buf.frames_in_use, capacity=buf.frame_capacity, live=buf.size() * buf.n_envs)
    if timing:
        out["sample"] = time_call(lambda: buf.sample(batch_size), repeats)
        out["sequences"] = time_call(lambda: buf.sample_sequences(batch_size, horizon), repeats)
    return out


def isolated(**kwargs: Any) -> dict[str, float]:
    """Run :func:`measure` in a fresh process: RSS growth is then not hidden by memory freed earlier."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(measure, **kwargs).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transitions", type=int, default=100_000, help="buffer size to report")
    parser.add_argument("--sb3-fill", type=int, default=10_000, help="SB3 buffer size filled for real")
    parser.add_argument("--pixel-fill", type=int, default=100_000, help="PixelReplayBuffer size filled for real")
    parser.add_argument("--episode-length", type=int, default=250, help="steps per synthetic episode")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--horizon", type=int, default=3, help="K for sample_sequences timing")
    parser.add_argument("--repeats", type=int, default=20, help="timed sampling calls (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    n = args.transitions
    common = {
        "episode_length": args.episode_length,
        "batch_size": args.batch_size,
        "horizon": args.horizon,
        "repeats": args.repeats,
        "threads": args.threads,
    }
    print(f"# replay memory benchmark: obs {OBS_SHAPE} uint8, {K} stacked RGB frames, action_dim {ACTION_DIM}")
    print(f"# host {platform.node()} | {os.cpu_count()} CPUs | numpy {np.__version__} | torch {th.__version__}")
    print(
        f"# episode length {args.episode_length}, batch {args.batch_size}, horizon {args.horizon}, "
        f"torch threads {args.threads}, MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', 'unset')}; "
        "each row measured in its own process"
    )
    sb3 = isolated(kind="sb3", n_fill=args.sb3_fill, timing=True, **common)
    sb3_opt = isolated(kind="sb3-optimize", n_fill=args.sb3_fill, timing=False, **common)
    pix_small = isolated(kind="pixel", n_fill=args.sb3_fill, timing=True, **common)
    pix = isolated(kind="pixel", n_fill=args.pixel_fill, timing=True, **common)

    sb3_scale, pix_scale = n / args.sb3_fill, n / args.pixel_fill
    how = "filled for real" if args.pixel_fill == n else f"x{pix_scale:g} of {args.pixel_fill:,}"
    rows = [
        ("SB3 ReplayBuffer", sb3_allocated_bytes(n, OBS_SHAPE, ACTION_DIM, False), sb3, sb3_scale, ""),
        (
            "SB3 ReplayBuffer optimize_memory_usage",
            sb3_allocated_bytes(n, OBS_SHAPE, ACTION_DIM, True),
            sb3_opt,
            sb3_scale,
            "",
        ),
        ("PixelReplayBuffer", pix["nbytes"] * pix_scale, pix, pix_scale, how),
    ]
    print()
    print(f"## memory for {n:,} transitions")
    print("| buffer | allocated GiB | RSS growth GiB | add us/transition (full ring) |")
    print("|---|---|---|---|")
    for label, allocated, res, scale, note in rows:
        note = note or f"x{scale:g} of {args.sb3_fill:,}"
        rss = f"{res['rss'] * scale / GIB:.2f} ({note})"
        print(f"| {label} | {allocated / GIB:.2f} | {rss} | {res['add_us']:.0f} |")
    live = pix["live"]
    frame_bytes = int(np.prod(FRAME_SHAPE))
    print(
        f"PixelReplayBuffer: {pix['frames_in_use']:,.0f} frames in use for {live:,.0f} transitions "
        f"({pix['frames_in_use'] / live:.3f} frames/transition), capacity {pix['capacity']:,.0f} frames; "
        f"frames-only bound {live * frame_bytes / GIB:.2f} GiB; nbytes {pix['nbytes'] / GIB:.3f} GiB"
    )
    print()
    print(f"## sampling, batch {args.batch_size} (median of {args.repeats} calls, ms)")
    small_n, big_n = f"{args.sb3_fill // 1000}k", f"{args.pixel_fill // 1000}k"
    print(f"| call | SB3 / naive @{small_n} | Pixel @{small_n} | Pixel @{big_n} | Pixel / naive @{small_n} |")
    print("|---|---|---|---|---|")
    for name, key in (("sample", "sample"), (f"sample_sequences K={args.horizon}", "sequences")):
        naive_s, small_s, big_s = sb3[key], pix_small[key], pix[key]
        cells = [f"{x * 1e3:.1f}" for x in (naive_s, small_s, big_s)] + [f"{small_s / naive_s:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("(naive sample_sequences: SequenceReplayBuffer, i.e. SB3's storage layout)")


if __name__ == "__main__":
    main()
