"""CurlSAC("curl") update time at batch 128: this tree against an older commit, side by side.

Each measurement runs in a fresh process that imports curl_rl from one tree (this one, or a git
worktree of ``--old``), fills a replay buffer with 100x100x9 frames, times ``train()`` over
``--updates`` updates (random crop to 84, CURL's encoder and 1024-wide heads) and, as the floor,
one forward+backward of the critic's encoder alone on the same batch. Old and new alternate
within each repetition, so machine noise hits both alike; medians and the old/new ratio are
reported per thread count.

    python -m benchmarks.sac_update --old d3d5e4e --threads 1,2 --updates 10 --reps 3
    python -m benchmarks.sac_update --sides old,new,new+auto,new+bf16

Sides: ``old`` (the ``--old`` commit), ``new`` (this tree, ``performance="off"``: the exact
arithmetic), ``new+auto`` (``performance="auto"``, what ``curl-rl`` runs: channels_last and fused
Adam on a CPU, same numbers up to kernel rounding), ``new+auto-fused`` (``auto`` without fused
Adam: what it adds, side by side), ``new+bf16`` (bf16 autocast for the encoders: opt-in, it
changes the numerics; refused on a CPU without native bf16), ``new+compile`` (``auto`` plus
``torch.compile`` of the encoders: still fp32, but fused kernels may round differently) and
``new+bf16+compile``. Compilation happens in the warm-up updates, so the timings exclude it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _worker(args: argparse.Namespace) -> None:
    sys.path.insert(0, args.repo)
    sys.path.insert(1, str(ROOT))
    import inspect

    import torch

    from benchmarks.common import SyntheticPixelEnv
    from curl_rl import CurlEncoder, CurlSAC

    torch.set_num_threads(args.threads)
    env = SyntheticPixelEnv(100, 9, continuous=True)
    kwargs: dict[str, Any] = dict(
        aux={"preset": "curl", "augment": ["crop"], "crop_size": 84},
        routing="curl",
        buffer_size=2000,
        learning_starts=args.batch,
        batch_size=args.batch,
        tau=0.01,
        target_update_interval=2,
        learning_rate=1e-3,
        ent_coef="auto_0.1",
        policy_kwargs=dict(
            net_arch=[1024, 1024], features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(features_dim=50)
        ),
        seed=0,
        device="cpu",
    )
    if args.performance:
        kwargs["performance"] = json.loads(args.performance)
    # what the newer code can do (CURL's own frequencies and taus) it is asked to do
    if "actor_update_freq" in inspect.signature(CurlSAC.__init__).parameters:
        kwargs.update(encoder_tau=0.05, actor_update_freq=2, alpha_lr=1e-4, alpha_betas=(0.5, 0.999))
    if "key_encoder" in inspect.signature(CurlSAC.__init__).parameters:
        kwargs["key_encoder"] = "target"  # CURL_PAPER_SAC's: keys from the target critic's encoder
    model = CurlSAC("CnnPolicy", env, **kwargs)
    model.learn(args.batch)  # fills the buffer; the first update happens in train() below
    model.train(gradient_steps=4, batch_size=args.batch)  # warm-up (allocator, kernels, compilation)
    start = time.perf_counter()
    model.train(gradient_steps=args.updates, batch_size=args.batch)
    update_s = (time.perf_counter() - start) / args.updates

    encoder = model.critic.features_extractor
    batch = torch.randint(0, 256, (args.batch, 9, 84, 84), dtype=torch.uint8).float() / 255.0
    for _ in range(2):
        encoder(batch).sum().backward()
    start = time.perf_counter()
    for _ in range(args.updates):
        encoder(batch).sum().backward()
    floor_s = (time.perf_counter() - start) / args.updates
    print(json.dumps({"update_s": update_s, "floor_s": floor_s}))


def _worktree(rev: str) -> Path:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"curl_rl_bench_{rev}"
    if not path.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True)
    return path


#: side -> (tree, performance argument as JSON; None: the constructor's default)
SIDES: dict[str, tuple[str, str | None]] = {
    "old": ("old", None),
    "new": ("new", '"off"'),
    "new+auto": ("new", '"auto"'),
    "new+auto-fused": ("new", '{"fused_adam": false}'),
    "new+bf16": ("new", '{"bf16": true}'),
    "new+compile": ("new", '{"compile": true}'),
    "new+bf16+compile": ("new", '{"bf16": true, "compile": true}'),
}


def _measure(repo: Path, threads: int, args: argparse.Namespace, performance: str | None) -> dict[str, float]:
    cmd = [sys.executable, "-m", "benchmarks.sac_update", "--worker", "--repo", str(repo)]
    if performance is not None:
        cmd += ["--performance", performance]
    cmd += ["--threads", str(threads), "--updates", str(args.updates), "--batch", str(args.batch)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", default="d3d5e4e", help="the commit to compare against")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sides", default="old,new", help=f"comma list of {', '.join(SIDES)}")
    parser.add_argument("--repo", default=str(ROOT), help=argparse.SUPPRESS)
    parser.add_argument("--performance", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        _worker(args)
        return

    from benchmarks.common import machine_description, stamp

    sides = args.sides.split(",")
    if "old" not in sides or any(side not in SIDES for side in sides):
        parser.error(f"--sides: a comma list of {', '.join(SIDES)}, with old")
    trees = {"old": _worktree(args.old), "new": ROOT}
    print(f"# CurlSAC('curl') update, batch {args.batch}, 100->84 crop, 9 channels; {stamp()}")
    print(f"# {machine_description()}")
    print(f"# old = {args.old}, new = this tree; {args.reps} alternating repetitions of {args.updates} updates")
    print("| threads | side | update (s) | speed-up over old | encoder fwd+bwd floor (s) | update / floor |")
    print("|---:|---|---:|---:|---:|---:|")
    for threads in (int(t) for t in args.threads.split(",")):
        runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for _ in range(args.reps):
            for side in sides:
                tree, performance = SIDES[side]
                runs[side].append(_measure(trees[tree], threads, args, performance))
        old = statistics.median(r["update_s"] for r in runs["old"])
        for side in sides:
            update = statistics.median(r["update_s"] for r in runs[side])
            floor = statistics.median(r["floor_s"] for r in runs[side])
            print(f"| {threads} | {side} | {update:.3f} | {old / update:.2f}x | {floor:.3f} | {update / floor:.2f} |")


if __name__ == "__main__":
    main()
