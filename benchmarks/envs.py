"""Environment throughput: raw and wrapped steps/s per preset, and dm_control render quality.

Raw = the underlying simulator producing one observation per step at its native resolution
(the distractor env itself; a gymnasium env's ``step`` + ``render``; one dm_control control step +
one 84x84 render; one ALE frame). Wrapped = ``curl_rl.envs.make_env(preset)`` agent steps
(action repeat, resize, frame stack, Monitor included); ``frames/s`` = agent steps/s x action repeat.

The dm_control table renders 84x84 frames three ways on the same physics: ``physics.render()``
(a new camera per frame, what a generic adapter does) and through one reused camera, each with
MuJoCo's default visuals and with this package's fast settings (the adapter's configuration is
"camera fast").

Usage::

    python benchmarks/envs.py                    # everything that is installed, ~2 s per row
    python benchmarks/envs.py --only distractor --seconds 5 --json out.json
    python benchmarks/envs.py --ppo distractor-easy --seeds 0 1   # learnability check

Single-threaded by design (``torch`` is not involved); run it on an otherwise idle core.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from curl_rl.envs import list_presets, load_preset, make_env
from curl_rl.envs.extras import EXTRA_MODULES


def rate(step: Callable[[], Any], seconds: float, min_steps: int = 20) -> float:
    """Calls per second of ``step``, measured for about ``seconds`` after a short warm-up.

    :param step: the callable to time.
    :param seconds: measuring time.
    :param min_steps: at least this many calls.
    :return: calls per second.
    """
    for _ in range(3):
        step()
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(10):
            step()
        n += 10
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= min_steps:
            return n / elapsed


def _stepper(env: Any, render: bool = False) -> Callable[[], None]:
    env.reset(seed=0)
    env.action_space.seed(0)
    # Pre-drawn actions: gymnasium's Box.sample() costs tens of microseconds, which would be
    # charged to fast envs.
    actions = [env.action_space.sample() for _ in range(1024)]
    counter = iter(range(1 << 62))

    def step() -> None:
        action = actions[next(counter) % len(actions)]
        _, _, terminated, truncated, _ = env.step(action)
        if render:
            env.render()
        if terminated or truncated:
            env.reset()

    return step


def raw_env(preset_name: str) -> tuple[Any, bool]:
    """The preset's underlying simulator, and whether ``render()`` must be called per step.

    :param preset_name: bundled preset name.
    """
    import gymnasium as gym

    preset = load_preset(preset_name)
    spec = preset.env
    if spec.kind == "distractor":
        from curl_rl.envs.distractor import DistractorEnv
        from curl_rl.envs.presets import DISTRACTOR_IDS

        kwargs = {"continuous": DISTRACTOR_IDS[spec.id or ""], **spec.kwargs}
        return DistractorEnv(size=spec.image_size, **kwargs), False
    if spec.kind == "gym":
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        return gym.make(spec.id or "", render_mode="rgb_array", **spec.kwargs), True
    if spec.kind == "dmc":
        from curl_rl.envs.dmc import DMCEnv

        return DMCEnv(spec.domain or "", spec.task or "", image_size=spec.image_size, **spec.kwargs), False
    import ale_py

    gym.register_envs(ale_py)
    return gym.make(spec.id or "", frameskip=1, repeat_action_probability=0.0), False


def _installed(kind: str) -> bool:
    import importlib.util

    extra = {"dmc": "dmc", "atari": "atari", "gym": "classic"}.get(kind)
    if extra is None:
        return True
    return all(importlib.util.find_spec(m) is not None for m in EXTRA_MODULES[extra])


def bench_presets(names: list[str], seconds: float) -> list[dict[str, Any]]:
    """Raw and wrapped throughput of each preset.

    :param names: preset names.
    :param seconds: measuring time per number.
    """
    rows = []
    for name in names:
        preset = load_preset(name)
        if not _installed(preset.env.kind):
            print(f"{name:24s} skipped (extra not installed)", flush=True)
            continue
        env, render = raw_env(name)
        raw = rate(_stepper(env, render), seconds)
        env.close()
        wrapped_env = make_env(name, seed=0)
        wrapped = rate(_stepper(wrapped_env), seconds)
        wrapped_env.close()
        row = {
            "preset": name,
            "obs_shape": list(wrapped_env.observation_space.shape or ()),
            "raw_steps_per_s": round(raw),
            "wrapped_steps_per_s": round(wrapped),
            "action_repeat": preset.env.action_repeat,
            "wrapped_frames_per_s": round(wrapped * preset.env.action_repeat),
        }
        rows.append(row)
        print(
            f"{name:24s} raw {raw:8.0f}/s   wrapped {wrapped:7.0f} agent steps/s "
            f"(x{preset.env.action_repeat} = {wrapped * preset.env.action_repeat:7.0f} frames/s)  "
            f"obs {wrapped_env.observation_space.shape}",
            flush=True,
        )
    return rows


def bench_dmc_render(tasks: list[tuple[str, str]], seconds: float, size: int = 84) -> list[dict[str, Any]]:
    """84x84 render rates of dm_control at default vs fast quality.

    :param tasks: (domain, task) pairs.
    :param seconds: measuring time per number.
    :param size: image side.
    """
    from curl_rl.envs.dmc import _FAST_RENDER_FLAGS, _import_dm_control

    suite, engine = _import_dm_control()
    rows = []
    for domain, task in tasks:
        result: dict[str, Any] = {"task": f"{domain}-{task}"}
        for mode in ("physics.render default", "camera default", "physics.render fast", "camera fast"):
            env = suite.load(domain, task, task_kwargs={"random": 0})
            env.reset()
            physics = env.physics
            flags: dict[str, bool] = {}
            if mode.endswith("fast"):
                physics.model.vis.quality.shadowsize = 0
                physics.model.vis.quality.offsamples = 0
                flags = dict(_FAST_RENDER_FLAGS)
            render: Callable[[], Any]
            if mode.startswith("physics"):
                render = functools.partial(physics.render, size, size, camera_id=0, render_flag_overrides=flags)
            else:
                camera = engine.Camera(physics, size, size, 0)
                render = functools.partial(camera.render, render_flag_overrides=flags)

            result[mode] = round(rate(render, seconds))
            env.close()
        result["fast / physics.render"] = round(result["camera fast"] / result["physics.render default"], 1)
        result["fast / camera default"] = round(result["camera fast"] / result["camera default"], 1)
        rows.append(result)
        print(
            f"{result['task']:20s} physics.render default {result['physics.render default']:5d}/s  "
            f"camera default {result['camera default']:5d}/s  physics.render fast "
            f"{result['physics.render fast']:5d}/s  camera fast {result['camera fast']:5d}/s  "
            f"speed-up {result['fast / physics.render']}x (same camera: {result['fast / camera default']}x)",
            flush=True,
        )
    return rows


def ppo_progress(name: str, seed: int, steps: int | None, eval_episodes: int = 20) -> dict[str, Any]:
    """Plain SB3 PPO("CnnPolicy") with the preset's hyperparameters: return before and after.

    One torch thread, DummyVecEnv, the preset's quick budget unless ``steps`` is given. The
    evaluation uses ``make_env(..., evaluation=True)`` episodes with a stochastic policy (the
    greedy one can dither in place before training).

    :param name: preset name.
    :param seed: seed for the model and the envs.
    :param steps: training steps (None: the preset's quick budget).
    :param eval_episodes: evaluation episodes before and after.
    """
    import torch
    from stable_baselines3 import PPO

    from curl_rl.envs import make_vec_env

    torch.set_num_threads(1)
    preset = load_preset(name)
    cfg = preset.algo_config("ppo")
    total = steps or preset.budgets.quick
    venv = make_vec_env(preset, cfg["n_envs"], seed)
    model = PPO(cfg["policy"], venv, seed=seed, device="cpu", verbose=0, **cfg["hyperparams"])

    def evaluate() -> tuple[float, float]:
        env = make_env(preset, seed, evaluation=True)
        returns, reaches = [], []
        for _ in range(eval_episodes):
            obs, info = env.reset()
            done, ret = False, 0.0
            while not done:
                action, _ = model.predict(obs, deterministic=False)
                obs, reward, terminated, truncated, info = env.step(action)
                ret += float(reward)
                done = terminated or truncated
            returns.append(ret)
            reaches.append(float(info.get("targets_reached", np.nan)))
        return float(np.mean(returns)), float(np.mean(reaches))

    before, reach_before = evaluate()
    start = time.perf_counter()
    model.learn(total)
    minutes = (time.perf_counter() - start) / 60
    after, reach_after = evaluate()
    row = {
        "preset": name,
        "seed": seed,
        "steps": int(model.num_timesteps),
        "train_minutes": round(minutes, 2),
        "return_before": round(before, 2),
        "return_after": round(after, 2),
        "reaches_before": round(reach_before, 2),
        "reaches_after": round(reach_after, 2),
    }
    print(
        f"{name} seed {seed}: {row['steps']} steps in {minutes:.2f} min (1 torch thread); "
        f"return {before:.2f} -> {after:.2f}; targets reached/episode {reach_before:.2f} -> {reach_after:.2f}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print (optionally save) the numbers.

    :param argv: command-line arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per number")
    parser.add_argument("--only", default="", help="substring filter on preset names")
    parser.add_argument("--no-render-compare", action="store_true", help="skip the dm_control render table")
    parser.add_argument("--json", default=None, help="write the results to this JSON file")
    parser.add_argument(
        "--ppo",
        nargs="*",
        metavar="PRESET",
        help="instead of throughput, train plain SB3 PPO on these presets for their quick budget "
        "and print the return before and after",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds for --ppo")
    parser.add_argument("--steps", type=int, default=None, help="training steps for --ppo (default: quick)")
    args = parser.parse_args(argv)

    if args.ppo is not None:
        rows = [ppo_progress(n, s, args.steps) for n in (args.ppo or ["distractor-easy"]) for s in args.seeds]
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump({"ppo": rows}, fh, indent=2)
        return

    names = [n for n in list_presets() if args.only in n]
    out: dict[str, Any] = {"presets": bench_presets(names, args.seconds)}
    if not args.no_render_compare and _installed("dmc") and (not args.only or "dmc" in args.only):
        from curl_rl.envs.dmc import CURL_ACTION_REPEAT

        print("\ndm_control 84x84 render, frames/s:")
        out["dmc_render"] = bench_dmc_render(list(CURL_ACTION_REPEAT), args.seconds)
    out["env"] = {
        "MUJOCO_GL": os.environ.get("MUJOCO_GL"),
        "LP_NUM_THREADS": os.environ.get("LP_NUM_THREADS"),
        "cpus": os.cpu_count(),
        "numpy": np.__version__,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
