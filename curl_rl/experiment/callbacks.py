"""SB3 callbacks of a ``curl-rl`` run: evaluation + CSV files, TensorBoard extras, progress bar.

* :class:`EvaluationCallback` evaluates the deterministic policy at step 0, every ``eval_freq``
  env steps and at the end; writes ``evaluations.csv``, logs ``eval/*`` and the representation
  probe's ``aux/probe_r2``.
* :class:`AuxMetricsWriter` is an SB3 logger output that copies every dumped ``aux/*`` value into
  ``aux_metrics.csv`` (one row per logger dump, columns fixed up front).
* :class:`AugmentationGridCallback`, :class:`HParamsCallback`, :class:`EmbeddingProjectorCallback`
  and :class:`EvalVideoCallback` add TensorBoard content next to SB3's scalars.
* :class:`ProgressBarCallback` shows steps/s and the recent training return.

Everything that draws random numbers for logging (replay samples, augmentations for the image
grid) saves and restores the RNG state it touches, so turning a TensorBoard extra on or off never
changes what the agent trains on.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import KVWriter, Logger, TensorBoardOutputFormat
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from curl_rl.auxiliary.augmentations import infer_frame_channels
from curl_rl.auxiliary.config import AuxConfig
from curl_rl.results.probe import ProbeData, RepresentationProbe, embed_observations

__all__ = [
    "EVAL_HEADER",
    "AugmentationGridCallback",
    "AuxMetricsWriter",
    "EmbeddingProjectorCallback",
    "EvalVideoCallback",
    "EvaluationCallback",
    "HParamsCallback",
    "ProgressBarCallback",
    "aux_metric_tags",
    "tensorboard_writer",
]

#: header of ``evaluations.csv`` (the contract ``curl_rl.results.summary`` reads)
EVAL_HEADER = ("timesteps", "mean_return", "std_return", "n_episodes")
PROBE_TAG = "aux/probe_r2"

_INFONCE_METRICS = ("loss", "accuracy", "pos_sim", "neg_sim", "gap")


def aux_metric_tags(config: AuxConfig, probe: bool = True, rl_augment: str = "none") -> list[str]:
    """The ``aux/*`` scalars an arm logs, in a stable order (the columns of ``aux_metrics.csv``).

    Mirrors what :class:`curl_rl.algos.aux_mixin.AuxAlgorithmMixin` records (minus aliases),
    so the CSV header can be written before training starts; TensorBoard gets every tag.

    :param config: the arm's resolved auxiliary config.
    :param probe: include ``aux/probe_r2`` (every arm, ``none`` included, gets the probe).
    :param rl_augment: the model's resolved RL-augmentation mode ("drac" logs its regularisers).
    :return: tag names.
    """
    tags: list[str] = []
    if config.has_loss:
        # aux/weight (a schedule, in TensorBoard) and aux/instance/{accuracy,gap,embedding_std}
        # (logged again as aux/accuracy ...) are left out: the CSV feeds the summary's figure
        tags += ["aux/loss", "aux/key_distance"]
        if config.instance != "none":
            tags += ["aux/accuracy", "aux/gap", "aux/embedding_std"]
            tags += [f"aux/instance/{m}" for m in ("loss", "pos_sim", "neg_sim")]
        if config.future != "none":
            if config.future == "temporal" or config.future_loss == "infonce":
                names: tuple[str, ...] = _INFONCE_METRICS
            else:
                names = ("loss", "pos_sim")
            tags += [f"aux/future/{m}" for m in (*names, "valid_fraction")]
        if config.nan_policy == "skip":
            tags.append("aux/skipped_updates")
    if rl_augment == "drac":
        tags += [f"aux/drac/{m}" for m in ("loss", "policy_kl", "value_gap")]
    if probe:
        tags.append(PROBE_TAG)
    return tags


def tensorboard_writer(logger: Logger | None) -> Any | None:
    """The ``SummaryWriter`` behind SB3's TensorBoard output of ``logger``, if it has one."""
    if logger is None:
        return None
    for fmt in logger.output_formats:
        if isinstance(fmt, TensorBoardOutputFormat):
            return fmt.writer
    return None


class AuxMetricsWriter(KVWriter):
    """SB3 logger output that appends the dumped ``aux/*`` values to ``aux_metrics.csv``.

    The header is fixed when the file is created (``timesteps`` then ``tags``); a dump holding
    none of the tags writes no row, and tags outside the header are ignored (the CSV stays
    rectangular for :func:`curl_rl.results.run_folders.read_numeric_csv`). Two dumps at one step
    (SB3's after the last rollout, then the final evaluation's probe) make one row: the later dump
    fills the cells the earlier one left empty.

    :param path: the CSV file; an existing file with the same header is appended to.
    :param tags: the columns after ``timesteps``.
    """

    def __init__(self, path: Path, tags: Sequence[str]) -> None:
        self.path = Path(path)
        self.tags = list(tags)
        header = ["timesteps", *self.tags]
        if self.path.exists():
            with self.path.open(encoding="utf-8") as fh:
                existing = fh.readline().strip().split(",")
            if existing != header:
                raise ValueError(f"{self.path} has columns {existing}, expected {header}; cannot append")
            self._file = self.path.open("ab")
        else:
            self._file = self.path.open("wb")
            self._file.write((",".join(header) + "\n").encode())
            self._file.flush()
        self._last_step: int | None = None
        self._last_cells: list[str] = []
        self._last_offset = 0

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        values = [key_values.get(tag) for tag in self.tags]
        if all(v is None for v in values):
            return
        cells = ["" if v is None else _number(v) for v in values]
        if step == self._last_step:
            # one row per step: rewrite the last row with the new cells filled in
            cells = [old or new for old, new in zip(self._last_cells, cells, strict=True)]
            self._file.truncate(self._last_offset)
            self._file.seek(self._last_offset)
        else:
            self._last_offset = self._file.tell()
        self._file.write((",".join([str(step), *cells]) + "\n").encode())
        self._file.flush()
        self._last_step, self._last_cells = step, cells

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return repr(number) if math.isfinite(number) else ""


class EvaluationCallback(BaseCallback):
    """Deterministic evaluation at step 0, every ``eval_freq`` env steps and at the end of training.

    Each evaluation appends a row to ``evaluations.csv`` (flushed at once), records
    ``eval/mean_reward``, ``eval/std_reward``, ``eval/mean_ep_length`` and, with a probe,
    ``aux/probe_r2``, then dumps the logger at the current step (as SB3's ``EvalCallback`` does),
    which also writes the ``aux_metrics.csv`` row through :class:`AuxMetricsWriter`.

    :param eval_env: the evaluation env (its own seed, never trained on).
    :param eval_freq: env steps between evaluations (counted over all training envs).
    :param n_episodes: episodes per evaluation.
    :param csv_path: ``evaluations.csv``.
    :param probe: representation probe run at each evaluation, or None.
    :param aux_writer: the ``aux_metrics.csv`` writer to attach to the model's logger.
    :param on_evaluation: called after each evaluation with ``(timesteps, mean_return, probe_r2)``.
    :param deterministic: act greedily.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        eval_freq: int,
        n_episodes: int,
        csv_path: Path,
        probe: RepresentationProbe | None = None,
        aux_writer: AuxMetricsWriter | None = None,
        on_evaluation: Callable[[int, float, float | None], None] | None = None,
        deterministic: bool = True,
    ) -> None:
        super().__init__()
        if eval_freq < 1 or n_episodes < 1:
            raise ValueError("eval_freq and n_episodes must be >= 1")
        self.eval_env = eval_env
        self.eval_freq = int(eval_freq)
        self.n_episodes = int(n_episodes)
        self.csv_path = Path(csv_path)
        self.probe = probe
        self.aux_writer = aux_writer
        self.on_evaluation = on_evaluation
        self.deterministic = deterministic
        self.last_eval_step = -1
        self.last_mean_return: float | None = None
        self.last_probe_r2: float | None = None
        self._next_eval = 0

    def _init_callback(self) -> None:
        if not self.csv_path.exists():
            self.csv_path.write_text(",".join(EVAL_HEADER) + "\n", encoding="utf-8")
        else:
            # a resumed run: continue after the last evaluation already on disk
            last = _last_timestep(self.csv_path)
            if last is not None:
                self.last_eval_step = int(last)

    def _on_training_start(self) -> None:
        if self.aux_writer is not None and self.aux_writer not in self.logger.output_formats:
            self.logger.output_formats.append(self.aux_writer)
        if self.last_eval_step < 0:
            self.evaluate()  # step 0: the untrained policy (a resumed run has its rows already)
        elif self.last_eval_step < (self.num_timesteps // self.eval_freq) * self.eval_freq:
            # a resumed run whose last scheduled evaluation was cut off (Ctrl-C while it ran): the
            # checkpoint holds the weights it would have scored, so score them now
            self.evaluate()
        self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_eval:
            # the last step's evaluation waits for training end, after the final update, so the
            # last row scores the weights that are saved
            if self.num_timesteps < int(getattr(self.model, "_total_timesteps", 0) or 0):
                self.evaluate()
            self._next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        return True

    def _on_training_end(self) -> None:
        if self.last_eval_step < self.num_timesteps:
            self.evaluate()

    def evaluate(self) -> float:
        """Run one evaluation now, write and log it.

        :return: the mean episode return.
        """
        if self.model.get_vec_normalize_env() is not None:
            # the eval env must see observations normalised like the training env's
            sync_envs_normalization(self.training_env, self.eval_env)
        returns, lengths = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.n_episodes,
            deterministic=self.deterministic,
            return_episode_rewards=True,
            warn=False,
        )
        episode_returns = np.atleast_1d(np.asarray(returns, dtype=np.float64))
        mean_return, std_return = float(episode_returns.mean()), float(episode_returns.std())
        step = int(self.num_timesteps)
        with self.csv_path.open("a", encoding="utf-8") as fh:
            fh.write(f"{step},{mean_return!r},{std_return!r},{episode_returns.size}\n")
        self.logger.record("eval/mean_reward", mean_return)
        self.logger.record("eval/std_reward", std_return)
        self.logger.record("eval/mean_ep_length", float(np.mean(lengths)))
        probe_value: float | None = None
        if self.probe is not None:
            probe_value = self.probe.evaluate(self.model)
            if math.isfinite(probe_value):
                self.logger.record(PROBE_TAG, probe_value)
                self.last_probe_r2 = probe_value
        self.logger.dump(step)
        self.last_eval_step = step
        self.last_mean_return = mean_return
        if self.on_evaluation is not None:
            self.on_evaluation(step, mean_return, probe_value)
        return mean_return


def _last_timestep(path: Path) -> float | None:
    last = None
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        try:
            last = float(line.split(",", 1)[0])
        except ValueError:
            continue
    return last


def last_rgb_frame(images: torch.Tensor, frame_channels: int | None = None) -> torch.Tensor:
    """The newest frame of channel-stacked images, as 3-channel images.

    :param images: ``(n, C, H, W)`` with frames stacked along C, newest last.
    :param frame_channels: channels per frame; ``None`` (a model that did not learn it from its
        env) falls back, for display only, to 3 when C divides by 3, else 1.
    :return: ``(n, 3, H, W)``, same dtype.
    """
    channels = int(images.shape[1])
    if frame_channels is None:
        frame_channels = 3 if channels % 3 == 0 else 1
    per_frame = infer_frame_channels(channels, frame_channels)
    frame = images[:, -per_frame:]
    if per_frame == 1:
        frame = frame.expand(-1, 3, -1, -1)
    elif per_frame != 3:
        frame = frame[:, :3]
    return frame


def image_grid(rows: Sequence[Sequence[NDArray[np.uint8]]], pad: int = 2) -> NDArray[np.uint8]:
    """Tile ``rows`` of same-sized ``(3, H, W)`` uint8 images into one ``(3, H', W')`` image.

    :param rows: the images, row by row (each row the same length).
    :param pad: white gap between tiles, in pixels.
    :return: the grid.
    """
    n_rows, n_cols = len(rows), len(rows[0])
    _, h, w = rows[0][0].shape
    grid = np.full((3, n_rows * (h + pad) + pad, n_cols * (w + pad) + pad), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[:, y : y + h, x : x + w] = tile
    return grid


class AugmentationGridCallback(BaseCallback):
    """Every ``every_updates`` gradient updates, log anchor / positive views as an image grid.

    The views are two independent ``model.aux_head.augment`` calls on a few stored training
    observations (rollout buffer or replay buffer), exactly what the auxiliary loss would see; the
    newest RGB frame of each stack is shown, one sample per row, anchor left, positive right.
    Does nothing for arms without an auxiliary head.

    :param every_updates: gradient updates between grids; the first grid follows the first update.
    :param n_samples: observations (rows) per grid.
    :param tag: TensorBoard image tag.
    """

    def __init__(self, every_updates: int = 1000, n_samples: int = 4, tag: str = "aux/augmentations") -> None:
        super().__init__()
        if every_updates < 1 or n_samples < 1:
            raise ValueError("every_updates and n_samples must be >= 1")
        self.every_updates = every_updates
        self.n_samples = n_samples
        self.tag = tag
        self._logged_bucket = -1
        self.n_logged = 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        # at the end of a rollout the rollout buffer is full (it is refilled with zeros during one)
        updates = int(getattr(self.model, "_n_updates", 0))
        if updates < 1 or getattr(self.model, "aux_head", None) is None:
            return
        bucket = (updates - 1) // self.every_updates
        if bucket > self._logged_bucket:
            self._logged_bucket = bucket
            self.log_grid()

    def _sample_observations(self) -> torch.Tensor | None:
        model = self.model
        rollout = getattr(model, "rollout_buffer", None)
        if rollout is not None and isinstance(getattr(rollout, "observations", None), np.ndarray):
            stored = rollout.observations
            if not rollout.full and not getattr(rollout, "generator_ready", False):
                stored = stored[: rollout.pos]
            flat = stored.reshape(-1, *rollout.obs_shape)
            if flat.shape[0] == 0:
                return None
            idx = np.linspace(0, flat.shape[0] - 1, num=min(self.n_samples, flat.shape[0])).astype(int)
            return torch.as_tensor(flat[idx], device=model.device)
        replay = getattr(model, "replay_buffer", None)
        if replay is not None and replay.size() > 0:
            state = np.random.get_state()  # noqa: NPY002 - SB3 buffers sample from the global RNG
            try:
                observations = replay.sample(self.n_samples).observations
            finally:
                np.random.set_state(state)  # noqa: NPY002
            return observations if isinstance(observations, torch.Tensor) else None
        return None

    @torch.no_grad()
    def log_grid(self) -> bool:
        """Log one grid now.

        :return: whether a grid was written (needs a TensorBoard logger and stored observations).
        """
        writer = tensorboard_writer(self.logger)
        head = getattr(self.model, "aux_head", None)
        obs = self._sample_observations()
        if writer is None or head is None or obs is None or obs.dtype != torch.uint8 or obs.ndim != 4:
            return False
        generator = head.generator
        rng_state = generator.get_state()
        try:
            anchor, positive = head.augment(obs), head.augment(obs)
        finally:
            generator.set_state(rng_state)
        frame_channels = head.config.frame_channels
        a = last_rgb_frame(anchor, frame_channels).cpu().numpy()
        p = last_rgb_frame(positive, frame_channels).cpu().numpy()
        grid = image_grid([[a[i], p[i]] for i in range(a.shape[0])])
        writer.add_image(self.tag, grid, global_step=self.num_timesteps, dataformats="CHW")
        writer.flush()
        self.n_logged += 1
        return True


def _hparam_value(value: Any) -> bool | int | float | str:
    if isinstance(value, bool | int | float | str):
        return value
    if value is None:
        return "None"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def flatten_hparams(config: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """Flatten a nested config into ``section/key`` hyperparameters TensorBoard can show.

    :param config: nested dict of settings.
    :param prefix: prepended to every key.
    :return: flat dict of scalar or string values.
    """
    out: dict[str, bool | int | float | str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_hparams(value, f"{name}/"))
        else:
            out[name] = _hparam_value(value)
    return out


class HParamsCallback(BaseCallback):
    """The run's hyperparameters and final metrics in TensorBoard's HParams tab.

    At training start the hyperparameters are written with the metric tags; TensorBoard shows,
    for each metric, the last value logged under that tag in the run, so after the final
    evaluation the table holds the final return and probe R². At training end the final values
    are also written under ``final/*`` so they are there even when the last eval was skipped.

    :param hparams: nested or flat hyperparameters (flattened with ``/``).
    :param metrics: metric tags to show, e.g. ``("eval/mean_reward", "aux/probe_r2")``.
    :param final_values: called at training end; returns ``{tag: value}`` to log under ``final/``.
    """

    def __init__(
        self,
        hparams: Mapping[str, Any],
        metrics: Sequence[str] = ("eval/mean_reward", "aux/probe_r2", "final/mean_return", "final/probe_r2"),
        final_values: Callable[[], Mapping[str, float | None]] | None = None,
    ) -> None:
        super().__init__()
        self.hparams = flatten_hparams(hparams)
        self.metrics = list(metrics)
        self.final_values = final_values
        self.written = False

    def _on_training_start(self) -> None:
        from torch.utils.tensorboard.summary import hparams

        writer = tensorboard_writer(self.logger)
        if writer is None:
            return
        experiment, start, end = hparams(self.hparams, {m: 0.0 for m in self.metrics})
        for summary in (experiment, start, end):
            writer.file_writer.add_summary(summary)
        writer.flush()
        self.written = True

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        writer = tensorboard_writer(self.logger)
        if writer is None or self.final_values is None:
            return
        for tag, value in self.final_values().items():
            if value is not None and math.isfinite(value):
                writer.add_scalar(f"final/{tag}", value, global_step=self.num_timesteps)
        writer.flush()


class EmbeddingProjectorCallback(BaseCallback):
    """At the end of training, an embedding-projector snapshot of the probe frames.

    Each point is a frame's online embedding, labelled with its ground-truth state (one metadata
    column per state dimension) and shown with a thumbnail of its newest RGB frame.

    :param data: frames with ground-truth states (the probe's frames).
    :param max_points: at most this many frames (evenly spaced) are kept.
    :param state_names: names of the state dimensions; default ``state_0 ...``.
    :param tag: projector tag.
    """

    def __init__(
        self, data: ProbeData, max_points: int = 500, state_names: Sequence[str] | None = None, tag: str = "encoder"
    ) -> None:
        super().__init__()
        self.data = data
        self.max_points = max_points
        self.state_names = list(state_names) if state_names else [f"state_{i}" for i in range(data.states.shape[1])]
        self.tag = tag
        self.written = False

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.snapshot()

    def snapshot(self) -> bool:
        """Write the projector data now.

        :return: whether it was written (needs a TensorBoard logger).
        """
        writer = tensorboard_writer(self.logger)
        if writer is None:
            return False
        n = len(self.data)
        idx = np.linspace(0, n - 1, num=min(self.max_points, n)).astype(int)
        obs = self.data.observations[idx]
        features = embed_observations(self.model, obs)
        metadata = [[f"{v:.3f}" for v in row] for row in self.data.states[idx]]
        thumbs = _thumbnails(self.model, obs)
        writer.add_embedding(
            torch.as_tensor(features, dtype=torch.float32),
            metadata=metadata,
            metadata_header=self.state_names,
            label_img=thumbs,
            global_step=self.num_timesteps,
            tag=self.tag,
        )
        writer.flush()
        self.written = True
        return True


def _thumbnails(model: Any, observations: NDArray[Any]) -> torch.Tensor | None:
    obs_tensor, _ = model.policy.obs_to_tensor(observations)
    if not isinstance(obs_tensor, torch.Tensor) or obs_tensor.ndim != 4:
        return None
    frame_channels = getattr(getattr(model, "aux_config", None), "frame_channels", None)
    return last_rgb_frame(obs_tensor, frame_channels).float().cpu() / 255.0


def encode_gif(frames: Sequence[NDArray[np.uint8]], fps: int) -> bytes:
    """Encode ``(H, W, 3)`` uint8 frames as an animated GIF (what TensorBoard plays as a video).

    :param frames: the frames.
    :param fps: frames per second.
    :return: the GIF bytes.
    """
    from PIL import Image

    images = [Image.fromarray(np.ascontiguousarray(f)) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=max(1, round(1000 / fps)), loop=0
    )
    return buffer.getvalue()


def video_summary(tag: str, frames: Sequence[NDArray[np.uint8]], fps: int) -> Any:
    """A TensorBoard image summary holding an animated GIF (shown as a video in the Images tab).

    Built by hand because ``SummaryWriter.add_video`` needs moviepy, which is not a dependency.

    :param tag: summary tag.
    :param frames: ``(H, W, 3)`` uint8 frames.
    :param fps: frames per second.
    :return: a ``Summary`` protobuf.
    """
    from tensorboard.compat.proto.summary_pb2 import Summary

    h, w = frames[0].shape[:2]
    image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=encode_gif(frames, fps))
    return Summary(value=[Summary.Value(tag=tag, image=image)])


class EvalVideoCallback(BaseCallback):
    """At the end of training, a short video of one deterministic evaluation episode.

    Frames come from ``env.render()`` when the env renders ``rgb_array``; otherwise the newest RGB
    frame of each observation is used.

    :param make_env: builds a fresh single evaluation env (``render_mode="rgb_array"`` if it can).
    :param max_frames: length cap of the video.
    :param fps: playback speed.
    :param tag: TensorBoard tag.
    """

    def __init__(
        self, make_env: Callable[[], gym.Env], max_frames: int = 200, fps: int = 15, tag: str = "eval/video"
    ) -> None:
        super().__init__()
        self.make_env = make_env
        self.max_frames = max_frames
        self.fps = fps
        self.tag = tag
        self.written = False

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.record()

    def record(self) -> bool:
        """Roll out one episode now and log it.

        :return: whether a video was written.
        """
        writer = tensorboard_writer(self.logger)
        if writer is None:
            return False
        frames = self.rollout_frames()
        if not frames:
            return False
        writer.file_writer.add_summary(video_summary(self.tag, frames, self.fps), self.num_timesteps)
        writer.flush()
        self.written = True
        return True

    def rollout_frames(self) -> list[NDArray[np.uint8]]:
        """One deterministic episode's frames (at most ``max_frames``)."""
        env = self.make_env()
        try:
            obs, _ = env.reset()
            frames = [self._frame(env, obs)]
            for _ in range(self.max_frames - 1):
                action, _ = self.model.predict(obs, deterministic=True)
                obs, _, terminated, truncated, _ = env.step(action)
                frames.append(self._frame(env, obs))
                if terminated or truncated:
                    break
        finally:
            env.close()
        return [f for f in frames if f is not None]

    def _frame(self, env: gym.Env, obs: Any) -> NDArray[np.uint8] | None:
        if getattr(env, "render_mode", None) == "rgb_array":
            frame = env.render()
            if isinstance(frame, np.ndarray) and frame.ndim == 3:
                return _upscale(frame.astype(np.uint8))
        if isinstance(obs, np.ndarray) and obs.ndim == 3:
            # channel-last (H, W, k*C) as the env returns it
            chw = torch.as_tensor(np.transpose(obs, (2, 0, 1)))[None]
            frame_channels = getattr(getattr(self.model, "aux_config", None), "frame_channels", None)
            rgb = last_rgb_frame(chw, frame_channels)[0].numpy()
            return _upscale(np.transpose(rgb, (1, 2, 0)).astype(np.uint8))
        return None


def _upscale(frame: NDArray[np.uint8], min_side: int = 128) -> NDArray[np.uint8]:
    # small pixel frames are unreadable in TensorBoard at their native size
    factor = max(1, math.ceil(min_side / max(1, min(frame.shape[:2]))))
    if factor == 1:
        return frame
    return np.ascontiguousarray(frame.repeat(factor, axis=0).repeat(factor, axis=1))


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over env steps with steps/s and the mean return of recent training episodes.

    :param total: the run's total env steps.
    :param enabled: False makes it a no-op (compare workers, non-TTY output).
    :param refresh_s: seconds between postfix updates.
    """

    def __init__(self, total: int, enabled: bool = True, refresh_s: float = 0.5) -> None:
        super().__init__()
        self.total = total
        self.enabled = enabled
        self.refresh_s = refresh_s
        self._bar: Any = None
        self._last_n = 0
        self._last_refresh = 0.0

    def _on_training_start(self) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self._last_n = int(self.num_timesteps)
        self._bar = tqdm(total=self.total, initial=self._last_n, unit="step", dynamic_ncols=True, smoothing=0.1)

    def _on_step(self) -> bool:
        if self._bar is None:
            return True
        now = int(self.num_timesteps)
        if now > self._bar.total:
            # PPO/A2C finish their last rollout past the requested total
            self._bar.total = now
        self._bar.update(now - self._last_n)
        self._last_n = now
        clock = time.monotonic()
        if clock - self._last_refresh >= self.refresh_s:
            self._last_refresh = clock
            episodes = getattr(self.model, "ep_info_buffer", None) or []
            if episodes:
                self._bar.set_postfix_str(f"return {np.mean([ep['r'] for ep in episodes]):.2f}", refresh=False)
        return True

    def _on_training_end(self) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (also called when training is interrupted)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def run_logging_callbacks(
    evaluation: EvaluationCallback, hparams: Mapping[str, Any], images_every: int, images_n: int = 4
) -> list[BaseCallback]:
    """What every run logs, the CLI's and :class:`~curl_rl.experiment.curl_callbacks.CurlCallbacks`':
    the evaluation, the anchor/positive image grid and the HParams tab with the final return and
    probe R² of that evaluation.

    :param evaluation: the run's evaluation callback (its last values fill the HParams tab).
    :param hparams: the run's hyperparameters.
    :param images_every: gradient updates between image grids (0: none).
    :param images_n: observations per grid.
    :return: the callbacks, evaluation first.
    """
    callbacks: list[BaseCallback] = [evaluation]
    if images_every > 0:
        callbacks.append(AugmentationGridCallback(images_every, images_n))
    callbacks.append(
        HParamsCallback(
            hparams,
            final_values=lambda: {"mean_return": evaluation.last_mean_return, "probe_r2": evaluation.last_probe_r2},
        )
    )
    return callbacks
