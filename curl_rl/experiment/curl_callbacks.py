"""Everything ``curl-rl train`` logs, as one callback for the Python API.

``model.learn(n, callback=CurlCallbacks(eval_env))`` writes what a CLI run writes next to the
TensorBoard events: ``evaluations.csv`` (step 0, every ``eval_freq`` steps, the end),
``aux_metrics.csv``, ``eval/*`` and (with ``probe_env``) ``aux/probe_r2`` at every evaluation, the
anchor/positive image grid, and the run's hyperparameters with its final return in TensorBoard's
HParams tab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from curl_rl.experiment.callbacks import (
    AuxMetricsWriter,
    EvaluationCallback,
    aux_metric_tags,
    run_logging_callbacks,
)
from curl_rl.experiment.config import plain
from curl_rl.results.probe import RepresentationProbe, collect_probe_frames

__all__ = ["CurlCallbacks"]


class CurlCallbacks(BaseCallback):
    """Evaluation, the representation probe, the aux CSV, image grids and HParams in one callback.

    :param eval_env: the evaluation env (a gymnasium env or a VecEnv with one env; its own seed).
    :param eval_freq: env steps between evaluations.
    :param n_episodes: episodes per evaluation.
    :param log_dir: where the CSVs go; None: the model's TensorBoard folder (``tensorboard_log``),
        else the working directory.
    :param probe_env: an env whose ``info["state"]`` holds the ground truth; frames of random
        episodes from it are collected once and probed at every evaluation (None: no probe).
    :param probe_episodes: random episodes collected for the probe.
    :param images_every: gradient updates between image grids (0: none).
    """

    def __init__(
        self,
        eval_env: Any,
        eval_freq: int = 10_000,
        n_episodes: int = 5,
        log_dir: str | Path | None = None,
        probe_env: Any = None,
        probe_episodes: int = 50,
        images_every: int = 1000,
    ) -> None:
        super().__init__()
        if eval_freq < 1 or n_episodes < 1:
            raise ValueError("eval_freq and n_episodes must be >= 1")
        self.eval_env: VecEnv = eval_env if isinstance(eval_env, VecEnv) else DummyVecEnv([lambda: eval_env])
        self.eval_freq, self.n_episodes = int(eval_freq), int(n_episodes)
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.probe_env, self.probe_episodes = probe_env, int(probe_episodes)
        self.images_every = int(images_every)
        self.evaluation: EvaluationCallback | None = None
        self.aux_writer: AuxMetricsWriter | None = None
        self._children = CallbackList([])

    def _folder(self) -> Path:
        if self.log_dir is not None:
            return self.log_dir
        logged = getattr(self.model.logger, "dir", None)
        return Path(logged) if logged else Path.cwd()

    def _init_callback(self) -> None:
        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        model = self.model
        aux_config = getattr(model, "aux_config", None)
        probe = None
        if self.probe_env is not None:
            data = collect_probe_frames(self.probe_env, self.probe_episodes, steps_per_episode=20, seed=0)
            probe = RepresentationProbe(data) if data is not None and len(data) >= 4 else None
        if aux_config is not None:
            tags = aux_metric_tags(
                aux_config, probe=probe is not None, rl_augment=getattr(model, "_rl_augment", "none")
            )
            self.aux_writer = AuxMetricsWriter(folder / "aux_metrics.csv", tags)
        self.evaluation = EvaluationCallback(
            self.eval_env,
            self.eval_freq,
            self.n_episodes,
            folder / "evaluations.csv",
            probe=probe,
            aux_writer=self.aux_writer,
        )
        hparams = {
            "algo": type(model).__name__,
            "aux": plain(aux_config.to_dict()) if aux_config is not None else "none",
        }
        images_every = self.images_every if aux_config is not None else 0
        self._children = CallbackList(run_logging_callbacks(self.evaluation, hparams, images_every))
        self._children.init_callback(model)

    def _on_training_start(self) -> None:
        self._children.on_training_start(self.locals, self.globals)

    def _on_rollout_start(self) -> None:
        self._children.on_rollout_start()

    def _on_step(self) -> bool:
        return self._children.on_step()

    def _on_rollout_end(self) -> None:
        self._children.on_rollout_end()

    def _on_training_end(self) -> None:
        self._children.on_training_end()
        if self.aux_writer is not None:
            self.aux_writer.close()

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        self._children.update_locals(locals_)
