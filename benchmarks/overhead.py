"""Env steps per second with and without the auxiliary loss, measured alternately in one run.

PPO: CurlPPO("curl"), ("curl+future") and ("spr"), each with ``views="minibatch"`` and
``views="rollout"``, against CurlPPO("none") (= SB3's PPO). SAC: CurlSAC("curl") against
CurlSAC("aug"), the same augmentation, routing and encoder without the auxiliary loss. Models are
built once, warmed up, then trained in alternating chunks so machine noise hits every arm alike;
the ratio of summed steps/time per arm is reported.

``--env synthetic`` isolates the agent's cost (random 84x84x9 frames, CurlEncoder); ``--env`` a
preset name (``distractor-easy``) measures the preset's own env, encoder and PPO settings
(``preset_kwargs``), aux weight included. ``--allocators default,tuned`` runs the whole
measurement once per glibc allocator setting, each in a fresh process (the setting is read at
process start).

    python -m benchmarks.overhead --algo both
    python -m benchmarks.overhead --algo ppo --env distractor-easy --allocators default,tuned
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

import torch
import yaml

from benchmarks.common import SyntheticPixelEnv, machine_description, preset_ppo, stamp, synthetic_ppo
from curl_rl import CurlEncoder, CurlSAC

#: glibc settings: "tuned" keeps freed memory instead of returning it (run_study.sh sets it)
ALLOCATORS = {"default": {}, "tuned": {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "68719476736"}}
PPO_TARGETS = {"curl": 0.85, "curl+future": 0.7, "spr": 0.7}


def _build(algo: str, aux: Any, args: argparse.Namespace) -> Any:
    if algo == "ppo" and args.env != "synthetic":
        return preset_ppo(args.env, aux, device=args.device, performance=args.performance)
    policy_kwargs = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(features_dim=50))
    # every arm gets the same, explicit speed switches, so only the objective differs
    common = dict(policy_kwargs=policy_kwargs, seed=0, device=args.device, performance=args.performance)
    if algo == "ppo":
        return synthetic_ppo(
            aux,
            args.ppo_n_steps,
            args.ppo_batch,
            args.ppo_epochs,
            size=args.size,
            channels=args.channels,
            device=args.device,
            performance=args.performance,
        )
    env = SyntheticPixelEnv(args.size, args.channels, continuous=True)
    return CurlSAC(
        "CnnPolicy",
        env,
        aux=aux,
        routing="curl",
        buffer_size=20_000,
        batch_size=args.sac_batch,
        learning_starts=args.sac_batch,
        **common,
    )


def measure(algo: str, arms: dict[str, Any], args: argparse.Namespace) -> dict[str, float]:
    """Alternate ``rounds`` chunks of env steps over the arms; return steps/s per arm label."""
    models = {label: _build(algo, aux, args) for label, aux in arms.items()}
    first = next(iter(models.values()))
    # PPO learns whole rollouts: a chunk below one would still run one
    chunk = max(args.ppo_chunk, first.n_steps * first.n_envs) if algo == "ppo" else args.sac_chunk
    for model in models.values():
        # warm-up, untimed: SAC's buffer past learning_starts, allocator and caches settled
        model.learn(chunk + int(getattr(model, "learning_starts", 0)), reset_num_timesteps=False)
    labels = list(arms)
    spent = dict.fromkeys(labels, 0.0)
    steps = dict.fromkeys(labels, 0)
    for r in range(args.rounds):
        for label in labels if r % 2 == 0 else labels[::-1]:
            model = models[label]
            start_steps = model.num_timesteps
            t0 = time.perf_counter()
            model.learn(chunk, reset_num_timesteps=False)
            spent[label] += time.perf_counter() - t0
            steps[label] += model.num_timesteps - start_steps
    return {label: steps[label] / spent[label] for label in labels}


def _ppo_arms(args: argparse.Namespace) -> dict[str, Any]:
    arms: dict[str, Any] = {"none": "none"}
    for preset in args.ppo_arms.split(","):
        for views in ("minibatch", "rollout"):
            arms[f"{preset}, views={views}"] = {"preset": preset, "views": views}
    for variant in args.ppo_variant:
        key, _, raw = variant.partition("=")
        value = yaml.safe_load(raw)
        for preset in args.ppo_arms.split(","):
            arms[f"{preset}, views=rollout, {key}={raw}"] = {"preset": preset, "views": "rollout", key: value}
    if args.env == "synthetic":
        # RAD's naive ratio: what the sound objective's extra forward costs (views=minibatch)
        arms["curl, naive ratio"] = {"preset": "curl", "rl_augment": "naive"}
    return arms


def _target(label: str) -> float | None:
    return PPO_TARGETS.get(label.split(",")[0])


def _run_allocators(names: list[str]) -> None:
    """Run this script once per allocator setting, each in a fresh process, and print their tables."""
    argv, skip = [], False
    for arg in sys.argv[1:]:
        if skip or arg.startswith("--allocators="):
            skip = False
            continue
        if arg == "--allocators":
            skip = True
            continue
        argv.append(arg)
    for name in names:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        env.update(ALLOCATORS[name])
        print(f"\n## allocator: {name} {ALLOCATORS[name] or '(glibc defaults)'}", flush=True)
        subprocess.run([sys.executable, "-m", "benchmarks.overhead", *argv], env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=["ppo", "sac", "both"], default="both")
    parser.add_argument("--env", default="synthetic", help="'synthetic' or a preset name (PPO only)")
    parser.add_argument("--ppo-arms", default="curl,curl+future,spr", help="auxiliary presets measured on PPO")
    parser.add_argument(
        "--ppo-variant",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also measure each PPO preset with views=rollout and this AuxConfig override (repeatable)",
    )
    parser.add_argument("--allocators", default="", help="comma list of " + ", ".join(ALLOCATORS))
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--channels", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--ppo-n-steps", type=int, default=256)
    parser.add_argument("--ppo-batch", type=int, default=64)
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--ppo-chunk", type=int, default=512)
    parser.add_argument("--sac-batch", type=int, default=128)
    parser.add_argument("--sac-chunk", type=int, default=20)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--performance", default="off", help="speed switches for every arm: off, auto")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.allocators:
        _run_allocators(args.allocators.split(","))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# overhead benchmark — {stamp()}\n# machine: {machine_description()}")
    if args.env == "synthetic":
        print(
            f"# obs {args.size}x{args.size}x{args.channels}, CurlEncoder, performance={args.performance}, "
            f"{args.rounds} alternating rounds; PPO n_steps {args.ppo_n_steps} batch {args.ppo_batch} "
            f"epochs {args.ppo_epochs}; SAC batch {args.sac_batch}, 1 update per step"
        )
    else:
        print(f"# env preset {args.env}: its env, encoder and PPO settings; {args.rounds} alternating rounds")
    plans = {
        "ppo": ("none", _ppo_arms(args), None),
        "sac": (
            "aug",
            {"aug": "aug", "curl": "curl", "curl, aux batch/2": {"preset": "curl", "batch_size": args.sac_batch // 2}},
            0.7,
        ),
    }
    if args.env != "synthetic" and args.algo != "ppo":
        parser.error("--env with a preset measures PPO only; add --algo ppo")
    algos = ["ppo", "sac"] if args.algo == "both" else [args.algo]
    print("| algo | arm | env steps/s | ratio to baseline | target |")
    print("|---|---|---|---|---|")
    for algo in algos:
        base, arms, target = plans[algo]
        rates = measure(algo, arms, args)
        for label, rate in rates.items():
            ratio = rate / rates[base]
            goal = target if target is not None else _target(label)
            verdict = (
                "baseline"
                if label == base
                else ("" if goal is None else f">= {goal}x " + ("met" if ratio >= goal else "MISSED"))
            )
            print(f"| {algo} | {label} | {rate:.1f} | {ratio:.2f}x | {verdict} |")


if __name__ == "__main__":
    main()
