"""The ``curl-rl`` command line (also ``python -m curl_rl``).

::

    curl-rl train   --env PRESET --algo ALGO --aux ARM --seed N --steps N [--set key=value ...]
    curl-rl train   --resume RUNS/EXPERIMENT/ARM/seedN
    curl-rl compare --env PRESET --algo ALGO --arms none,aug,curl --seeds 5 --steps N [--jobs J]
                    [--backend ray [--address ADDR]]
    curl-rl plot    RUNS_DIR
    curl-rl envs    # env presets
    curl-rl arms    # auxiliary presets (alias: presets)

Every bad input is reported (exit code 2) before any run starts. ``compare`` exits 1 when a run
failed (after writing the summary), 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from curl_rl.auxiliary.config import ALGO_NAMES, AUX_PRESETS
from curl_rl.experiment.config import DEFAULT_ENV, TensorBoardSettings, UsageError
from curl_rl.experiment.lock import FolderLock, FolderLocked

__all__ = ["build_parser", "main"]

_DEVICE_HELP = "torch device: auto, cpu, cuda or cuda:N (default auto)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(float(text)) if text.replace("e", "").replace(".", "").isdigit() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes") from None
    if not (value >= 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def _steps(text: str) -> int:
    # 2e4 and 20_000 are handy for step counts
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of steps") from None
    if value < 1 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"--steps {text} must be a whole number >= 1")
    return int(value)


def _device(text: str) -> str:
    if text in ("auto", "cpu", "cuda", "mps") or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--env", help=f"env preset name or preset YAML path (default {DEFAULT_ENV}; see `curl-rl envs`)"
    )
    source.add_argument("--config", metavar="FILE", help="a user preset YAML (same as --env FILE)")
    p.add_argument("--algo", default="ppo", choices=sorted(ALGO_NAMES), help="RL algorithm (default ppo)")
    p.add_argument("--steps", type=_steps, help="env steps per run (default: the preset's budget)")
    p.add_argument(
        "--preset-budget", choices=("quick", "full"), default="quick", help="preset budget used without --steps"
    )
    p.add_argument("--device", type=_device, default="auto", help=_DEVICE_HELP)
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value: algo.learning_rate=3e-4, aux.tau=0.01, env.frame_stack=2, eval.freq=5000 "
        "(repeatable; values are YAML scalars)",
    )
    p.add_argument("--name", help="experiment folder name (default <env>-<algo>)")
    p.add_argument("--out", default="runs", help="parent folder of experiments (default runs)")
    p.add_argument(
        "--routing", choices=("auto", "sb3", "curl"), help="encoder routing for every arm (default: curl for sac/td3)"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the representation probe (aux/probe_r2)")
    p.add_argument(
        "--tb-images-every",
        type=_non_negative,
        default=TensorBoardSettings.images_every,
        metavar="N",
        help="log anchor/positive image grids every N gradient updates (0: never; default %(default)s)",
    )
    p.add_argument("--tb-embeddings", action="store_true", help="write an embedding-projector snapshot at the end")
    p.add_argument("--tb-video", action="store_true", help="write a short video of an evaluation episode at the end")
    p.add_argument("--checkpoint-freq", type=_non_negative, metavar="STEPS", help="env steps between checkpoints")
    p.add_argument(
        "--checkpoint-minutes",
        type=_minutes,
        default=30.0,
        metavar="M",
        help="also checkpoint after M minutes of training, so a kill loses at most that (0: never; default 30)",
    )
    p.add_argument("--threads", type=_positive, help="torch threads per run")
    p.add_argument("-v", "--verbose", action="count", default=0, help="print SB3's training tables")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``curl-rl``."""
    parser = argparse.ArgumentParser(
        prog="curl-rl",
        description="Train and compare SB3 pixel agents with contrastive auxiliary losses (CURL, ATC, SPR).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train one (arm, seed) run", description="Train one (arm, seed) run.")
    _add_run_options(train)
    train.add_argument("--aux", default="curl", help=f"auxiliary arm, one of {', '.join(AUX_PRESETS)} (default curl)")
    train.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its newest checkpoint")
    train.add_argument(
        "--restart",
        action="store_true",
        help="start the run again although its folder exists (the old folder is kept under <arm>/.attempts/)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    comp = sub.add_parser(
        "compare",
        help="run every (arm, seed) and summarise",
        description="Run every (arm, seed) pair with the same seeds across arms, then write summary.md, "
        "summary.json and figures. Rerunning the same command resumes.",
    )
    _add_run_options(comp)
    comp.add_argument("--arms", default="none,aug,curl", help="comma-separated arms (default none,aug,curl)")
    comp.add_argument("--seeds", type=_positive, default=5, help="seeds per arm (default 5)")
    comp.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    comp.add_argument("--jobs", type=_positive, help="parallel runs (default: what the machine can hold)")
    comp.add_argument("--backend", choices=("local", "ray"), default="local", help="local processes or Ray tasks")
    comp.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    comp.add_argument("--baseline", help="arm for the probability of improvement (default none)")

    plot = sub.add_parser("plot", help="rebuild summary and figures from disk", description="Rebuild summaries.")
    plot.add_argument("runs_dir", metavar="RUNS_DIR", help="an experiment folder (or a folder of experiments)")
    plot.add_argument("--baseline", default="none", help="baseline arm (default none)")
    plot.add_argument("--include-unfinished", action="store_true", help="also draw unfinished runs' curves")

    envs = sub.add_parser("envs", help="list env presets (--template: a commented preset for your own env)")
    envs.add_argument("--template", action="store_true", help="print a commented preset YAML to start your own env")
    sub.add_parser("arms", aliases=["presets"], help="list auxiliary arms and their settings")
    # parsed by rl_zoo3's own scripts (main() hands every argument after "zoo" to them)
    sub.add_parser("zoo", help="rl_zoo3's train/enjoy/plots with curl_ppo, curl_sac, ... ([zoo] extra)", add_help=False)
    return parser


def _sets(args: argparse.Namespace) -> list[str]:
    sets = list(args.sets)
    if args.no_probe:
        sets.append("probe.enabled=false")
    return sets


def _resolve(
    args: argparse.Namespace, env: str | None = None, steps: int | None = None, sets: Sequence[str] | None = None
) -> Any:
    from curl_rl.experiment.config import resolve_experiment

    config = resolve_experiment(
        env=env if env is not None else (args.config or args.env),
        algo=args.algo,
        steps=steps if steps is not None else args.steps,
        budget=args.preset_budget,
        sets=_sets(args) if sets is None else sets,
        routing=args.routing,
    )
    _note_rollout_rounding(config)
    _note_evaluation_cost(config)
    return config


def _note_rollout_rounding(config: Any) -> None:
    """On-policy algorithms train in whole rollouts: say when the step budget is rounded up."""
    if config.algo not in ("ppo", "a2c"):
        return
    n_steps = int(config.hyperparams.get("n_steps", 2048 if config.algo == "ppo" else 5))
    rollout = n_steps * int(config.n_envs)
    if config.steps % rollout:
        runs = -(-config.steps // rollout) * rollout
        below = " (less than one rollout)" if config.steps < rollout else ""
        print(
            f"note: {config.algo.upper()} collects {rollout} env steps per rollout (n_steps {n_steps} x "
            f"{config.n_envs} envs), so {config.steps} steps{below} run as {runs}",
            file=sys.stderr,
        )


def _note_evaluation_cost(config: Any) -> None:
    """Evaluation episodes are env steps too: say when they may outnumber the training steps."""
    episode = config.env_settings.get("max_episode_steps")
    if not episode:
        return
    evaluations = config.steps // config.eval_freq + 2  # step 0, the schedule, the end
    most = evaluations * config.eval_episodes * int(episode)
    if most > config.steps:
        print(
            f"note: {evaluations} evaluations x {config.eval_episodes} episodes of up to {episode} steps may take "
            f"up to {most} env steps, more than the {config.steps} trained; raise eval.freq or lower "
            "eval.n_episodes if evaluation dominates",
            file=sys.stderr,
        )


def _tensorboard(args: argparse.Namespace) -> TensorBoardSettings:
    return TensorBoardSettings(images_every=args.tb_images_every, embeddings=args.tb_embeddings, video=args.tb_video)


def _cli_record(args: argparse.Namespace, config: Any) -> dict[str, Any]:
    return {
        "env": config.env_source,
        "algo": config.algo,
        "steps": config.steps,
        "set": _sets(args),
        "routing": config.routing,
    }


def cmd_train(args: argparse.Namespace) -> int:
    """``curl-rl train``."""
    from curl_rl.experiment.compare import ensure_out_folder, experiment_dir_for, prepare_experiment_dir
    from curl_rl.experiment.config import parse_arms
    from curl_rl.experiment.run import RunSpec, check_runs_buildable, run_single

    if args.resume:
        if args.restart:
            raise UsageError("--resume continues a run and --restart starts it again; give one of them")
        spec = _resume_spec(args)
    else:
        config = _resolve(args)
        arms = parse_arms(args.aux)
        if len(arms) != 1:
            raise UsageError("train takes one --aux arm; use `curl-rl compare --arms ...` for several")
        experiment_dir = experiment_dir_for(args.out, args.name, config)
        ensure_out_folder(args.out)
        check_runs_buildable(config, arms, args.device)
        run_dir = experiment_dir / arms[0] / f"seed{args.seed}"
        if run_dir.exists() and any(run_dir.iterdir()):
            _restart_or_refuse(run_dir, args.restart)
        prepare_experiment_dir(experiment_dir, config, sys.argv)
        spec = RunSpec(
            experiment_dir=str(experiment_dir),
            arm=arms[0],
            seed=args.seed,
            config=config,
            device=args.device,
            tensorboard=_tensorboard(args),
            checkpoint_freq=_default_checkpoint_freq(args, config),
            checkpoint_minutes=args.checkpoint_minutes,
            threads=args.threads,
            progress=not args.no_progress,
            verbose=args.verbose,
            cli=_cli_record(args, config),
        )
    cfg = spec.config
    print(f"training {spec.name}: {cfg.algo} on {cfg.env_name}, {cfg.steps} steps, into {spec.run_dir}", flush=True)
    try:
        result = run_single(spec)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: checkpoint saved; continue with `curl-rl train --resume {spec.run_dir}`",
            file=sys.stderr,
        )
        return 130
    except UsageError:
        raise
    except FolderLocked as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:
        print(
            f"run failed: {type(exc).__name__}: {exc}\n(traceback in {spec.run_dir / 'status.json'})", file=sys.stderr
        )
        return 1
    final = "n/a" if result.final_return is None else f"{result.final_return:.2f}"
    probe = "n/a" if result.probe_r2 is None else f"{result.probe_r2:.3f}"
    print(
        f"done: {result.env_steps} steps in {result.wall_time_s:.0f} s ({result.steps_per_s:.0f} steps/s), "
        f"final return {final}, probe R\N{SUPERSCRIPT TWO} {probe}\n"
        f"TensorBoard: tensorboard --logdir {spec.run_dir}",
        flush=True,
    )
    return 0


def _restart_or_refuse(run_dir: Path, restart: bool) -> None:
    """An existing run folder: set it aside for ``--restart``, else refuse naming what would continue it."""
    from curl_rl.experiment.checkpoint import latest_checkpoint
    from curl_rl.experiment.compare import set_aside
    from curl_rl.experiment.run import read_status

    status = (read_status(run_dir) or {}).get("status", "unknown")
    if not restart:
        if latest_checkpoint(run_dir) is not None:
            how = f"Continue it with `curl-rl train --resume {run_dir}`, start it again with --restart"
        else:
            how = "It has no checkpoint to continue from; start it again with --restart"
        raise UsageError(
            f"{run_dir} already holds a run (status {status}); nothing was overwritten. {how} "
            "(the old folder is kept), or pass --name NEW_NAME / another --seed"
        )
    try:
        # a run still being written must not be moved away under its writer
        with FolderLock(run_dir, what="run"):
            pass
    except FolderLocked as exc:
        raise UsageError(str(exc)) from None
    kept = set_aside(run_dir)
    print(f"restarting: the old run (status {status}) is kept in {kept}", file=sys.stderr)


def _default_checkpoint_freq(args: argparse.Namespace, config: Any) -> int:
    if args.checkpoint_freq is not None:
        return int(args.checkpoint_freq)
    return max(config.eval_freq, config.steps // 10)


def _resume_spec(args: argparse.Namespace) -> Any:
    from curl_rl.experiment.checkpoint import latest_checkpoint
    from curl_rl.experiment.run import RunSpec, read_status

    run_dir = Path(args.resume)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise UsageError(f"--resume {run_dir}: no config.yaml there; give a run folder runs/<experiment>/<arm>/seed<N>")
    try:
        saved = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{config_path} is not readable YAML ({type(exc).__name__}), so the run cannot be rebuilt from it; "
            "restore the file (every run writes it at its start) or start a new run"
        ) from None
    cli = saved.get("cli") if isinstance(saved, dict) else None
    run = saved.get("run") if isinstance(saved, dict) else None
    if not isinstance(cli, dict) or not isinstance(run, dict) or "arm" not in run or "seed" not in run:
        raise UsageError(f"{config_path} lacks the cli/run sections needed to resume (written by curl-rl train)")
    missing = [key for key in ("env", "algo", "steps") if key not in cli]
    if missing:
        raise UsageError(f"{config_path}: its cli section lacks {', '.join(missing)}; it cannot be resumed")
    if latest_checkpoint(run_dir) is None:
        raise UsageError(f"{run_dir} has no complete checkpoint to resume from")
    steps = args.steps or int(cli["steps"])
    status = read_status(run_dir) or {}
    if status.get("status") == "done" and int(status.get("env_steps") or 0) >= steps:
        raise UsageError(
            f"{run_dir} already finished {status.get('env_steps')} steps; pass a larger --steps to extend it"
        )
    from curl_rl.experiment.config import parse_set, resolve_experiment
    from curl_rl.experiment.resume_overrides import check_resume_overrides

    changes = parse_set(args.sets)
    check_resume_overrides(changes, str(run["arm"]))
    sets = [*(cli.get("set") or []), *args.sets]  # later settings win, as with --set on a new run
    config = resolve_experiment(env=cli["env"], algo=cli["algo"], steps=steps, sets=sets, routing=cli.get("routing"))
    overrides = [
        (key, config.hyperparams[key[5:]] if key.startswith("algo.") else config.aux_overrides[key[4:]])
        for key, _ in changes
    ]
    record = {**cli, "steps": steps, "set": sets}
    return RunSpec(
        experiment_dir=str(run_dir.parent.parent),
        arm=str(run["arm"]),
        seed=int(run["seed"]),
        config=config,
        device=args.device,
        tensorboard=TensorBoardSettings(**(saved.get("tensorboard") or {})),
        checkpoint_freq=_default_checkpoint_freq(args, config),
        checkpoint_minutes=args.checkpoint_minutes,
        threads=args.threads,
        progress=not args.no_progress,
        verbose=args.verbose,
        resume=True,
        cli=record,
        folder=str(run_dir),  # exactly the folder given, never one rebuilt from its config
        resume_overrides=overrides,
    )


def cmd_compare(args: argparse.Namespace) -> int:
    """``curl-rl compare``."""
    from curl_rl.experiment.compare import (
        available_cpus,
        compare,
        default_jobs,
        ensure_out_folder,
        experiment_dir_for,
        plan_runs,
    )
    from curl_rl.experiment.config import parse_arms
    from curl_rl.experiment.run import RunSpec, check_runs_buildable

    config = _resolve(args)
    arms = parse_arms(args.arms)
    if args.address and args.backend != "ray":
        raise UsageError("--address is for --backend ray")
    baseline = args.baseline or ("none" if "none" in arms else arms[0])
    if baseline not in arms:
        raise UsageError(f"--baseline {baseline!r} is not one of the arms {', '.join(arms)}")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    experiment_dir = experiment_dir_for(args.out, args.name, config)
    ensure_out_folder(args.out)
    facts = check_runs_buildable(config, arms, args.device)
    n_runs = len(arms) * len(seeds)
    jobs = min(args.jobs, n_runs) if args.jobs else default_jobs(n_runs, config, facts["obs_bytes"])
    threads = args.threads or (1 if args.backend == "ray" else max(1, available_cpus() // jobs))
    template = RunSpec(
        experiment_dir=str(experiment_dir),
        arm="",
        seed=0,
        config=config,
        device=args.device,
        tensorboard=_tensorboard(args),
        checkpoint_freq=args.checkpoint_freq or 0,
        checkpoint_minutes=args.checkpoint_minutes,
        threads=threads,
        progress=False,
        verbose=args.verbose,
        cli=_cli_record(args, config),
    )
    # one compare per experiment folder: planning reads the runs' statuses, so it happens under the lock
    try:
        lock = FolderLock(experiment_dir, what="experiment")
        lock.acquire()
    except FolderLocked as exc:
        raise UsageError(str(exc)) from None
    try:
        plan = plan_runs(experiment_dir, config, arms, seeds, template, sys.argv)
        print(
            f"experiment {experiment_dir}: {config.algo} on {config.env_name}, arms {', '.join(arms)}, "
            f"seeds {seeds[0]}..{seeds[-1]}, {config.steps} steps each" + (" (resuming)" if plan.resumed else ""),
            flush=True,
        )
        code, _ = compare(plan, jobs=jobs, backend=args.backend, address=args.address, baseline=baseline)
    finally:
        lock.release()
    _print_table(experiment_dir)
    return code


def _print_table(experiment_dir: Path) -> None:
    path = experiment_dir / "summary.md"
    if path.is_file():
        rows = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
        if rows:
            print("\n".join(rows), flush=True)


def _experiment_dirs(root: Path) -> list[Path]:
    from curl_rl.results.summary import load_experiment

    if load_experiment(root):
        return [root]
    # a folder of experiments (e.g. runs/): summarise each
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".") and load_experiment(p))


def cmd_plot(args: argparse.Namespace) -> int:
    """``curl-rl plot``."""
    from curl_rl.results.summary import write_figures, write_summary

    root = Path(args.runs_dir)
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder")
    targets = _experiment_dirs(root)
    if not targets:
        raise UsageError(f"{root} holds no runs (expected <arm>/seed<N>/status.json below it)")
    for experiment_dir in targets:
        summary = write_summary(experiment_dir, baseline=args.baseline)
        if args.include_unfinished:
            write_figures(experiment_dir, include_unfinished=True)
        print(f"summary: {experiment_dir / 'summary.md'}")
        for key, name in (summary.get("figures") or {}).items():
            if name:
                print(f"figure {key}: {experiment_dir / name}")
        _print_table(experiment_dir)
    return 0


def cmd_envs(args: argparse.Namespace) -> int:
    """``curl-rl envs``."""
    if args.template:
        from curl_rl.envs.template import PRESET_TEMPLATE

        print(PRESET_TEMPLATE, end="")
        return 0
    from curl_rl.envs.presets import list_presets

    presets = list_presets()
    width = max((len(n) for n in presets), default=0)
    for name, description in presets.items():
        first = (description or "").strip().splitlines()
        print(f"{name:<{width}}  {first[0] if first else ''}")
    return 0


def cmd_arms(args: argparse.Namespace) -> int:
    """``curl-rl arms`` / ``curl-rl presets``."""
    from curl_rl.experiment.compare import arm_lines

    print("\n".join(arm_lines(AUX_PRESETS)))
    return 0


_COMMANDS = {
    "train": cmd_train,
    "compare": cmd_compare,
    "plot": cmd_plot,
    "envs": cmd_envs,
    "arms": cmd_arms,
    "presets": cmd_arms,
}


def _zoo(arguments: list[str]) -> int:
    try:
        from curl_rl.experiment.zoo import main as zoo_main
    except ImportError as exc:
        print(f"curl-rl zoo: error: {exc}", file=sys.stderr)
        return 2
    return zoo_main(arguments)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``curl-rl``.

    :param argv: arguments (default ``sys.argv[1:]``).
    :return: the exit code.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["zoo"]:
        return _zoo(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        return _COMMANDS[args.command](args)
    except UsageError as exc:
        print(f"curl-rl {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
