"""Achieved GFLOP/s of one CurlEncoder update against this machine's matmul peak, per speed switch.

One update = forward + backward + Adam step of CURL's encoder (4 conv 3x3 x32, first stride 2,
Linear 50, LayerNorm, tanh) on a float batch of 84x84x9 images. FLOPs are counted with
``torch.utils.flop_counter.FlopCounterMode`` over forward + backward (the conv/linear work; Adam's
few elementwise FLOPs per parameter are left out) and checked against the analytic count
(3x the forward conv/linear FLOPs, less the first layer's unneeded input gradient). The peak is
the best GFLOP/s of a large square ``torch.mm`` in float32 (and bf16 where bf16 arms run).

Switch arms (:mod:`curl_rl.algos.performance`, applied exactly as the library applies them):
default, channels_last, compile, compile + channels_last, bf16, bf16 + channels_last. bf16 runs on
CUDA; on CPU it is reported as skipped unless ``--cpu-bf16`` asks for it. Arms are built with the
same initial weights and timed in alternating rounds inside one process per batch size (a fresh
process, so compiled graphs of one batch size do not turn the next into a dynamic-shape graph).

The allocator check runs the default arm in child processes with and without
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736``, alternating A/B/A/B, and reports the
ratio. The switch table runs under the tuned allocator.

    python -m benchmarks.encoder_efficiency                 # CPU: ~5 minutes on 2 cores
    python -m benchmarks.encoder_efficiency --quick         # smaller: batch 128 only, fewer rounds
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import machine_description, stamp
from curl_rl import CurlEncoder
from curl_rl.algos.performance import PerformanceConfig, apply_to_module, bf16_supported

TUNED_MALLOC = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}
ARMS: dict[str, PerformanceConfig] = {
    "default": PerformanceConfig.off(),
    "channels_last": PerformanceConfig(channels_last=True, compile=False, bf16=False),
    "compile": PerformanceConfig(channels_last=False, compile=True, bf16=False),
    "compile+channels_last": PerformanceConfig(channels_last=True, compile=True, bf16=False),
    "bf16": PerformanceConfig(channels_last=False, compile=False, bf16=True),
    "bf16+channels_last": PerformanceConfig(channels_last=True, compile=False, bf16=True),
}
SIZE, CHANNELS = 84, 9


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int, repeats: int = 5) -> float:
    """Best GFLOP/s of an ``n`` x ``n`` by ``n`` x ``n`` matmul in ``dtype``.

    :param device: where to run.
    :param dtype: float32 or bfloat16.
    :param n: matrix side.
    :param repeats: timed calls (the best counts: the peak is what the machine can reach).
    :return: GFLOP/s.
    """
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def analytic_flops(batch: int, size: int = SIZE, channels: int = CHANNELS) -> tuple[float, float]:
    """Forward and update (forward + backward) FLOPs of CURL's encoder from its layer shapes.

    A conv/linear layer costs ``2 * out_elements * fan_in`` per pass; backward is one pass for the
    weight gradient and one for the input gradient, except the first layer (its input, the image,
    needs no gradient).

    :param batch: batch size.
    :param size: image side.
    :param channels: input channels.
    :return: ``(forward_flops, update_flops)``.
    """
    side, c_in = size, channels
    layers: list[float] = []
    for stride in (2, 1, 1, 1):
        side = (side - 3) // stride + 1
        layers.append(2.0 * batch * 32 * side * side * c_in * 9)
        c_in = 32
    layers.append(2.0 * batch * 32 * side * side * 50)  # Linear(32*35*35 -> 50)
    forward = sum(layers)
    return forward, 3 * forward - layers[0]


def counted_flops(batch: int, device: torch.device) -> float:
    """Forward + backward FLOPs of one update as ``FlopCounterMode`` counts them.

    :param batch: batch size.
    :param device: where to run (the count does not depend on it).
    """
    space = gym.spaces.Box(0, 255, (CHANNELS, SIZE, SIZE), np.uint8)
    enc = CurlEncoder(space).to(device)
    x = torch.rand(batch, CHANNELS, SIZE, SIZE, device=device)
    with FlopCounterMode(display=False) as counter:
        enc(x).pow(2).mean().backward()
    return float(counter.get_total_flops())


class _Arm:
    """One encoder + Adam with a switch config; ``update()`` is one timed unit of work."""

    def __init__(self, base: CurlEncoder, config: PerformanceConfig, x: torch.Tensor) -> None:
        self.encoder = copy.deepcopy(base)
        apply_to_module(self.encoder, config)
        self.optimizer = torch.optim.Adam(self.encoder.parameters(), lr=1e-3)
        self.x = x

    def update(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.encoder(self.x).pow(2).mean().backward()
        self.optimizer.step()


def run_switches(batch: int, arms: list[str], rounds: int, reps: int, device: torch.device) -> dict[str, Any]:
    """Time the arms alternately at one batch size (child-process entry point).

    :param batch: batch size.
    :param arms: names from :data:`ARMS`.
    :param rounds: alternating rounds (order reversed every other round).
    :param reps: updates per arm per round.
    :param device: where to run.
    :return: per arm: median seconds per update, first-call seconds (compilation included).
    """
    space = gym.spaces.Box(0, 255, (CHANNELS, SIZE, SIZE), np.uint8)
    torch.manual_seed(0)
    base = CurlEncoder(space).to(device)
    x = torch.rand(batch, CHANNELS, SIZE, SIZE, device=device)
    built: dict[str, _Arm] = {}
    first: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in arms:
        try:
            arm = _Arm(base, ARMS[name], x)
            t0 = time.perf_counter()
            arm.update()  # compiles here for compile arms
            _sync(device)
            first[name] = time.perf_counter() - t0
            arm.update()  # a second warm update: allocator and oneDNN primitive caches settle
            _sync(device)
            built[name] = arm
        except Exception as exc:  # a switch that does not work here is a result, not a crash
            errors[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    times: dict[str, list[float]] = {name: [] for name in built}
    peaks: dict[str, list[float]] = {"fp32": [], "bf16": []}
    side = 4096 if device.type == "cuda" else 2048
    order = list(built)
    for r in range(rounds):
        # the peak is re-measured every round: on a shared machine it moves as much as the arms do
        peaks["fp32"].append(matmul_peak(device, torch.float32, side, repeats=3))
        if any("bf16" in name for name in built):
            peaks["bf16"].append(matmul_peak(device, torch.bfloat16, side, repeats=3))
        for name in order if r % 2 == 0 else order[::-1]:
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(reps):
                built[name].update()
            _sync(device)
            times[name].append((time.perf_counter() - t0) / reps)
    # per-round ratios pair measurements taken seconds apart, which cancels most load drift
    ratios = {
        name: statistics.median(d / t for d, t in zip(times["default"], v)) if "default" in times else float("nan")
        for name, v in times.items()
    }
    flops = analytic_flops(batch)[1]
    fraction = {
        name: statistics.median(flops / t / 1e9 / p for t, p in zip(v, peaks["bf16" if "bf16" in name else "fp32"]))
        for name, v in times.items()
    }
    return {
        "batch": batch,
        "seconds": {name: statistics.median(v) for name, v in times.items()},
        "speedup": ratios,
        "fraction": fraction,
        "peak": {k: statistics.median(v) for k, v in peaks.items() if v},
        "first_call": first,
        "errors": errors,
    }


def sac_check(arms: list[str], rounds: int, chunk: int, batch: int, device: torch.device) -> dict[str, float]:
    """End-to-end: env steps/s of CurlSAC("curl") per switch arm, learn() chunks alternating.

    One update per env step on :class:`benchmarks.common.SyntheticPixelEnv` (84x84x9), so the
    update dominates as it does in CURL's training loop.

    :param arms: names from :data:`ARMS`.
    :param rounds: alternating rounds.
    :param chunk: env steps (= updates) per arm per round.
    :param batch: SAC batch size.
    :param device: where to run.
    :return: arm -> median over rounds of (default time / arm time) in the same round.
    """
    from benchmarks.common import SyntheticPixelEnv
    from curl_rl import CurlSAC
    from curl_rl.algos.performance import apply_performance

    models = {}
    for name in arms:
        model = CurlSAC(
            "CnnPolicy",
            SyntheticPixelEnv(SIZE, CHANNELS, continuous=True),
            aux="curl",
            buffer_size=5_000,
            batch_size=batch,
            learning_starts=batch,
            policy_kwargs=dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(features_dim=50)),
            seed=0,
            device=device,
        )
        apply_performance(model, ARMS[name])
        model.learn(batch + 2)  # fills past learning_starts and runs the first (slow) updates
        models[name] = model
    times: dict[str, list[float]] = {name: [] for name in arms}
    for r in range(rounds):
        for name in arms if r % 2 == 0 else arms[::-1]:
            t0 = time.perf_counter()
            models[name].learn(chunk, reset_num_timesteps=False)
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(d / t for d, t in zip(times["default"], v)) for name, v in times.items()} | {
        f"{name}_steps_per_s": chunk / statistics.median(v) for name, v in times.items()
    }


def _child(spec: dict[str, Any], env: dict[str, str], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.encoder_efficiency", "--child", json.dumps(spec)]
    # an empty Inductor cache per child: "first call" then shows what a new process pays
    with tempfile.TemporaryDirectory(prefix="curl_rl_inductor_") as cache:
        env = {**env, "TORCHINDUCTOR_CACHE_DIR": cache}
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"child {spec} failed (rc {out.returncode}):\n{out.stderr[-2000:]}")
    return json.loads(lines[-1])


def _env(tuned: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TUNED_MALLOC}
    if tuned:
        env.update(TUNED_MALLOC)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="*", default=[128, 512], help="none: skip the update table")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=2, help="updates per arm per round")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile arms")
    parser.add_argument("--cpu-bf16", action="store_true", help="also time bf16 autocast on CPU")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=None, help="only these arms (+ default)")
    parser.add_argument("--allocator-rounds", type=int, default=2, help="A/B rounds of the allocator check; 0 skips")
    parser.add_argument("--quick", action="store_true", help="batch 128, 2 rounds, 1 rep, 1 allocator round")
    parser.add_argument("--sac-rounds", type=int, default=0, help="end-to-end CurlSAC check (default vs cl); 0 skips")
    parser.add_argument("--sac-chunk", type=int, default=10, help="env steps per arm per round of the SAC check")
    parser.add_argument("--sac-batch", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    if args.child is not None:
        spec = json.loads(args.child)
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        dev = torch.device(spec["device"])
        result: dict[str, Any]
        if spec.get("sac"):
            result = dict(sac_check(spec["arms"], spec["rounds"], spec["chunk"], spec["batch"], dev))
        else:
            result = run_switches(spec["batch"], spec["arms"], spec["rounds"], spec["reps"], dev)
        result["machine"] = machine_description()
        print(json.dumps(result))
        return
    if args.quick:
        args.batches, args.rounds, args.reps, args.allocator_rounds = [128], 2, 1, 1

    print(f"# encoder efficiency — {stamp()}")
    print(f"# machine: {machine_description()}")
    print(f"# command: python -m benchmarks.encoder_efficiency {' '.join(sys.argv[1:])}".rstrip())
    big = 4096 if device.type == "cuda" else 2048
    peak32 = matmul_peak(device, torch.float32, big)
    use_bf16 = device.type == "cuda" or args.cpu_bf16
    bf16_ok = use_bf16 and bf16_supported(device)
    peak16 = matmul_peak(device, torch.bfloat16, big) if bf16_ok else float("nan")
    bf16_note = f", bf16 {peak16:.0f} GFLOP/s" if bf16_ok else ""
    print(f"# matmul peak ({big}x{big}) at start: fp32 {peak32:.0f} GFLOP/s{bf16_note}")
    print("# '% of peak' below: per round, against the peak re-measured in that round (median over rounds)")
    if device.type == "cuda":
        print(
            f"# cuda: matmul TF32 {torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
        )

    arms = ["default", "channels_last"]
    skipped: dict[str, str] = {}
    if args.no_compile:
        skipped.update({"compile": "--no-compile", "compile+channels_last": "--no-compile"})
    else:
        arms += ["compile", "compile+channels_last"]
    if bf16_ok:
        arms += ["bf16", "bf16+channels_last"]
    else:
        why = "CPU: GPU-only switch (pass --cpu-bf16 to time it)" if not use_bf16 else f"no native bf16 on {device}"
        skipped.update({"bf16": why, "bf16+channels_last": why})

    if args.arms is not None:
        wanted = {"default", *args.arms}
        skipped.update({name: "not in --arms" for name in arms if name not in wanted})
        arms = [name for name in arms if name in wanted]

    timeout = 1800.0
    common = {"device": str(device), "threads": args.threads, "reps": args.reps}
    if args.batches:  # `--batches` with no value: only the end-to-end check
        print("\n## FLOPs per update (forward + backward)")
        print("| batch | FlopCounterMode GFLOP | analytic GFLOP | analytic forward GFLOP |")
        print("|---|---|---|---|")
        flops: dict[int, float] = {}
        for batch in args.batches:
            flops[batch] = counted_flops(batch, device)
            fwd, upd = analytic_flops(batch)
            print(f"| {batch} | {flops[batch] / 1e9:.1f} | {upd / 1e9:.1f} | {fwd / 1e9:.1f} |")

        print("\n## one update (forward + backward + Adam), tuned allocator, arms alternating in one process")
        print("(speed-up = median over rounds of default time / arm time in the same round; first call = the first")
        print(" update of a fresh process with an empty Inductor cache, compilation included)")
        print("| batch | arm | ms/update | speed-up | GFLOP/s | % of peak | first call s |")
        print("|---|---|---|---|---|---|---|")
        for batch in args.batches:
            spec = {**common, "arms": arms, "batch": batch, "rounds": args.rounds}
            res = _child(spec, _env(True), timeout)
            base = res["seconds"].get("default")
            for name in arms:
                if name in res["errors"]:
                    print(f"| {batch} | {name} | failed: {res['errors'][name]} | | | | |")
                    continue
                sec = res["seconds"][name]
                gflops = flops[batch] / sec / 1e9
                ratio = f"{res['speedup'][name]:.2f}x" if base else "-"
                print(
                    f"| {batch} | {name} | {1000 * sec:.0f} | {ratio} | {gflops:.1f} | "
                    f"{100 * res['fraction'][name]:.0f}% | {res['first_call'][name]:.1f} |"
                )
            peaks = ", ".join(f"{k} {v:.0f}" for k, v in res["peak"].items())
            print(f"# batch {batch}: matmul peak during these rounds (median GFLOP/s): {peaks}")
            for name, why in skipped.items():
                print(f"| {batch} | {name} | skipped: {why} | | | | |")
            for name in ("compile", "compile+channels_last"):
                eager = res["seconds"].get("default" if name == "compile" else "channels_last")
                if name in res["seconds"] and eager:
                    gain = eager - res["seconds"][name]
                    cost = res["first_call"][name] - res["seconds"][name]
                    pays = f"after {cost / gain:.0f} updates" if gain > 0 else "never (not faster)"
                    print(f"# batch {batch} {name}: compile cost {cost:.1f} s, pays back {pays} (per shape/grad mode)")

        if args.allocator_rounds > 0 and device.type == "cpu":
            print("\n## allocator: default arm, child processes alternating tuned / glibc default")
            print("| batch | tuned ms | glibc default ms | default / tuned |")
            print("|---|---|---|---|")
            for batch in args.batches:
                spec = {**common, "arms": ["default"], "batch": batch, "rounds": 1}
                got: dict[bool, list[float]] = {True: [], False: []}
                for r in range(args.allocator_rounds):
                    for tuned in (True, False) if r % 2 == 0 else (False, True):
                        got[tuned].append(_child(spec, _env(tuned), timeout)["seconds"]["default"])
                t, d = statistics.median(got[True]), statistics.median(got[False])
                print(f"| {batch} | {1000 * t:.0f} | {1000 * d:.0f} | {d / t:.2f}x |")
    if args.sac_rounds > 0:
        sac_arms = ["default", "channels_last"] + (["bf16"] if bf16_ok else [])
        print(f"\n## end to end: CurlSAC('curl') env steps/s, batch {args.sac_batch}, 1 update/step, tuned allocator")
        print(f"({args.sac_rounds} alternating rounds of {args.sac_chunk} steps per arm; SyntheticPixelEnv 84x84x9)")
        print("| arm | steps/s | speed-up |")
        print("|---|---|---|")
        spec = {**common, "sac": True, "arms": sac_arms, "rounds": args.sac_rounds, "chunk": args.sac_chunk}
        res = _child({**spec, "batch": args.sac_batch}, _env(True), timeout)
        for name in sac_arms:
            print(f"| {name} | {res[name + '_steps_per_s']:.2f} | {res[name]:.2f}x |")
    print("\n# settings: " + json.dumps({name: asdict(cfg) for name, cfg in ARMS.items() if name in arms}))


if __name__ == "__main__":
    main()
