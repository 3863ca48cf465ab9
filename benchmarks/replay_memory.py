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
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import ReplayBuffer

from curl_rl.common.replay_buffers import PixelReplayBuffer, SequenceReplayBuffer

GIB = 2**30


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def sb3_allocated_bytes(
    n: int, obs_shape: tuple[int, ...], action_dim: int, optimize: bool, n_envs: int = 1
) -> int:
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--transitions", type=int, default=100_000, help="buffer size to report")
    parser.add_argument("--sb3-fill", type=int, default=10_000, help="SB3 buffer size filled for real")
    parser.add_argument(
        "--pixel-fill", type=int, default=100_000, help="PixelReplayBuffer size filled for real"
    )
    parser.add_argument("--episode-length", type=int, default=250, help="steps per synthetic episode")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--horizon", type=int, default=3, help="K for sample_sequences timing")
    parser.add_argument("--repeats", type=int, default=20, help="timed sampling calls (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    k, frame_shape, action_dim = 3, (3, 84, 84), 6
    obs_shape = (k * frame_shape[0], *frame_shape[1:])
    obs_space = spaces.Box(0, 255, obs_shape, dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (action_dim,), dtype=np.float32)
    n = args.transitions
    frame_bytes = int(np.prod(frame_shape))
    print(
        f"# replay memory benchmark: obs {obs_shape} uint8, {k} stacked RGB frames, action_dim {action_dim}"
    )
    print(
        f"# host {platform.node()} | {os.cpu_count()} CPUs | numpy {np.__version__} | torch {th.__version__}"
    )
    print(
        f"# episode length {args.episode_length}, batch {args.batch_size}, horizon {args.horizon}, "
        f"torch threads {args.threads}, MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_', 'unset')}"
    )
    rows: list[tuple[str, str, str, str]] = []
    timings: dict[str, float] = {}

    # ---- SB3 ReplayBuffer: formula at full size, real fill at a smaller size
    for optimize in (False, True):
        label = "SB3 ReplayBuffer" + (" optimize_memory_usage" if optimize else "")
        kwargs: dict[str, Any] = (
            {"optimize_memory_usage": True, "handle_timeout_termination": False} if optimize else {}
        )
        gc.collect()
        before = rss_bytes()
        buf = SequenceReplayBuffer(args.sb3_fill, obs_space, act_space, device="cpu", **kwargs)
        assert buf.nbytes == sb3_allocated_bytes(args.sb3_fill, obs_shape, action_dim, optimize)
        add_us = fill(buf, args.sb3_fill, Feed(k, frame_shape, args.episode_length, action_dim))
        grown = rss_bytes() - before
        scale = n / args.sb3_fill
        rows.append(
            (
                label,
                f"{sb3_allocated_bytes(n, obs_shape, action_dim, optimize) / GIB:.2f}",
                f"{grown * scale / GIB:.2f} (x{scale:g} of {args.sb3_fill:,})",
                f"{add_us:.0f}",
            )
        )
        if not optimize:
            timings["sb3 sample"] = time_call(lambda b=buf: b.sample(args.batch_size), args.repeats)
            timings["naive sample_sequences"] = time_call(
                lambda b=buf: b.sample_sequences(args.batch_size, args.horizon), args.repeats
            )
        del buf
        gc.collect()

    # ---- PixelReplayBuffer at the SB3 fill size: like-for-like sampling times
    small = PixelReplayBuffer(args.sb3_fill, obs_space, act_space, device="cpu", frame_stack=k)
    fill(small, args.sb3_fill, Feed(k, frame_shape, args.episode_length, action_dim))
    timings["pixel sample small"] = time_call(lambda b=small: b.sample(args.batch_size), args.repeats)
    timings["pixel sample_sequences small"] = time_call(
        lambda b=small: b.sample_sequences(args.batch_size, args.horizon), args.repeats
    )
    del small
    gc.collect()

    # ---- PixelReplayBuffer, filled for real
    before = rss_bytes()
    pix = PixelReplayBuffer(args.pixel_fill, obs_space, act_space, device="cpu", frame_stack=k)
    add_us = fill(pix, args.pixel_fill, Feed(k, frame_shape, args.episode_length, action_dim))
    grown = rss_bytes() - before
    scale = n / args.pixel_fill
    how = "filled for real" if args.pixel_fill == n else f"x{scale:g} of {args.pixel_fill:,}"
    rows.append(
        (
            "PixelReplayBuffer",
            f"{pix.nbytes * scale / GIB:.2f}",
            f"{grown * scale / GIB:.2f} ({how})",
            f"{add_us:.0f}",
        )
    )
    timings["pixel sample"] = time_call(lambda: pix.sample(args.batch_size), args.repeats)
    timings["pixel sample_sequences"] = time_call(
        lambda: pix.sample_sequences(args.batch_size, args.horizon), args.repeats
    )
    live = pix.size() * pix.n_envs

    print()
    print(f"## memory for {n:,} transitions")
    print("| buffer | allocated GiB | RSS growth GiB | add us/transition |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(
        f"PixelReplayBuffer: {pix.frames_in_use:,} frames in use for {live:,} transitions "
        f"({pix.frames_in_use / live:.3f} frames/transition), capacity {pix.frame_capacity:,} frames; "
        f"frames-only bound {live * frame_bytes / GIB:.2f} GiB; nbytes {pix.nbytes / GIB:.3f} GiB"
    )
    print()
    print(f"## sampling, batch {args.batch_size} (median of {args.repeats} calls, ms)")
    small_n, big_n = f"{args.sb3_fill // 1000}k", f"{args.pixel_fill // 1000}k"
    print(f"| call | SB3 / naive @{small_n} | Pixel @{small_n} | Pixel @{big_n} | Pixel / naive @{small_n} |")
    print("|---|---|---|---|---|")
    for name, a, b in (
        ("sample", "sb3 sample", "pixel sample"),
        (f"sample_sequences K={args.horizon}", "naive sample_sequences", "pixel sample_sequences"),
    ):
        naive_s, small_s, big_s = timings[a], timings[b + " small"], timings[b]
        cells = [f"{x * 1e3:.1f}" for x in (naive_s, small_s, big_s)] + [f"{small_s / naive_s:.2f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("(naive sample_sequences: SequenceReplayBuffer, i.e. SB3's storage layout)")


if __name__ == "__main__":
    main()
