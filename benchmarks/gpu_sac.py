"""CurlSAC against plain SAC on DeepMind Control cartpole swingup from pixels: speed on one GPU.

Each arm is built with CURL's SAC update (:data:`curl_rl.algos.sac.CURL_PAPER_SAC`: batch 512,
lr 1e-3, critic tau 0.01 and encoder tau 0.05 every 2nd update, actor and temperature every 2nd
update, temperature lr 1e-4 with betas (0.5, 0.999), initial temperature 0.1, hidden 1024, 50
features, the keys from the target critic's encoder; 3 stacked RGB frames at 84x84, action
repeat 8), fills ``learning_starts`` transitions with random actions, then trains for a fixed
number of updates (one update per env step). Reported per arm: updates/s (time inside
``train()``), env steps/s (collection time outside ``train()``, and overall), peak GPU memory
(``torch.cuda.max_memory_allocated``), mean GPU utilisation (``nvidia-smi`` or pynvml sampled
every 0.5 s in a background thread during the updates).

Arms (``--arms``; each its own model, run one after another, env identical):

- ``sac``: the same settings with SB3's routing (separate actor/critic encoders), no augmentation,
  no auxiliary loss;
- ``aug``: CurlSAC("aug"), DrQ/RAD random shift, CURL routing, no auxiliary loss;
- ``curl``: CurlSAC("curl") with routing "curl";
- ``curl+cl`` / ``curl+bf16`` / ``curl+cl+bf16`` / ``curl+compile`` / ``curl+fused``: ``curl`` built
  with one or two speed switches of :mod:`curl_rl.algos.performance` on (``fused``: PyTorch's
  fused Adam kernel for every optimizer). ``sac``, ``aug`` and ``curl`` run with every switch off,
  so each switched arm's "vs curl" is that switch alone, on any device.

``--smoke`` runs a few updates on CPU (DMC if dm_control imports, else the synthetic env) to test
the script without a GPU. Results go to stdout as a Markdown table and to ``$OUT/gpu_results.md``
when ``$OUT`` is set.

    MUJOCO_GL=egl python -m benchmarks.gpu_sac --updates 3000
    python -m benchmarks.gpu_sac --smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3.common.callbacks import BaseCallback

from benchmarks.common import SyntheticPixelEnv, machine_description, stamp
from curl_rl import CurlSAC
from curl_rl.algos.performance import PerformanceConfig
from curl_rl.algos.sac import CURL_PAPER_SAC

_OFF = PerformanceConfig.off()
SWITCHED = {
    "curl+cl": dataclasses.replace(_OFF, channels_last=True),
    "curl+bf16": dataclasses.replace(_OFF, bf16=True),
    "curl+cl+bf16": dataclasses.replace(_OFF, channels_last=True, bf16=True),
    "curl+compile": dataclasses.replace(_OFF, compile=True),
    "curl+fused": dataclasses.replace(_OFF, fused_adam=True),
}
ARMS = ("sac", "aug", "curl", *SWITCHED)


class UtilisationSampler:
    """Background sampling of GPU utilisation (%) via pynvml, else ``nvidia-smi``.

    :param device_index: CUDA device index.
    :param period: seconds between samples.
    """

    def __init__(self, device_index: int = 0, period: float = 0.5) -> None:
        self.device_index, self.period = device_index, period
        self.samples: list[float] = []
        self.source = "none"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._nvml: Any = None
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(device_index)
            self.source = "pynvml"
        except Exception:  # not installed or no driver: fall back to the CLI
            if shutil.which("nvidia-smi"):
                self.source = "nvidia-smi"

    def _sample(self) -> float | None:
        if self._nvml is not None:
            return float(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)
        if self.source == "nvidia-smi":
            cmd = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i"]
            out = subprocess.run([*cmd, str(self.device_index)], capture_output=True, text=True, timeout=5)
            return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 and out.stdout.strip() else None
        return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                value = self._sample()
            except Exception:  # a failed query loses one sample, not the benchmark
                value = None
            if value is not None:
                self.samples.append(value)
            self._stop.wait(self.period)

    def __enter__(self) -> UtilisationSampler:
        self.samples.clear()
        if self.source != "none":
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


class TimeLimit(BaseCallback):
    """Stop ``learn()`` once ``seconds`` have passed (the arm then reports what it did)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.perf_counter()
        self.hit = False

    def _on_step(self) -> bool:
        if time.perf_counter() - self.start > self.seconds:
            self.hit = True
            return False
        return True


@dataclass
class ArmResult:
    """What one arm measured."""

    name: str
    fill_steps: int = 0
    fill_s: float = 0.0
    updates: int = 0
    train_steps: int = 0
    train_phase_s: float = 0.0
    in_train_s: float = 0.0
    peak_mem_gib: float | None = None
    util: float | None = None
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def updates_per_s(self) -> float:
        return self.updates / self.in_train_s if self.in_train_s else float("nan")

    @property
    def fill_steps_per_s(self) -> float:
        return self.fill_steps / self.fill_s if self.fill_s else float("nan")

    @property
    def collect_steps_per_s(self) -> float:
        outside = self.train_phase_s - self.in_train_s
        return self.train_steps / outside if outside > 0 else float("nan")

    @property
    def overall_steps_per_s(self) -> float:
        return self.train_steps / self.train_phase_s if self.train_phase_s else float("nan")


def make_cartpole(image_size: int, env_kind: str) -> tuple[gym.Env, str]:
    """DMC cartpole swingup from pixels (3 frames, action repeat 8), or the synthetic stand-in.

    :param image_size: rendered side.
    :param env_kind: ``"dmc"``, ``"synthetic"`` or ``"auto"`` (DMC when dm_control imports).
    :return: the env and a description.
    """
    if env_kind in ("dmc", "auto"):
        try:
            from curl_rl.envs.dmc import make_dmc

            env = make_dmc("cartpole", "swingup", image_size=image_size, frame_stack=3, action_repeat=8)
            env.reset(seed=0)  # renders: a broken GL backend fails here, not inside learn()
            return env, f"DMC cartpole swingup {image_size}x{image_size}x9, action repeat 8"
        except Exception as exc:
            if env_kind == "dmc":
                raise
            print(f"# dm_control unavailable ({type(exc).__name__}: {exc}); using SyntheticPixelEnv", file=sys.stderr)
    return SyntheticPixelEnv(image_size, 9, continuous=True, episode_len=125), (
        f"SyntheticPixelEnv {image_size}x{image_size}x9 (dm_control not used)"
    )


def build(arm: str, env: gym.Env, args: argparse.Namespace, device: str) -> CurlSAC:
    """One arm's model with CURL's SAC settings.

    :param arm: name from :data:`ARMS`.
    :param env: the env.
    :param args: command line.
    :param device: torch device.
    """
    aux: Any = "none" if arm == "sac" else ("aug" if arm == "aug" else "curl")
    if args.crop and aux != "none":
        aux = {"preset": aux, "augment": ("crop",), "crop_size": args.crop}
    kwargs: dict[str, Any] = {
        **CURL_PAPER_SAC,
        "policy_kwargs": {**CURL_PAPER_SAC["policy_kwargs"], "net_arch": [args.hidden, args.hidden]},
        "buffer_size": args.learning_starts + args.updates + 8,
        "learning_starts": args.learning_starts,
        "batch_size": args.batch,
    }
    if arm == "sac":
        kwargs["routing"] = "sb3"
    return CurlSAC(
        "CnnPolicy",
        env,
        aux=aux,
        performance=SWITCHED.get(arm, _OFF),
        train_freq=1,
        gradient_steps=1,
        seed=0,
        device=device,
        **kwargs,
    )


def run_arm(arm: str, args: argparse.Namespace, device: str) -> ArmResult:
    """Fill the buffer, then time ``args.updates`` updates.

    :param arm: name from :data:`ARMS`.
    :param args: command line.
    :param device: torch device.
    """
    result = ArmResult(arm)
    env, _ = make_cartpole(args.image_size, args.env)
    model = build(arm, env, args, device)
    cuda = torch.device(device).type == "cuda"
    in_train = [0.0]
    original_train = model.train

    def timed_train(gradient_steps: int, batch_size: int = 64) -> None:
        t0 = time.perf_counter()
        original_train(gradient_steps, batch_size)
        if cuda:
            torch.cuda.synchronize()
        in_train[0] += time.perf_counter() - t0

    model.train = timed_train  # type: ignore[method-assign]
    t0 = time.perf_counter()
    model.learn(args.learning_starts, progress_bar=False)  # random actions, no updates yet
    result.fill_s = time.perf_counter() - t0
    result.fill_steps = model.num_timesteps
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    in_train[0] = 0.0
    start_updates, start_steps = model._n_updates, model.num_timesteps
    limit = TimeLimit(args.arm_seconds)
    index = torch.device(device).index or 0
    with UtilisationSampler(index) as sampler:
        t0 = time.perf_counter()
        model.learn(args.updates, reset_num_timesteps=False, callback=limit, progress_bar=False)
        if cuda:
            torch.cuda.synchronize()
        result.train_phase_s = time.perf_counter() - t0
    result.in_train_s = in_train[0]
    result.updates = model._n_updates - start_updates
    result.train_steps = model.num_timesteps - start_steps
    result.stopped_early = limit.hit
    result.util = sampler.mean
    if not sampler.samples and cuda:
        result.notes.append(f"no utilisation samples ({sampler.source})")
    if cuda:
        result.peak_mem_gib = torch.cuda.max_memory_allocated() / 2**30
    env.close()
    del model
    if cuda:
        torch.cuda.empty_cache()
    return result


def table(results: list[ArmResult], base: str = "sac") -> str:
    """Markdown table of the arms, with ratios to ``base`` (and to ``curl`` for switched arms)."""
    by_name = {r.name: r for r in results}
    lines = [
        "| arm | updates | updates/s | vs sac | vs curl | env steps/s (collect) | env steps/s (overall) "
        "| fill steps/s (random) | peak GPU mem GiB | GPU util % | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        vs_base = r.updates_per_s / by_name[base].updates_per_s if base in by_name else float("nan")
        vs_curl = r.updates_per_s / by_name["curl"].updates_per_s if "curl" in by_name else float("nan")
        mem = f"{r.peak_mem_gib:.2f}" if r.peak_mem_gib is not None else "-"
        util = f"{r.util:.0f}" if r.util is not None else "-"
        note = "; ".join([*r.notes, *(["stopped at the time limit"] if r.stopped_early else [])])
        lines.append(
            f"| {r.name} | {r.updates} | {r.updates_per_s:.1f} | {vs_base:.2f}x | {vs_curl:.2f}x | "
            f"{r.collect_steps_per_s:.1f} | {r.overall_steps_per_s:.1f} | {r.fill_steps_per_s:.1f} | {mem} | "
            f"{util} | {note} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", nargs="+", default=["sac", "aug", "curl", "curl+cl", "curl+bf16"], choices=ARMS)
    parser.add_argument("--updates", type=int, default=3000, help="updates per arm after learning_starts")
    parser.add_argument("--learning-starts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--crop", type=int, default=0, help="aux arms: random crop to this size (CURL: 100 -> 84)")
    parser.add_argument("--env", choices=["auto", "dmc", "synthetic"], default="auto")
    parser.add_argument("--arm-seconds", type=float, default=75.0, help="time limit of one arm's update phase")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--smoke", action="store_true", help="tiny run: 32 random steps, 4 updates, batch 16")
    args = parser.parse_args()
    if args.smoke:
        args.updates, args.learning_starts, args.batch, args.hidden = 4, 32, 16, 64
        args.arms = [a for a in args.arms if a != "curl+compile"]
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    probe_env, env_desc = make_cartpole(args.image_size, args.env)
    probe_env.close()

    header = [
        f"# gpu_sac benchmark — {stamp()}",
        f"# machine: {machine_description()}",
        f"# command: python -m benchmarks.gpu_sac {' '.join(sys.argv[1:])}".rstrip(),
        f"# env: {env_desc}; MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}",
        f"# settings: CURL_PAPER_SAC with batch {args.batch}, hidden {args.hidden}, "
        f"learning_starts {args.learning_starts}, {args.updates} updates per arm "
        f"(time limit {args.arm_seconds:.0f} s), device {device}"
        + (f", aux arms crop {args.image_size}->{args.crop}" if args.crop else ", aux arms shift pad 4"),
    ]
    print("\n".join(header), flush=True)
    results = []
    for arm in args.arms:
        t0 = time.perf_counter()
        try:
            results.append(run_arm(arm, args, device))
        except Exception as exc:  # one failing arm (e.g. compile) must not cost the others' figures
            failed = ArmResult(arm)
            failed.notes.append(f"failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
            results.append(failed)
        print(f"# {arm}: done in {time.perf_counter() - t0:.0f} s", flush=True)
    body = table(results)
    print("\n" + body)
    out = os.environ.get("OUT")
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "gpu_results.md"), "w") as fh:
            fh.write("\n".join(header) + "\n\n" + body + "\n")


if __name__ == "__main__":
    main()
