"""Env steps per second with and without the auxiliary loss, measured alternately in one run.

PPO: CurlPPO("curl") against CurlPPO("none") (= SB3's PPO). SAC: CurlSAC("curl") against
CurlSAC("aug"), the same augmentation, routing and encoder without the auxiliary loss. Models are
built once, warmed up, then trained in alternating chunks so machine noise hits every arm alike;
the ratio of summed steps/time per arm is reported.

    python -m benchmarks.overhead --algo both
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import torch

from benchmarks.common import SyntheticPixelEnv, machine_description, stamp
from curl_rl import CurlEncoder, CurlPPO, CurlSAC


def _build(algo: str, aux: Any, args: argparse.Namespace) -> Any:
    policy_kwargs = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(features_dim=50))
    # every arm gets the same, explicit speed switches, so only the objective differs
    common = dict(policy_kwargs=policy_kwargs, seed=0, device=args.device, performance=args.performance)
    if algo == "ppo":
        env = SyntheticPixelEnv(args.size, args.channels)
        return CurlPPO(
            "CnnPolicy",
            env,
            aux=aux,
            n_steps=args.ppo_n_steps,
            batch_size=args.ppo_batch,
            n_epochs=args.ppo_epochs,
            **common,
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
    chunk = args.ppo_chunk if algo == "ppo" else args.sac_chunk
    models = {label: _build(algo, aux, args) for label, aux in arms.items()}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algo", choices=["ppo", "sac", "both"], default="both")
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
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# overhead benchmark — {stamp()}\n# machine: {machine_description()}")
    print(
        f"# obs {args.size}x{args.size}x{args.channels}, CurlEncoder, performance={args.performance}, "
        f"{args.rounds} alternating rounds; PPO n_steps {args.ppo_n_steps} batch {args.ppo_batch} "
        f"epochs {args.ppo_epochs}; SAC batch {args.sac_batch}, 1 update per step"
    )
    plans = {
        "ppo": (
            "none",
            {
                "none": "none",
                "curl": "curl",
                # the sound PPO objective (default) against RAD's naive ratio: its extra no-grad forward
                "curl, naive ratio": {"preset": "curl", "rl_augment": "naive"},
                "curl, aux batch/2": {"preset": "curl", "batch_size": args.ppo_batch // 2},
            },
            0.8,
        ),
        "sac": (
            "aug",
            {"aug": "aug", "curl": "curl", "curl, aux batch/2": {"preset": "curl", "batch_size": args.sac_batch // 2}},
            0.7,
        ),
    }
    algos = ["ppo", "sac"] if args.algo == "both" else [args.algo]
    print("| algo | arm | env steps/s | ratio to baseline | target |")
    print("|---|---|---|---|---|")
    for algo in algos:
        base, arms, target = plans[algo]
        rates = measure(algo, arms, args)
        for label, rate in rates.items():
            ratio = rate / rates[base]
            verdict = "baseline" if label == base else (f">= {target}x " + ("met" if ratio >= target else "MISSED"))
            print(f"| {algo} | {label} | {rate:.1f} | {ratio:.2f}x | {verdict} |")


if __name__ == "__main__":
    main()
