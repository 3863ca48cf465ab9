"""One training run, in named phases: the same code for ``train``, ``compare``'s workers and Ray.

:class:`Run` follows RL Zoo's ExperimentManager: each phase is one method, called in this order by
:meth:`Run.execute` — ``start`` (take the folder, mark it running), ``make_envs``, ``make_model``
(new, or resumed from the newest checkpoint), ``record`` (probe frames, ``config.yaml``, the aux
CSV), ``make_callbacks``, ``train``, ``finish`` (save, mark done); a failure or Ctrl-C ends in
``mark_failed`` / ``mark_interrupted``, and ``close`` always runs.

Run folder (``runs/<experiment>/<arm>/seed<N>/``), the contract :mod:`curl_rl.results.summary` reads::

    status.json        {"status": "running"|"done"|"failed"|"interrupted", "error", "arm", "seed",
                        "algo", "env", "total_timesteps", "env_steps", "wall_time_s", "steps_per_s", ...}
    config.yaml        the full resolved config (preset, algo hyperparameters, AuxConfig, versions)
    evaluations.csv    timesteps,mean_return,std_return,n_episodes (row 0 = the untrained policy)
    aux_metrics.csv    timesteps,aux/...,aux/probe_r2
    tb/<ALGO>_1/       TensorBoard events
    model.zip          the final model
    checkpoints/       periodic checkpoints and the one saved on Ctrl-C (see curl_rl.experiment.checkpoint)

:func:`run_single` is a plain top-level function of picklable arguments so that it can be sent to
a worker process or a Ray task.
"""

from __future__ import annotations

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
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from curl_rl.envs import make_env, make_vec_env
from curl_rl.experiment import checkpoint as _checkpoint
from curl_rl.experiment.build import build_model, check_runs_buildable, effective_hyperparams
from curl_rl.experiment.callbacks import (
    AuxMetricsWriter,
    EmbeddingProjectorCallback,
    EvaluationCallback,
    EvalVideoCallback,
    ProgressBarCallback,
    aux_metric_tags,
    run_logging_callbacks,
)
from curl_rl.experiment.config import ExperimentConfig, TensorBoardSettings, UsageError, plain
from curl_rl.experiment.determinism import versions
from curl_rl.experiment.lock import FolderLock, FolderLocked
from curl_rl.experiment.resume_overrides import apply_resume_overrides
from curl_rl.experiment.status import STATUSES, now, read_status, write_status
from curl_rl.results.probe import ProbeData, RepresentationProbe, collect_probe_frames

__all__ = [
    "STATUSES",
    "Run",
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


@dataclass
class RunSpec:
    """Everything one run needs; picklable, so it can cross to a worker process or a Ray task.

    :param experiment_dir: ``runs/<experiment>``.
    :param arm: auxiliary preset name.
    :param seed: the run's seed.
    :param config: the experiment's resolved config.
    :param device: ``auto``, ``cpu``, ``cuda`` ...
    :param tensorboard: optional TensorBoard content.
    :param checkpoint_freq: env steps between checkpoints (0: none by steps; Ctrl-C still saves one).
    :param checkpoint_minutes: also checkpoint after this many minutes of wall time (0: never by time).
    :param threads: ``torch.set_num_threads`` for this run (None leaves torch's default).
    :param progress: show a progress bar (only when stderr is a terminal).
    :param verbose: SB3 verbosity (1 prints SB3's tables).
    :param resume: continue from the newest checkpoint of the run folder.
    :param folder: the run folder itself, overriding ``experiment_dir/arm/seedN`` (``--resume DIR``
        continues exactly DIR, also when it was copied or renamed).
    :param cli: how the config was asked for (stored in ``config.yaml`` so ``--resume`` can rebuild it).
    :param resume_overrides: ``(key, value)`` settings a resumed run changes in the loaded model
        (:data:`curl_rl.experiment.resume_overrides.SAFE_ON_RESUME`).
    """

    experiment_dir: str
    arm: str
    seed: int
    config: ExperimentConfig
    device: str = "auto"
    tensorboard: TensorBoardSettings = field(default_factory=TensorBoardSettings)
    checkpoint_freq: int = 0
    checkpoint_minutes: float = 0.0
    threads: int | None = None
    progress: bool = False
    verbose: int = 0
    resume: bool = False
    cli: dict[str, Any] = field(default_factory=dict)
    folder: str | None = None
    resume_overrides: list[tuple[str, Any]] = field(default_factory=list)

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


# -- what a run writes besides status.json -------------------------------------------------------------


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
            "checkpoint_minutes": spec.checkpoint_minutes,
            "host": socket.gethostname(),
            "started": now(),
            "probe_frames": probe_frames,
        },
        "cli": spec.cli,
        **{k: v for k, v in sections.items() if k != "aux"},
        "aux": plain(getattr(model, "aux_config").to_dict()),  # noqa: B009 - every curl_rl model has it
        "aux_overrides": sections["aux"] if spec.arm != "none" else {},
        "sb3_effective": effective_hyperparams(model, cfg.algo),
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
        "algo": {"name": cfg.algo, **effective_hyperparams(model, cfg.algo)},
        "aux": getattr(model, "aux_config").to_dict(),  # noqa: B009
    }


def _make_render_env(spec: RunSpec) -> Callable[[], gym.Env]:
    seed = spec.seed + VIDEO_SEED_OFFSET

    def make() -> gym.Env:
        try:
            return make_env(spec.config.preset, seed, evaluation=True, render_mode="rgb_array")
        except (TypeError, ValueError):
            # no rgb_array rendering: the video falls back to the observation frames
            return make_env(spec.config.preset, seed, evaluation=True)

    return make


def _collect_probe(spec: RunSpec) -> ProbeData | None:
    settings = spec.config.probe
    if not settings.enabled:
        return None
    env = make_env(spec.config.preset, spec.seed + PROBE_SEED_OFFSET, evaluation=True)
    try:
        return collect_probe_frames(
            env, settings.episodes, settings.steps_per_episode, seed=spec.seed + PROBE_SEED_OFFSET
        )
    finally:
        env.close()


# -- the run ----------------------------------------------------------------------------------------


class Run:
    """One (arm, seed) run in named phases; :meth:`execute` calls them in order.

    Failures are recorded in ``status.json`` (``failed`` with the traceback) and re-raised; Ctrl-C
    saves a checkpoint tagged ``interrupted``, marks the run ``interrupted`` and re-raises
    ``KeyboardInterrupt``. A resume that fails before training a step leaves ``status.json`` as it
    found it.

    :param spec: the run.
    """

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.config = spec.config
        self.run_dir = spec.run_dir
        self.model: BaseAlgorithm | None = None
        self.train_env: VecEnv | None = None
        self.eval_env: VecEnv | None = None
        self.evaluation: EvaluationCallback | None = None
        self.probe_data: ProbeData | None = None
        self.aux_writer: AuxMetricsWriter | None = None
        self.learn_kwargs: dict[str, Any] = {}
        self._closers: list[Callable[[], Any]] = []
        self._start = time.monotonic()
        self._time_before = 0.0
        self._steps_before = 0
        self._status_before: bytes | None = None

    def execute(self) -> RunResult:
        """Take the run folder and run every phase.

        :return: the result of a finished run.
        """
        # one writer per run folder: a second one (the same compare started twice) is refused here,
        # before it touches status.json, the CSVs, TensorBoard or the checkpoints
        with FolderLock(self.run_dir, what="run"):
            self.start()
            try:
                self.make_envs()
                self.make_model()
                self.record()
                self.train(self.make_callbacks())
                return self.finish()
            except KeyboardInterrupt:
                self.mark_interrupted()
                raise
            except BaseException as exc:
                self.mark_failed(exc)
                raise
            finally:
                self.close()

    def elapsed(self) -> float:
        """Training wall time, earlier sessions of a resumed run included."""
        return self._time_before + time.monotonic() - self._start

    # -- phases -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Create the folder and mark the run ``running`` (keeping a resumed run's steps and time)."""
        spec, cfg = self.spec, self.config
        if spec.threads:
            torch.set_num_threads(max(1, int(spec.threads)))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._start = time.monotonic()
        previous = read_status(self.run_dir) or {}
        status_path = self.run_dir / "status.json"
        if spec.resume:
            self._status_before = status_path.read_bytes() if status_path.is_file() else None
            self._steps_before = int(previous.get("env_steps") or 0)
            self._time_before = float(previous.get("wall_time_s") or 0.0)
        write_status(
            self.run_dir,
            status="running",
            error=None,
            arm=spec.arm,
            seed=spec.seed,
            algo=cfg.algo,
            env=cfg.env_name,
            total_timesteps=cfg.steps,
            env_steps=self._steps_before,
            wall_time_s=self._time_before,
            steps_per_s=None,
            pid=os.getpid(),
            host=socket.gethostname(),
        )

    def make_envs(self) -> None:
        """The training envs and one evaluation env (with its own seed stream)."""
        cfg, seed = self.config, self.spec.seed
        self.train_env = make_vec_env(cfg.preset, cfg.n_envs, seed, vec_env_cls=DummyVecEnv)
        self._closers.append(self.train_env.close)
        self.eval_env = make_vec_env(cfg.preset, 1, seed, evaluation=True, vec_env_cls=DummyVecEnv)
        self._closers.append(self.eval_env.close)

    def make_model(self) -> None:
        """A new model, or (``resume``) the newest loadable checkpoint and the learn() arguments to go on."""
        spec, env = self.spec, self.train_env
        assert env is not None, "make_envs runs first"
        if spec.resume:
            self.model, self.learn_kwargs = _resume_model(spec, env)
        else:
            self.model = build_model(
                self.config, spec.arm, env, spec.seed, spec.device, str(self.run_dir / "tb"), verbose=spec.verbose
            )
            self.learn_kwargs = {"total_timesteps": self.config.steps}
        model = self.model
        self._closers.append(lambda: model.logger.close() if model._logger is not None else None)

    def record(self) -> None:
        """Probe frames, ``config.yaml`` and the aux-metrics CSV (its columns depend on the model)."""
        model, cfg = self.model, self.config
        assert model is not None, "make_model runs first"
        self.probe_data = _collect_probe(self.spec)
        _write_config(self.spec, model, len(self.probe_data) if self.probe_data is not None else None)
        aux_cfg = getattr(model, "aux_config")  # noqa: B009 - every curl_rl model has it
        self.aux_writer = AuxMetricsWriter(
            self.run_dir / "aux_metrics.csv",
            aux_metric_tags(aux_cfg, probe=cfg.probe.enabled, rl_augment=getattr(model, "_rl_augment", "none")),
        )
        self._closers.append(self.aux_writer.close)

    def make_callbacks(self) -> CallbackList:
        """Evaluation (with the probe), TensorBoard extras, checkpoints and the progress bar."""
        spec, cfg, model = self.spec, self.config, self.model
        assert model is not None and self.eval_env is not None, "make_envs and make_model run first"
        run_dir, probe_data = self.run_dir, self.probe_data

        def on_evaluation(step: int, mean_return: float, probe_r2: float | None) -> None:
            write_status(run_dir, env_steps=step, wall_time_s=round(self.elapsed(), 3), last_return=mean_return)

        evaluation = self.evaluation = EvaluationCallback(
            self.eval_env,
            cfg.eval_freq,
            cfg.eval_episodes,
            run_dir / "evaluations.csv",
            probe=RepresentationProbe(probe_data, cfg.probe.alpha, cfg.probe.held_out_fraction)
            if probe_data is not None and len(probe_data) >= 4
            else None,
            aux_writer=self.aux_writer,
            on_evaluation=on_evaluation,
        )
        tb = spec.tensorboard
        callbacks = run_logging_callbacks(evaluation, _hparams(spec, model), tb.images_every, tb.images_n)
        if tb.embeddings and probe_data is not None:
            callbacks.append(EmbeddingProjectorCallback(probe_data))
        if tb.video:
            callbacks.append(EvalVideoCallback(_make_render_env(spec), max_frames=tb.video_frames))
        if spec.checkpoint_freq > 0 or spec.checkpoint_minutes > 0:
            callbacks.append(
                _checkpoint.CheckpointCallback(
                    run_dir, spec.checkpoint_freq, save_every_s=60.0 * spec.checkpoint_minutes or None
                )
            )
        progress = ProgressBarCallback(cfg.steps, enabled=spec.progress and sys.stderr.isatty())
        callbacks.append(progress)
        self._closers.append(progress.close)
        return CallbackList(callbacks)

    def train(self, callbacks: CallbackList) -> None:
        """SB3's ``learn()``, then the final model into ``model.zip``."""
        assert self.model is not None, "make_model runs first"
        self.model.learn(callback=callbacks, progress_bar=False, **self.learn_kwargs)
        with _checkpoint.interrupts_held():  # a stop inside the zip writer would fail a finished run
            self.model.save(self.run_dir / "model.zip")

    def finish(self) -> RunResult:
        """Mark the run ``done`` with its steps, time and last evaluation."""
        assert self.model is not None and self.evaluation is not None, "train runs first"
        wall = self.elapsed()
        steps = int(self.model.num_timesteps)
        result = RunResult(
            arm=self.spec.arm,
            seed=self.spec.seed,
            status="done",
            env_steps=steps,
            wall_time_s=wall,
            steps_per_s=steps / wall if wall > 0 else 0.0,
            final_return=self.evaluation.last_mean_return,
            probe_r2=self.evaluation.last_probe_r2,
        )
        write_status(
            self.run_dir,
            status="done",
            env_steps=steps,
            wall_time_s=round(wall, 3),
            steps_per_s=round(result.steps_per_s, 3),
            final_return=result.final_return,
            probe_r2=result.probe_r2,
            finished=now(),
        )
        return result

    # -- endings ------------------------------------------------------------------------------------

    def mark_interrupted(self) -> None:
        """After Ctrl-C: save a checkpoint tagged ``interrupted`` and say where it is."""
        where = _save_interrupted(self.model, self.run_dir)
        write_status(
            self.run_dir,
            status="interrupted",
            error=f"interrupted by the user (Ctrl-C); checkpoint: {where}" if where else "interrupted by the user",
            env_steps=int(self.model.num_timesteps) if self.model is not None else 0,
            wall_time_s=round(self.elapsed(), 3),
            checkpoint=where,
        )

    def mark_failed(self, exc: BaseException) -> None:
        """Record the traceback, or restore a resumed run's status when nothing was trained."""
        advanced = self.model is not None and int(self.model.num_timesteps) > self._steps_before
        if self._status_before is not None and not advanced:
            tmp = self.run_dir / f".status.json.{os.getpid()}.restore"
            tmp.write_bytes(self._status_before)
            tmp.replace(self.run_dir / "status.json")  # nothing was trained: the run is as it was
            return
        write_status(
            self.run_dir,
            status="failed",
            error="".join(traceback.format_exception(exc)),
            env_steps=int(self.model.num_timesteps) if self.model is not None else self._steps_before,
            wall_time_s=round(self.elapsed(), 3),
        )

    def close(self) -> None:
        """Close envs, writers and the logger, newest first; a failing close does not hide the run's end."""
        for close in reversed(self._closers):
            try:
                close()
            except Exception:
                pass
        self._closers.clear()


def run_single(spec: RunSpec) -> RunResult:
    """Train one (arm, seed) run into its run folder (:class:`Run`).

    :param spec: the run.
    :return: the result of a finished run.
    """
    return Run(spec).execute()


def _resume_model(spec: RunSpec, env: VecEnv) -> tuple[BaseAlgorithm, dict[str, Any]]:
    run_dir = spec.run_dir
    if _checkpoint.latest_checkpoint(run_dir) is None:
        raise UsageError(f"{run_dir} has no checkpoint to resume from")
    try:
        # a run folder: its newest checkpoint that loads (a damaged one gives way, with a warning)
        model = _checkpoint.load_checkpoint(run_dir, env, device=spec.device)
    except _checkpoint.NoLoadableCheckpoint as exc:
        raise UsageError(str(exc)) from None
    apply_resume_overrides(model, spec.resume_overrides)
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
    # On-policy weights do not change while a rollout is collected: Ctrl-C in the middle of one
    # leaves the weights of its start, so the checkpoint is labelled with that step. The resumed run
    # collects the rollout again and keeps the uninterrupted run's step grid (rollouts, evaluations,
    # logs at the same steps, the same total) instead of one shifted by the part-rollout.
    collected = _part_rollout_steps(model)
    model.num_timesteps -= collected
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
    finally:
        model.num_timesteps += collected
    return str(Path(path).relative_to(run_dir))


def _part_rollout_steps(model: BaseAlgorithm) -> int:
    """Env steps of an on-policy rollout being collected (0 between rollouts, during train(), off-policy)."""
    buffer = getattr(model, "rollout_buffer", None)
    start = getattr(model, "rollout_start_step", None)
    if not isinstance(model, OnPolicyAlgorithm) or buffer is None or buffer.full or start is None:
        return 0
    return max(int(model.num_timesteps) - int(start), 0)


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
