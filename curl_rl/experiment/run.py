"""One training run: build the envs and the model, attach the callbacks, fill the run folder.

Run folder (``runs/<experiment>/<arm>/seed<N>/``), the contract :mod:`curl_rl.results.summary` reads::

    status.json        {"status": "running"|"done"|"failed"|"interrupted", "error", "arm", "seed",
                        "algo", "env", "total_timesteps", "env_steps", "wall_time_s", "steps_per_s", ...}
    config.yaml        the full resolved config (preset, algo hyperparameters, AuxConfig, versions)
    evaluations.csv    timesteps,mean_return,std_return,n_episodes (row 0 = the untrained policy)
    aux_metrics.csv    timesteps,aux/...,aux/probe_r2
    tb/<ALGO>_1/       TensorBoard events
    model.zip          the final model
    checkpoints/       periodic checkpoints and the one saved on Ctrl-C (see curl_rl.experiment.checkpoint)

:func:`run_single` is a plain top-level function of picklable arguments so that the same code runs
in the ``train`` command, in ``compare``'s worker processes and as a Ray task.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from curl_rl.algos import ALGOS
from curl_rl.algos.performance import PerformanceConfig, resolve_auto
from curl_rl.experiment import checkpoint as _checkpoint
from curl_rl.experiment.callbacks import (
    AugmentationGridCallback,
    AuxMetricsWriter,
    EmbeddingProjectorCallback,
    EvaluationCallback,
    EvalVideoCallback,
    HParamsCallback,
    ProgressBarCallback,
    aux_metric_tags,
)
from curl_rl.experiment.config import (
    ExperimentConfig,
    TensorBoardSettings,
    UsageError,
    algo_parameters,
    envs_api,
    plain,
)
from curl_rl.experiment.determinism import versions
from curl_rl.experiment.lock import FolderLock, FolderLocked
from curl_rl.results.probe import ProbeData, RepresentationProbe, collect_probe_frames
from curl_rl.results.summary import read_status_file

__all__ = [
    "RunResult",
    "RunSpec",
    "build_model",
    "check_runs_buildable",
    "read_status",
    "run_single",
    "run_single_safe",
    "versions",
    "write_status",
]

#: seed offsets (on top of the env API's evaluation offset), so that the probe's and the video's
#: episodes differ from the evaluation episodes
PROBE_SEED_OFFSET = 20_000
VIDEO_SEED_OFFSET = 30_000
#: statuses a run can have; only "done" counts as finished
STATUSES = ("running", "done", "failed", "interrupted")


@dataclass
class RunSpec:
    """Everything one run needs; picklable, so it can cross to a worker process or a Ray task.

    :param experiment_dir: ``runs/<experiment>``.
    :param arm: auxiliary preset name.
    :param seed: the run's seed.
    :param config: the experiment's resolved config.
    :param device: ``auto``, ``cpu``, ``cuda`` ...
    :param tensorboard: optional TensorBoard content.
    :param checkpoint_freq: env steps between checkpoints (0: none, but Ctrl-C still saves one).
    :param threads: ``torch.set_num_threads`` for this run (None leaves torch's default).
    :param progress: show a progress bar (only when stderr is a terminal).
    :param verbose: SB3 verbosity (1 prints SB3's tables).
    :param resume: continue from the newest checkpoint of the run folder.
    :param fail_hook: raise inside the run on purpose (tests of failure handling).
    :param folder: the run folder itself, overriding ``experiment_dir/arm/seedN`` (``--resume DIR``
        continues exactly DIR, also when it was copied or renamed).
    :param cli: how the config was asked for (stored in ``config.yaml`` so ``--resume`` can rebuild it).
    """

    experiment_dir: str
    arm: str
    seed: int
    config: ExperimentConfig
    device: str = "auto"
    tensorboard: TensorBoardSettings = field(default_factory=TensorBoardSettings)
    checkpoint_freq: int = 0
    threads: int | None = None
    progress: bool = False
    verbose: int = 0
    resume: bool = False
    fail_hook: bool = False
    cli: dict[str, Any] = field(default_factory=dict)
    folder: str | None = None

    @property
    def run_dir(self) -> Path:
        """``runs/<experiment>/<arm>/seed<N>``, or exactly ``folder`` when one was given (``--resume``)."""
        if self.folder is not None:
            return Path(self.folder)
        return Path(self.experiment_dir) / self.arm / f"seed{self.seed}"

    @property
    def name(self) -> str:
        """``<arm>/seed<N>``."""
        return f"{self.arm}/seed{self.seed}"


@dataclass
class RunResult:
    """What a finished (or failed) run reports back to the orchestrator.

    :param arm: arm name.
    :param seed: seed.
    :param status: ``done``, ``failed`` or ``interrupted``.
    :param error: the traceback of a failed run.
    :param env_steps: env steps trained.
    :param wall_time_s: seconds from start to end.
    :param steps_per_s: ``env_steps / wall_time_s``.
    :param final_return: mean return of the last evaluation.
    :param probe_r2: the last probe R².
    """

    arm: str
    seed: int
    status: str
    error: str | None = None
    env_steps: int = 0
    wall_time_s: float = 0.0
    steps_per_s: float = 0.0
    final_return: float | None = None
    probe_r2: float | None = None

    @property
    def name(self) -> str:
        return f"{self.arm}/seed{self.seed}"


# -- status.json -----------------------------------------------------------------------------------


def write_status(run_dir: Path, **values: Any) -> dict[str, Any]:
    """Update ``status.json`` atomically (temp file + ``os.replace``), merging with what is there.

    :param run_dir: the run folder.
    :param values: fields to set.
    :return: the written content.
    """
    current = read_status(run_dir) or {}
    current.update(values)
    current["updated"] = _now()
    tmp = run_dir / f".status.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(plain(current), indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / "status.json")
    return current


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """``status.json`` of a run folder, or None when missing or unreadable."""
    data, problem = read_status_file(Path(run_dir))
    return None if problem else data


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# -- building ------------------------------------------------------------------------------------


def build_model(
    config: ExperimentConfig,
    arm: str,
    env: VecEnv,
    seed: int,
    device: str = "auto",
    tensorboard_log: str | None = None,
    verbose: int = 0,
    **overrides: Any,
) -> BaseAlgorithm:
    """The curl_rl algorithm of ``config`` for one arm.

    :param config: the experiment config.
    :param arm: auxiliary preset name.
    :param env: the training env.
    :param seed: the seed.
    :param device: torch device.
    :param tensorboard_log: SB3's TensorBoard folder.
    :param verbose: SB3 verbosity.
    :param overrides: hyperparameters replacing the config's (used by the dry-run check).
    :return: the model.
    """
    cls: Any = ALGOS[config.algo]
    kwargs = {**config.model_kwargs(), **overrides}
    if isinstance(kwargs.get("action_noise"), dict):
        kwargs["action_noise"] = _action_noise(config, kwargs["action_noise"], env.action_space)
    # the device's speed switches, resolved here and passed explicitly, so every arm (none included)
    # runs the same kernels and arms differ only in their objective
    kwargs.setdefault("performance", resolve_auto(PerformanceConfig(), get_device(device)))
    return cls(
        config.policy,
        env,
        aux=config.aux_config(arm),
        routing=config.routing,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **kwargs,
    )


def _action_noise(config: ExperimentConfig, spec: dict[str, Any], space: gym.Space) -> Any:
    """An SB3 ``ActionNoise`` from a preset's ``{type, std}`` spec."""
    action_dim = int(np.prod(space.shape or (1,)))
    api = envs_api(config.envs_module)
    if hasattr(api, "make_action_noise"):
        return api.make_action_noise(spec, action_dim)
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    sigma = float(spec.get("std", 0.1)) * np.ones(action_dim)
    if spec.get("type", "normal") == "ornstein-uhlenbeck":
        return OrnsteinUhlenbeckActionNoise(mean=np.zeros(action_dim), sigma=sigma)
    return NormalActionNoise(mean=np.zeros(action_dim), sigma=sigma)


def _check_action_space(algo: str, space: gym.Space, env_name: str) -> None:
    discrete = isinstance(space, gym.spaces.Discrete)
    if algo == "dqn" and not discrete:
        raise UsageError(
            f"dqn needs discrete actions, but env {env_name!r} has {space}; use ppo, a2c, sac or td3, "
            "or a discrete variant of the env"
        )
    if algo in ("sac", "td3") and not isinstance(space, gym.spaces.Box):
        raise UsageError(
            f"{algo} needs continuous (Box) actions, but env {env_name!r} has {space}; use ppo, a2c or dqn, "
            "or a continuous variant of the env"
        )


def check_runs_buildable(config: ExperimentConfig, arms: list[str], device: str = "auto") -> dict[str, Any]:
    """Dry run before anything starts: build the env once and every arm's model on it.

    Catches incompatible algo/env pairs, bad hyperparameters and aux settings the observation
    space cannot take, with the error in the main process instead of in every worker.

    :param config: the experiment config.
    :param arms: the arms to check.
    :param device: the requested device (checked for availability).
    :return: facts about the env: ``observation_shape``, ``obs_bytes``, ``action_space``, ``has_state``.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for but CUDA is not available; use auto or cpu")
    for arm in arms:
        config.aux_config(arm)  # bad aux values fail here, before anything is built
    api = envs_api(config.envs_module)
    try:
        env = api.make_env(config.preset, 0)
    except Exception as exc:
        raise UsageError(f"env {config.env_name!r} cannot be built with these settings: {exc}") from exc
    try:
        _check_action_space(config.algo, env.action_space, config.env_name)
        _, info = env.reset(seed=0)
        facts = {
            "observation_shape": tuple(env.observation_space.shape or ()),
            "obs_bytes": int(np.prod(env.observation_space.shape or (1,)))
            * int(np.dtype(env.observation_space.dtype or np.uint8).itemsize),
            "action_space": str(env.action_space),
            "has_state": "state" in info,
        }
    finally:
        env.close()
    small: dict[str, Any] = {}
    if "buffer_size" in algo_parameters(config.algo):
        # the dry run must not allocate the real replay buffer
        small["buffer_size"] = min(int(config.hyperparams.get("buffer_size", 1000)), 1000)
    for arm in arms:
        aux = config.aux_config(arm)  # raises UsageError with the arm's name
        vec = DummyVecEnv([lambda: api.make_env(config.preset, 0)])
        try:
            model = build_model(config, arm, vec, seed=0, device="cpu", **small)
            del model
        except UsageError:
            raise
        except Exception as exc:
            raise UsageError(f"{config.algo} with arm {arm!r} ({aux.name}) cannot be built: {exc}") from exc
        finally:
            vec.close()
    return facts


def _effective_hyperparams(model: BaseAlgorithm, algo: str) -> dict[str, Any]:
    """SB3's values after construction (defaults included); schedules and objects left out."""
    out = {}
    for name in algo_parameters(algo):
        if not hasattr(model, name):
            continue
        value = getattr(model, name)
        if isinstance(value, bool | int | float | str | tuple | list | dict) or value is None:
            out[name] = value
    return plain(out)


def _write_config(spec: RunSpec, model: BaseAlgorithm, probe_frames: int | None) -> None:
    cfg = spec.config
    sections = cfg.sections()
    content = {
        "experiment": Path(spec.experiment_dir).name,
        "run": {
            "arm": spec.arm,
            "seed": spec.seed,
            "device": spec.device,
            "resolved_device": str(model.device),
            "threads": torch.get_num_threads(),
            "checkpoint_freq": spec.checkpoint_freq,
            "host": socket.gethostname(),
            "started": _now(),
            "probe_frames": probe_frames,
        },
        "cli": spec.cli,
        **{k: v for k, v in sections.items() if k != "aux"},
        "aux": plain(getattr(model, "aux_config").to_dict()),  # noqa: B009 - every curl_rl model has it
        "aux_overrides": sections["aux"] if spec.arm != "none" else {},
        "sb3_effective": _effective_hyperparams(model, cfg.algo),
        # how the encoders compute (channels_last ...), resolved for this device
        "performance": plain(getattr(model, "performance", None)),
        "tensorboard": plain(spec.tensorboard),
        "versions": versions(),
    }
    tmp = spec.run_dir / ".config.yaml.tmp"
    tmp.write_text(yaml.safe_dump(plain(content), sort_keys=False), encoding="utf-8")
    tmp.replace(spec.run_dir / "config.yaml")


def _hparams(spec: RunSpec, model: BaseAlgorithm) -> dict[str, Any]:
    cfg = spec.config
    return {
        "arm": spec.arm,
        "seed": spec.seed,
        "env": cfg.env_name,
        "steps": cfg.steps,
        "routing": cfg.routing,
        "n_envs": cfg.n_envs,
        "policy": cfg.policy,
        "algo": {"name": cfg.algo, **_effective_hyperparams(model, cfg.algo)},
        "aux": getattr(model, "aux_config").to_dict(),  # noqa: B009
    }


def _make_render_env(spec: RunSpec) -> Callable[[], gym.Env]:
    api = envs_api(spec.config.envs_module)
    seed = spec.seed + VIDEO_SEED_OFFSET

    def make() -> gym.Env:
        try:
            return api.make_env(spec.config.preset, seed, evaluation=True, render_mode="rgb_array")
        except (TypeError, ValueError):
            # no rgb_array rendering: the video falls back to the observation frames
            return api.make_env(spec.config.preset, seed, evaluation=True)

    return make


def _collect_probe(spec: RunSpec) -> ProbeData | None:
    settings = spec.config.probe
    if not settings.enabled:
        return None
    env = envs_api(spec.config.envs_module).make_env(spec.config.preset, spec.seed + PROBE_SEED_OFFSET, evaluation=True)
    try:
        return collect_probe_frames(
            env, settings.episodes, settings.steps_per_episode, seed=spec.seed + PROBE_SEED_OFFSET
        )
    finally:
        env.close()


# -- running -------------------------------------------------------------------------------------


def run_single(spec: RunSpec) -> RunResult:
    """Train one (arm, seed) run into its run folder.

    Failures are recorded in ``status.json`` (``failed`` with the traceback) and re-raised;
    Ctrl-C saves a checkpoint tagged ``interrupted``, marks the run ``interrupted`` and re-raises
    ``KeyboardInterrupt``.

    :param spec: the run.
    :return: the result of a finished run.
    """
    # one writer per run folder: a second one (the same compare started twice) is refused here,
    # before it touches status.json, the CSVs, TensorBoard or the checkpoints
    with FolderLock(spec.run_dir, what="run"):
        return _run_single_locked(spec)


def _run_single_locked(spec: RunSpec) -> RunResult:
    if spec.threads:
        torch.set_num_threads(max(1, int(spec.threads)))
    cfg = spec.config
    run_dir = spec.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    previous = read_status(run_dir) or {}
    status_path = run_dir / "status.json"
    # a resume that fails before it trains a step must leave the run's status as it found it
    status_before = status_path.read_bytes() if spec.resume and status_path.is_file() else None
    steps_before = int(previous.get("env_steps") or 0) if spec.resume else 0
    time_before = float(previous.get("wall_time_s") or 0.0) if spec.resume else 0.0
    write_status(
        run_dir,
        status="running",
        error=None,
        arm=spec.arm,
        seed=spec.seed,
        algo=cfg.algo,
        env=cfg.env_name,
        total_timesteps=cfg.steps,
        env_steps=int(previous.get("env_steps") or 0) if spec.resume else 0,
        wall_time_s=time_before,
        steps_per_s=None,
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    closers: list[Callable[[], Any]] = []
    model: BaseAlgorithm | None = None
    evaluation: EvaluationCallback | None = None

    def elapsed() -> float:
        return time_before + time.monotonic() - start

    try:
        if spec.fail_hook:
            raise RuntimeError(f"deliberate failure of {spec.name} (test hook CURL_RL_TEST_FAIL_RUNS)")
        api = envs_api(cfg.envs_module)
        train_env = api.make_vec_env(cfg.preset, cfg.n_envs, spec.seed, vec_env_cls=DummyVecEnv)
        closers.append(train_env.close)
        # evaluation=True gives the eval envs their own seed stream (curl_rl.envs offsets it)
        eval_env = api.make_vec_env(cfg.preset, 1, spec.seed, evaluation=True, vec_env_cls=DummyVecEnv)
        closers.append(eval_env.close)
        if spec.resume:
            model, learn_kwargs = _resume_model(spec, train_env)
        else:
            model = build_model(
                cfg, spec.arm, train_env, spec.seed, spec.device, str(run_dir / "tb"), verbose=spec.verbose
            )
            learn_kwargs = {"total_timesteps": cfg.steps}
        closers.append(lambda: model.logger.close() if model is not None and model._logger is not None else None)
        probe_data = _collect_probe(spec)
        _write_config(spec, model, len(probe_data) if probe_data is not None else None)
        aux_cfg = getattr(model, "aux_config")  # noqa: B009
        aux_writer = AuxMetricsWriter(
            run_dir / "aux_metrics.csv",
            aux_metric_tags(aux_cfg, probe=cfg.probe.enabled, rl_augment=getattr(model, "_rl_augment", "none")),
        )
        closers.append(aux_writer.close)

        def on_evaluation(step: int, mean_return: float, probe_r2: float | None) -> None:
            write_status(run_dir, env_steps=step, wall_time_s=round(elapsed(), 3), last_return=mean_return)

        evaluation = EvaluationCallback(
            eval_env,
            cfg.eval_freq,
            cfg.eval_episodes,
            run_dir / "evaluations.csv",
            probe=RepresentationProbe(probe_data, cfg.probe.alpha, cfg.probe.held_out_fraction)
            if probe_data is not None and len(probe_data) >= 4
            else None,
            aux_writer=aux_writer,
            on_evaluation=on_evaluation,
        )
        final = evaluation

        callbacks: list[BaseCallback] = [evaluation]
        tb = spec.tensorboard
        if tb.images_every > 0:
            callbacks.append(AugmentationGridCallback(tb.images_every, tb.images_n))
        callbacks.append(
            HParamsCallback(
                _hparams(spec, model),
                final_values=lambda: {"mean_return": final.last_mean_return, "probe_r2": final.last_probe_r2},
            )
        )
        if tb.embeddings and probe_data is not None:
            callbacks.append(EmbeddingProjectorCallback(probe_data))
        if tb.video:
            callbacks.append(EvalVideoCallback(_make_render_env(spec), max_frames=tb.video_frames))
        if spec.checkpoint_freq > 0:
            callbacks.append(_checkpoint.CheckpointCallback(run_dir, spec.checkpoint_freq))
        progress = ProgressBarCallback(cfg.steps, enabled=spec.progress and sys.stderr.isatty())
        callbacks.append(progress)
        closers.append(progress.close)

        model.learn(callback=CallbackList(callbacks), progress_bar=False, **learn_kwargs)
        model.save(run_dir / "model.zip")
        wall = elapsed()
        steps = int(model.num_timesteps)
        result = RunResult(
            arm=spec.arm,
            seed=spec.seed,
            status="done",
            env_steps=steps,
            wall_time_s=wall,
            steps_per_s=steps / wall if wall > 0 else 0.0,
            final_return=evaluation.last_mean_return,
            probe_r2=evaluation.last_probe_r2,
        )
        write_status(
            run_dir,
            status="done",
            env_steps=steps,
            wall_time_s=round(wall, 3),
            steps_per_s=round(result.steps_per_s, 3),
            final_return=result.final_return,
            probe_r2=result.probe_r2,
            finished=_now(),
        )
        return result
    except KeyboardInterrupt:
        where = _save_interrupted(model, run_dir)
        steps = int(model.num_timesteps) if model is not None else 0
        write_status(
            run_dir,
            status="interrupted",
            error=f"interrupted by the user (Ctrl-C); checkpoint: {where}" if where else "interrupted by the user",
            env_steps=steps,
            wall_time_s=round(elapsed(), 3),
            checkpoint=where,
        )
        raise
    except BaseException as exc:
        advanced = model is not None and int(model.num_timesteps) > steps_before
        if status_before is not None and not advanced:
            tmp = run_dir / f".status.json.{os.getpid()}.restore"
            tmp.write_bytes(status_before)
            tmp.replace(status_path)  # nothing was trained: the run is as it was
            raise
        write_status(
            run_dir,
            status="failed",
            error="".join(traceback.format_exception(exc)),
            env_steps=int(model.num_timesteps) if model is not None else steps_before,
            wall_time_s=round(elapsed(), 3),
        )
        raise
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception:
                pass


def _resume_model(spec: RunSpec, env: VecEnv) -> tuple[BaseAlgorithm, dict[str, Any]]:
    run_dir = spec.run_dir
    if _checkpoint.latest_checkpoint(run_dir) is None:
        raise UsageError(f"{run_dir} has no checkpoint to resume from")
    try:
        # a run folder: its newest checkpoint that loads (a damaged one gives way, with a warning)
        model = _checkpoint.load_checkpoint(run_dir, env, device=spec.device)
    except _checkpoint.NoLoadableCheckpoint as exc:
        raise UsageError(str(exc)) from None
    step = int(model.num_timesteps)
    # the resumed run writes the rows after the checkpoint again
    for name in ("evaluations.csv", "aux_metrics.csv"):
        _checkpoint.drop_csv_rows_after_step(run_dir / name, step)
    kwargs = _checkpoint.resume_learn_kwargs(model, run_dir, total_timesteps=spec.config.steps)
    return model, kwargs


def _save_interrupted(model: BaseAlgorithm | None, run_dir: Path) -> str | None:
    """Save the model after Ctrl-C; returns the path (relative to the run folder) or None."""
    if model is None:
        return None
    try:
        path = _checkpoint.save_checkpoint(model, run_dir, tag="interrupted", overwrite=True)
    except Exception:
        # a model interrupted mid-update may hold NaN/partial state; fall back to SB3's plain save
        try:
            path = run_dir / "checkpoints" / "interrupted.zip"
            path.parent.mkdir(exist_ok=True)
            model.save(path)
        except Exception:
            return None
    return str(Path(path).relative_to(run_dir))


def run_single_safe(spec: RunSpec) -> RunResult:
    """:func:`run_single` that never raises an ``Exception``: a failure becomes a ``failed`` result.

    Used by ``compare``'s workers, so one failing run does not stop the others. ``KeyboardInterrupt``
    still propagates.

    :param spec: the run.
    :return: the result.
    """
    start = time.monotonic()
    try:
        return run_single(spec)
    except FolderLocked as exc:
        # another writer owns the folder: leave its status alone
        return RunResult(
            arm=spec.arm, seed=spec.seed, status="failed", error=str(exc), wall_time_s=time.monotonic() - start
        )
    except Exception as exc:
        error = "".join(traceback.format_exception(exc))
        try:
            status = read_status(spec.run_dir) or {}
            if status.get("status") != "failed":
                spec.run_dir.mkdir(parents=True, exist_ok=True)
                write_status(spec.run_dir, status="failed", error=error, arm=spec.arm, seed=spec.seed)
        except OSError:
            pass
        return RunResult(
            arm=spec.arm, seed=spec.seed, status="failed", error=error, wall_time_s=time.monotonic() - start
        )
