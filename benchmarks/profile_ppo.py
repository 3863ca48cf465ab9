"""Where a CurlPPO iteration's time goes, by phase, for each auxiliary preset (docs/perf_notes.md).

Each phase is timed by wrapping the function that does it (the CPU runs synchronously, so wall
time per call is the phase's cost); what no wrapper covers is reported as "other" (SB3's loss
arithmetic, minibatch indexing, logging). On CUDA the numbers would need synchronisation: this
script is for the CPU.

    python -m benchmarks.profile_ppo --arms none,curl,curl+future,spr --iterations 3
    python -m benchmarks.profile_ppo --env distractor-easy --views rollout --threads 2 --ops 8

``--ops N`` adds, per arm, torch.profiler's N costliest operators (self CPU time) of one
``train()`` call and how many encoder forwards with gradient that call ran.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from benchmarks.common import machine_description, preset_ppo, stamp, synthetic_ppo
from curl_rl import CurlPPO


class PhaseClock:
    """Accumulates wall time per phase; nested phases are subtracted from their parents."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._stack.append([0.0])
        t0 = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - t0
            inner = self._stack.pop()[0]
            self.total[name] += spent - inner
            if self._stack:
                self._stack[-1][0] += spent

    def wrap(self, owner: Any, attr: str, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, attr)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attr, timed)


def instrument(model: CurlPPO, clock: PhaseClock) -> None:
    """Wrap the phases of one iteration on this model (instance attributes only, nothing global)."""
    clock.wrap(model, "collect_rollouts", "rollout (acting + env)")
    clock.wrap(model.policy, "evaluate_actions", "RL forward (grad)")
    clock.wrap(model.policy.optimizer, "step", "optimizer steps")
    head = model.aux_head
    if head is not None:
        clock.wrap(head, "augment", "augmentation")
        clock.wrap(head, "encode_key", "key encoder forward")
        clock.wrap(head, "instance_loss", "instance loss (rest)")
        clock.wrap(head, "future_loss", "future loss (rest)")
        clock.wrap(head, "momentum_step", "momentum update")
        if model.aux_optimizer is not None:
            clock.wrap(model.aux_optimizer, "step", "optimizer steps")
        clock.wrap(model, "_aux_old_estimates", "old estimates (no grad)")
        clock.wrap(model, "_rollout_futures", "future windows (gather)")
        clock.wrap(model, "_aux_begin_train", "snapshot copy")


@contextmanager
def timed_backward(clock: PhaseClock) -> Iterator[None]:
    original = torch.Tensor.backward

    def backward(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        with clock.phase("backward"):
            return original(self, *args, **kwargs)

    torch.Tensor.backward = backward  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.backward = original  # type: ignore[method-assign]


def profile_arm(arm: str, args: argparse.Namespace) -> tuple[dict[str, float], float]:
    model = _build(arm, args)
    args.n_steps = model.n_steps * model.n_envs
    model.learn(args.n_steps)  # warm-up, untimed
    clock = PhaseClock()
    instrument(model, clock)
    with timed_backward(clock):
        t0 = time.perf_counter()
        with clock.phase("other"):
            model.learn(args.n_steps * args.iterations, reset_num_timesteps=False)
        wall = time.perf_counter() - t0
    return dict(clock.total), wall


def op_table(arm: str, args: argparse.Namespace) -> str:
    """torch.profiler's costliest operators of one train() call of a fresh, warmed-up model."""
    from torch.profiler import ProfilerActivity, profile

    model = _build(arm, args)
    model.learn(2 * model.n_steps * model.n_envs)  # two iterations: warm-up, untimed
    forwards = [0]
    hook = model.policy.features_extractor.register_forward_hook(
        lambda *_: forwards.__setitem__(0, forwards[0] + int(torch.is_grad_enabled()))
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        model.train()
        wall = time.perf_counter() - t0
    hook.remove()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[: args.ops]
    lines = [f"### {arm}: one train() call {wall:.2f} s, {forwards[0]} encoder forwards with gradient"]
    lines += ["| operator | self CPU ms | calls |", "|---|---:|---:|"]
    lines += [f"| {e.key} | {e.self_cpu_time_total / 1000:.0f} | {e.count} |" for e in events]
    return "\n".join(lines)


def _build(arm: str, args: argparse.Namespace) -> CurlPPO:
    aux = {"preset": arm, "views": args.views}
    if args.env == "synthetic":
        return synthetic_ppo(
            aux, args.n_steps, args.batch, args.epochs, size=args.size, channels=args.channels, device="cpu"
        )
    return preset_ppo(args.env, aux, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", default="none,curl,curl+future,spr")
    parser.add_argument("--env", default="synthetic", help="'synthetic' or a preset name (its own settings)")
    parser.add_argument("--views", default="minibatch", choices=("minibatch", "rollout"), help="aux views mode")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--channels", type=int, default=9)
    parser.add_argument("--n-steps", type=int, default=256)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ops", type=int, default=0, help="also list the N costliest operators per arm")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    arms = args.arms.split(",")
    print(f"# PPO iteration profile — {stamp()}\n# machine: {machine_description()}")
    if args.env == "synthetic":
        print(
            f"# obs {args.size}x{args.size}x{args.channels}, CurlEncoder, n_steps {args.n_steps} batch {args.batch} "
            f"epochs {args.epochs}, views={args.views}, {args.iterations} iterations per arm; "
            "seconds per iteration (share of the arm's time)"
        )
    else:
        print(
            f"# env preset {args.env}: its env, encoder and PPO settings, views={args.views}, {args.iterations} "
            "iterations per arm; seconds per iteration (share of the arm's time)"
        )
    results = {arm: profile_arm(arm, args) for arm in arms}
    phases = sorted({p for totals, _ in results.values() for p in totals}, key=lambda p: (p == "other", p))
    print("| phase | " + " | ".join(arms) + " |")
    print("|---|" + "---:|" * len(arms))
    for phase in phases:
        cells = []
        for arm in arms:
            totals, wall = results[arm]
            spent = totals.get(phase, 0.0) / args.iterations
            cells.append(f"{spent:.3f} ({100 * totals.get(phase, 0.0) / wall:.0f}%)" if phase in totals else "")
        print(f"| {phase} | " + " | ".join(cells) + " |")
    walls = [results[arm][1] / args.iterations for arm in arms]
    print("| **iteration** | " + " | ".join(f"**{w:.3f}**" for w in walls) + " |")
    print("| ratio to first arm (steps/s) | " + " | ".join(f"{walls[0] / w:.2f}x" for w in walls) + " |")
    if args.ops:
        for arm in arms:
            print("\n" + op_table(arm, args))


if __name__ == "__main__":
    main()
