"""Atomic, periodic checkpoints of a training run, and resuming from them.

A checkpoint is a folder ``RUN_DIR/checkpoints/step_<num_timesteps:012d>[-<tag>]/`` holding

* ``model.zip``: SB3's ``save`` (policy, its optimizers, the auxiliary head with its momentum key
  encoder, queue and augmentation generator, the auxiliary optimizer, ``num_timesteps``,
  ``_n_updates``, ``_episode_num``, the learning-rate progress and the episode-info buffer);
* ``rng.pt``: Python, NumPy, torch CPU (and CUDA) generator states, the action space's and each
  sub-env's ``np_random`` (see :mod:`curl_rl.experiment.determinism`);
* ``replay_buffer.pkl`` (optional, off-policy algorithms only);
* ``meta.json``: counters, the TensorBoard folder, the logger's values not yet written, file sizes
  and library versions. It is written last.

Every checkpoint is first written to a hidden ``.tmp-*`` folder next to its final place, each file
is fsync'ed, and the folder is renamed into place (``os.replace``), so a checkpoint folder either
exists complete or not at all; a SIGKILL leaves at most a ``.tmp-*`` folder, which
:func:`latest_checkpoint` ignores and the next save removes.

Resuming (``curl-rl train --resume RUN_DIR``)::

    model = load_checkpoint(latest_checkpoint(run_dir), env)
    model.learn(callback=CheckpointCallback(run_dir, ...),
                **resume_learn_kwargs(model, run_dir, total_timesteps=total))
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import importlib
import json
import math
import os
import re
import shutil
import signal
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, TensorBoardOutputFormat, configure
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.save_util import recursive_getattr

from curl_rl.algos.step_logger import OncePerStepLogger
from curl_rl.experiment.determinism import capture_rng_state, restore_rng_state, versions

__all__ = [
    "CHECKPOINT_DIRNAME",
    "CheckpointCallback",
    "NonFiniteWeightsError",
    "checkpoints_dir",
    "drop_csv_rows_after_step",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "purge_tensorboard_events",
    "read_meta",
    "resume_learn_kwargs",
    "save_checkpoint",
    "weights_are_finite",
]

CHECKPOINT_DIRNAME = "checkpoints"
FORMAT_VERSION = 1
MODEL_FILE, RNG_FILE, META_FILE, REPLAY_FILE = "model.zip", "rng.pt", "meta.json", "replay_buffer.pkl"
_NAME = re.compile(r"^step_(\d{12})(?:-([A-Za-z0-9_.]+))?$")
_TAG = re.compile(r"^[A-Za-z0-9_.]+$")
_TMP_PREFIX = ".tmp-"
#: the signals a checkpoint write holds back (see :func:`interrupts_held`)
_HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# model -> metadata of the checkpoint it was loaded from; kept off the model itself so the next
# model.save() does not pickle it
_LOADED_FROM: weakref.WeakKeyDictionary[BaseAlgorithm, dict[str, Any]] = weakref.WeakKeyDictionary()


class NonFiniteWeightsError(FloatingPointError):
    """Raised instead of writing a checkpoint whose weights or optimizer state hold NaN/Inf."""


# -- paths -----------------------------------------------------------------------------------
def checkpoints_dir(run_dir: str | os.PathLike[str]) -> Path:
    """The folder holding a run's checkpoints.

    :param run_dir: the run folder (``runs/<experiment>/<arm>/seed<N>``), or its ``checkpoints``
        folder itself.
    :return: ``run_dir/checkpoints`` (or ``run_dir`` when it already is that folder).
    """
    path = Path(run_dir)
    return path if path.name == CHECKPOINT_DIRNAME else path / CHECKPOINT_DIRNAME


def _is_complete(path: Path) -> bool:
    meta_path = path / META_FILE
    if not (path.is_dir() and _NAME.match(path.name) and meta_path.is_file() and (path / MODEL_FILE).is_file()):
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    sizes = meta.get("file_sizes", {})
    return all((path / name).is_file() and (path / name).stat().st_size == size for name, size in sizes.items())


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Complete checkpoints of a run, oldest first (partial ``.tmp-*`` folders are ignored).

    :param run_dir: the run folder (or its ``checkpoints`` folder).
    :return: checkpoint folders sorted by step, then by save time.
    """
    folder = checkpoints_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _is_complete(p)]
    return sorted(found, key=lambda p: (_step_of(p), (p / META_FILE).stat().st_mtime_ns))


def _step_of(path: Path) -> int:
    match = _NAME.match(path.name)
    assert match is not None
    return int(match.group(1))


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The newest complete checkpoint of a run.

    :param run_dir: the run folder (or its ``checkpoints`` folder).
    :return: its folder, or ``None`` when the run has none.
    """
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


# -- saving ------------------------------------------------------------------------------------
def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - directories cannot be fsync'ed on some platforms
        pass
    finally:
        os.close(fd)


def _tensors_to_check(model: BaseAlgorithm) -> Iterable[torch.Tensor]:
    state_dicts, variables = model._get_torch_save_params()
    for name in state_dicts:
        obj = recursive_getattr(model, name)
        if isinstance(obj, torch.optim.Optimizer):
            for per_param in obj.state.values():
                yield from (v for v in per_param.values() if isinstance(v, torch.Tensor))
        elif isinstance(obj, torch.nn.Module):
            yield from (v for v in obj.state_dict().values() if isinstance(v, torch.Tensor))
    for name in variables:
        value = recursive_getattr(model, name)
        if isinstance(value, torch.Tensor):
            yield value


def weights_are_finite(model: BaseAlgorithm) -> bool:
    """Whether every parameter, buffer and optimizer state tensor of ``model`` is finite.

    One device-to-host copy in all (the check runs once per checkpoint, not per step).

    :param model: the SB3 algorithm.
    :return: ``True`` when nothing is NaN or Inf.
    """
    flags = [torch.isfinite(t).all() for t in _tensors_to_check(model) if t.is_floating_point() or t.is_complex()]
    if not flags:
        return True
    return bool(torch.stack([f.to(flags[0].device) for f in flags]).all())


def _pending_log(model: BaseAlgorithm) -> dict[str, Any]:
    # values recorded by the last train() that SB3 writes only at the next dump: without them the
    # resumed run's first TensorBoard step would lack train/* and aux/*
    logger = getattr(model, "_logger", None)
    if not isinstance(logger, Logger):
        return {}
    out: dict[str, Any] = {}
    for key, value in logger.name_to_value.items():
        if isinstance(value, bool | int | float | np.number | str):
            plain = value.item() if isinstance(value, np.number) else value
            excluded = logger.name_to_excluded.get(key)
            out[key] = {
                "value": plain,
                "exclude": list(excluded) if excluded is not None else None,
                "count": int(logger.name_to_count.get(key, 0)),
            }
    return out


def _tensorboard_dir(model: BaseAlgorithm, run_dir: Path) -> str | None:
    logger = getattr(model, "_logger", None)
    if not isinstance(logger, Logger) or logger.dir is None:
        return None
    if not any(isinstance(f, TensorBoardOutputFormat) for f in logger.output_formats):
        return None
    folder = Path(logger.dir).resolve()
    try:
        return str(folder.relative_to(run_dir.resolve()))
    except ValueError:
        return str(folder)


def _algo_name(model: BaseAlgorithm) -> str | None:
    from curl_rl.algos import ALGOS

    for name, cls in ALGOS.items():
        if type(model) is cls:
            return name
    return None


def _remove_stale_temp(folder: Path) -> None:
    # a .tmp-* folder whose writer is gone is the remains of a killed save
    for path in folder.glob(f"{_TMP_PREFIX}*"):
        parts = path.name.split("-")
        pid = int(parts[-2]) if len(parts) >= 3 and parts[-2].isdigit() else -1
        if pid != os.getpid() and _pid_alive(pid):
            continue
        old_prefix = f"{_TMP_PREFIX}old-"
        if path.name.startswith(old_prefix):
            # killed between the two renames of an overwrite: the old checkpoint goes back
            original = folder / "-".join(path.name[len(old_prefix) :].split("-")[:-2])
            if _NAME.match(original.name) and not original.exists():
                os.replace(path, original)
                continue
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def save_checkpoint(
    model: BaseAlgorithm,
    run_dir: str | os.PathLike[str],
    *,
    save_replay_buffer: bool = False,
    tag: str | None = None,
    keep_last: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a checkpoint atomically (temporary folder, fsync, rename) and prune old ones.

    Call it between SB3 iterations (as :class:`CheckpointCallback` does); a model saved from
    inside ``train()`` or half-way through a rollout is not a consistent state.

    :param model: the SB3 / curl_rl algorithm.
    :param run_dir: the run folder; checkpoints go to ``run_dir/checkpoints``.
    :param save_replay_buffer: also store the replay buffer (off-policy algorithms; large).
    :param tag: suffix of the folder name (letters, digits, ``_`` and ``.``). Tagged checkpoints
        are never pruned.
    :param keep_last: keep only this many untagged checkpoints (newest by step); ``None`` keeps all.
    :param overwrite: replace an existing checkpoint of the same name; otherwise that raises.
    :return: the checkpoint folder.
    :raises NonFiniteWeightsError: when a weight or optimizer state is NaN/Inf (nothing is written,
        so the last good checkpoint stays the newest).
    :raises FileExistsError: when the checkpoint exists and ``overwrite`` is off.
    """
    if tag is not None and not _TAG.match(tag):
        raise ValueError(f"checkpoint tag {tag!r} may hold only letters, digits, '_' and '.'")
    if keep_last is not None and keep_last < 1:
        raise ValueError(f"keep_last={keep_last} must be >= 1 (or None to keep every checkpoint)")
    if not weights_are_finite(model):
        raise NonFiniteWeightsError(
            f"not saving a checkpoint at step {model.num_timesteps}: the model's weights or optimizer state "
            "hold NaN/Inf; the previous checkpoint is kept as the newest. Lower the learning rates or the aux "
            "weight, or keep grad clipping on"
        )
    run_path = Path(run_dir)
    folder = checkpoints_dir(run_path)
    if folder != run_path:
        run_path.mkdir(parents=True, exist_ok=True)
    folder.mkdir(exist_ok=True)
    _remove_stale_temp(folder)
    name = f"step_{int(model.num_timesteps):012d}" + (f"-{tag}" if tag else "")
    final = folder / name
    if final.exists() and not overwrite:
        raise FileExistsError(f"checkpoint {final} already exists; pass overwrite=True to replace it, or another tag")

    with interrupts_held():
        _write_checkpoint(model, final, tag, save_replay_buffer, run_path)
    if keep_last is not None:
        _prune(folder, keep_last)
    return final


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is over, then let the first one through.

    A ``KeyboardInterrupt`` raised inside torch's zip writer comes out as ``RuntimeError:
    unexpected pos``: the run then counted as failed, not interrupted, and ``compare`` started it
    over instead of resuming it. Held here, Ctrl-C (or a scheduler's SIGTERM) lands after the
    checkpoint is in place, and the interrupted run saves its own. A large replay buffer makes
    this wait seconds; SIGKILL still ends the process at once. Handlers can only be changed from
    the main thread, and one installed outside Python cannot be put back; there the block runs
    unguarded.
    """
    if threading.current_thread() is not threading.main_thread() or any(
        signal.getsignal(signum) is None for signum in _HELD_SIGNALS
    ):
        yield
        return
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda s, _f: held.append(s)) for signum in _HELD_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if held:
            # under the handler the process had before: KeyboardInterrupt, termination or nothing
            signal.raise_signal(held[0])


def _write_checkpoint(
    model: BaseAlgorithm, final: Path, tag: str | None, save_replay_buffer: bool, run_path: Path
) -> None:
    """Write the checkpoint into a temporary folder beside ``final``, then rename it into place."""
    folder, name = final.parent, final.name
    tmp = folder / f"{_TMP_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        model.save(tmp / MODEL_FILE)
        torch.save(capture_rng_state(model), tmp / RNG_FILE)
        has_buffer = False
        if save_replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
            model.save_replay_buffer(tmp / REPLAY_FILE)
            has_buffer = True
        files = [MODEL_FILE, RNG_FILE] + ([REPLAY_FILE] if has_buffer else [])
        meta = {
            "format": FORMAT_VERSION,
            "algo": _algo_name(model),
            "algo_class": f"{type(model).__module__}:{type(model).__qualname__}",
            "num_timesteps": int(model.num_timesteps),
            "_n_updates": int(getattr(model, "_n_updates", 0)),
            "_episode_num": int(getattr(model, "_episode_num", 0)),
            "total_timesteps": int(getattr(model, "_total_timesteps", 0)),
            "n_envs": int(model.n_envs) if getattr(model, "n_envs", None) else None,
            "seed": model.seed,
            "tag": tag,
            "replay_buffer": has_buffer,
            "tensorboard_dir": _tensorboard_dir(model, run_path),
            "pending_log": _pending_log(model),
            "file_sizes": {f: (tmp / f).stat().st_size for f in files},
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "unix_time": time.time(),
            "versions": versions(),
        }
        with open(tmp / META_FILE, "w") as fh:
            json.dump(meta, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        for f in files:
            _fsync(tmp / f)
        _fsync(tmp)
        old = None
        if final.exists():
            # overwrite: move the old one aside first (a non-empty folder cannot be replaced)
            old = folder / f"{_TMP_PREFIX}old-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync(folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prune(folder: Path, keep_last: int) -> None:
    untagged = [p for p in list_checkpoints(folder) if _tag_of(p) is None]
    for path in untagged[:-keep_last]:
        shutil.rmtree(path, ignore_errors=True)


def _tag_of(path: Path) -> str | None:
    match = _NAME.match(path.name)
    return match.group(2) if match else None


# -- loading -------------------------------------------------------------------------------------
def _resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if _is_complete(path):
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise FileNotFoundError(
            f"{path} is neither a complete checkpoint folder nor a run folder holding one "
            f"(looked in {checkpoints_dir(path)}); start the run without --resume"
        )
    return latest


class NoLoadableCheckpoint(RuntimeError):
    """Every checkpoint of a run folder failed to load."""


def _load_newest_that_loads(
    run_dir: Path, env: Any, device: torch.device | str, algo_cls: type[BaseAlgorithm] | None, replay: bool
) -> BaseAlgorithm:
    """The newest checkpoint of ``run_dir`` that loads; a damaged one gives way to the one before it."""
    found = list_checkpoints(run_dir)
    if not found:
        _resolve_checkpoint(run_dir)  # raises, naming where it looked
    errors = []
    for folder in reversed(found):
        try:
            model = load_checkpoint(folder, env, device, algo_cls, load_replay_buffer=replay)
        except Exception as exc:
            errors.append(f"{folder.name}: {type(exc).__name__}: {exc}")
            continue
        if errors:
            redone = max(0, _step_of(found[-1]) - int(model.num_timesteps))
            warnings.warn(
                f"{run_dir}: {len(errors)} newer checkpoint(s) did not load ({'; '.join(errors)}); resuming from "
                f"{folder.name} at {model.num_timesteps} steps, so about {redone} steps are trained again",
                RuntimeWarning,
                stacklevel=3,
            )
        return model
    raise NoLoadableCheckpoint(f"{run_dir}: no checkpoint loads ({'; '.join(errors)}); the run cannot be resumed")


def _algo_class(meta: dict[str, Any]) -> type[BaseAlgorithm]:
    from curl_rl.algos import ALGOS

    name = meta.get("algo")
    if name in ALGOS:
        return ALGOS[name]
    module_name, _, qualname = str(meta.get("algo_class", "")).partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(
            f"cannot find the algorithm class {meta.get('algo_class')!r} of this checkpoint; pass algo_cls="
        ) from err
    if not (isinstance(obj, type) and issubclass(obj, BaseAlgorithm)):
        raise ValueError(f"{meta.get('algo_class')!r} is not an SB3 algorithm class; pass algo_cls=")
    return obj


def read_meta(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``meta.json`` of a checkpoint (or of a run folder's newest checkpoint).

    :param checkpoint: checkpoint folder or run folder.
    :return: the metadata dict.
    """
    return dict(json.loads((_resolve_checkpoint(checkpoint) / META_FILE).read_text()))


def load_checkpoint(
    path: str | os.PathLike[str],
    env: Any,
    device: torch.device | str = "auto",
    algo_cls: type[BaseAlgorithm] | None = None,
    *,
    load_replay_buffer: bool = True,
) -> BaseAlgorithm:
    """Rebuild the model of a checkpoint, ready to continue training on ``env``.

    Restores everything :func:`save_checkpoint` stored: weights, optimizers, the auxiliary head
    (key encoder, queue, augmentation generator), counters, the replay buffer when saved, and
    the random generators (after SB3's ``load`` has re-seeded them). The env is reset by the next
    ``learn()``: its internal state is not part of a checkpoint. Because of that reset, the last
    stored transition of a restored replay buffer is marked as an episode cut (a ``timeout``),
    so k-step windows never join it to the new episode; its TD target is unchanged.

    :param path: a checkpoint folder, or a run folder (its newest checkpoint is used).
    :param env: the environment to train on (same spaces as the saved model); ``None`` for
        inference only.
    :param device: torch device.
    :param algo_cls: algorithm class; ``None`` reads it from ``meta.json``.
    :param load_replay_buffer: restore the replay buffer when the checkpoint holds one.
    :return: the model, with ``num_timesteps`` where the checkpoint was taken.
    """
    if not _is_complete(Path(path)):
        return _load_newest_that_loads(Path(path), env, device, algo_cls, load_replay_buffer)
    folder = _resolve_checkpoint(path)
    meta = json.loads((folder / META_FILE).read_text())
    if int(meta.get("format", 0)) > FORMAT_VERSION:
        raise ValueError(f"checkpoint {folder} has format {meta['format']}; upgrade curl_rl to load it")
    cls = algo_cls if algo_cls is not None else _algo_class(meta)
    model = cls.load(folder / MODEL_FILE, env=env, device=device)
    if load_replay_buffer and meta.get("replay_buffer") and isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(folder / REPLAY_FILE)
        _mark_episode_cut(model.replay_buffer)
    state = torch.load(folder / RNG_FILE, weights_only=True)
    skipped = restore_rng_state(state, model if env is not None else None)
    if skipped:
        warnings.warn(
            f"checkpoint {folder.name}: could not restore the {', '.join(skipped)} random state "
            "(different number of envs or GPUs); training continues with fresh randomness there",
            RuntimeWarning,
            stacklevel=2,
        )
    _LOADED_FROM[model] = {"checkpoint": str(folder), **meta}
    return model


def _mark_episode_cut(buffer: Any) -> None:
    if buffer is None or not hasattr(buffer, "timeouts"):
        return
    if not buffer.full and buffer.pos == 0:
        return
    last = (buffer.pos - 1) % buffer.buffer_size
    # dones * (1 - timeouts) is what SB3 bootstraps on: a timeout on a non-terminal row changes
    # no TD target, but sequence sampling treats it as an episode end
    buffer.timeouts[last] = 1.0


# -- resuming ------------------------------------------------------------------------------------
def purge_tensorboard_events(folder: str | os.PathLike[str], max_step: int) -> int:
    """Drop the events with ``step > max_step`` from every event file in ``folder``.

    Those events were written after the checkpoint being resumed from; the resumed run writes
    them again. Each changed file is rewritten next to itself and renamed over the original; a
    record cut short by a kill is dropped too. Rewriting (rather than TensorBoard's ``purge_step``
    marker) keeps the files right for every reader, not only TensorBoard's own.

    :param folder: one TensorBoard run folder (``tb/<name>_<N>``).
    :param max_step: the last step to keep.
    :return: the number of events dropped.
    """
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    dropped = 0
    for path in sorted(Path(folder).glob("*tfevents*")):
        if not path.is_file():
            continue
        records = list(RawEventFileLoader(str(path)).Load())
        keep = [r for r in records if event_pb2.Event.FromString(r).step <= max_step]
        truncated = sum(len(r) + 16 for r in records) != path.stat().st_size  # 16: framing bytes
        if len(keep) == len(records) and not truncated:
            continue
        dropped += len(records) - len(keep)
        # the temporary name lacks "tfevents", so no reader picks up a half-written file
        tmp = path.with_name(f".purge-{uuid.uuid4().hex[:8]}")
        with open(tmp, "wb") as fh:
            writer = RecordWriter(fh)
            for record in keep:
                writer.write(record)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return dropped


def drop_csv_rows_after_step(path: str | os.PathLike[str], max_step: int, column: str = "timesteps") -> int:
    """Drop the rows of a CSV file (e.g. ``evaluations.csv``) whose ``column`` exceeds ``max_step``.

    For resuming: results written after the checkpoint are produced again by the resumed run,
    which then appends them. The file is rewritten next to itself and renamed into place.

    :param path: the CSV file (nothing happens when it does not exist).
    :param max_step: the last step to keep.
    :param column: the column holding the step.
    :return: the number of rows dropped.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = reader.fieldnames
        rows = list(reader)
    if fields is None:
        return 0
    if column not in fields:
        raise ValueError(f"{path} has no column {column!r} (columns: {fields}); pass column=")
    keep = [r for r in rows if r[column] in ("", None) or float(r[column]) <= max_step]
    if len(keep) == len(rows):
        return 0
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(keep)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return len(rows) - len(keep)


#: how long :func:`wait_for_a_later_event_file_name` waits at most (a clock set back: warn instead)
_MAX_EVENT_NAME_WAIT_S = 3.0


def wait_for_a_later_event_file_name(folder: str | os.PathLike[str]) -> None:
    """Return once a new event file written to ``folder`` would be read after every file there.

    TensorBoard (and :class:`EventAccumulator`) read a folder's event files in name order, and
    the name is ``events.out.tfevents.<second>.<host>.<pid>...``. A run killed within the same
    second as its resume started left a file whose name differs from the resumed one only in the
    pid, so a resumed process with a smaller pid had its steps read *first*: steps out of order
    (seen as ``[96, 128, 64]`` in tests/test_crash_safety.py). Waiting for the next second costs
    at most a second, and only then.

    :param folder: a TensorBoard run folder.
    """
    stamps = [
        int(m.group(1)) for p in Path(folder).glob("*tfevents*") if (m := re.search(r"tfevents\.(\d+)\.", p.name))
    ]
    if not stamps:
        return
    wait = max(stamps) + 1 - time.time()
    if wait > _MAX_EVENT_NAME_WAIT_S:
        warnings.warn(
            f"{folder} holds an event file stamped {wait:.0f} s in the future (was the clock set back?); "
            "TensorBoard may read the resumed run's steps before the old ones",
            RuntimeWarning,
            stacklevel=2,
        )
    elif wait > 0:
        time.sleep(wait)


def _latest_tb_folder(tensorboard_log: Path) -> Path | None:
    if not tensorboard_log.is_dir():
        return None
    candidates = [p for p in tensorboard_log.iterdir() if p.is_dir() and re.match(r"^.+_\d+$", p.name)]
    return max(candidates, key=lambda p: p.stat().st_mtime_ns) if candidates else None


def resume_learn_kwargs(
    model: BaseAlgorithm,
    run_dir: str | os.PathLike[str],
    *,
    total_timesteps: int | None = None,
    format_strings: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Prepare ``model`` (from :func:`load_checkpoint`) to continue its run, and return the
    keyword arguments for ``model.learn``.

    The step counter goes on (``reset_num_timesteps=False``). TensorBoard continues in the run's
    same folder: events written after the checkpoint are dropped from it
    (:func:`purge_tensorboard_events`), and the model gets a logger writing there
    (``model.set_logger``), pre-filled with the values the last ``train()`` recorded before the
    checkpoint but SB3 had not written yet, so the next step is neither duplicated nor missing.
    Close the logger of any earlier model that wrote to the same folder in this process first.

    :param model: the model returned by :func:`load_checkpoint`.
    :param run_dir: the run folder.
    :param total_timesteps: the run's total; when given, the remaining steps are returned as
        ``total_timesteps`` (SB3 adds ``num_timesteps`` back when ``reset_num_timesteps=False``).
    :param format_strings: logger outputs (SB3 names: ``"stdout"``, ``"csv"``, ``"tensorboard"``
        ...); default as SB3 would choose: ``tensorboard``, plus ``stdout`` when ``verbose >= 1``.
    :return: keyword arguments for ``model.learn``.
    """
    run_path = Path(run_dir)
    step = int(model.num_timesteps)
    meta = _LOADED_FROM.get(model, {})
    folder: Path | None = None
    if meta.get("tensorboard_dir"):
        recorded = Path(meta["tensorboard_dir"])
        folder = recorded if recorded.is_absolute() else run_path / recorded
    elif model.tensorboard_log is not None:
        folder = _latest_tb_folder(Path(model.tensorboard_log))
    kwargs: dict[str, Any] = {"reset_num_timesteps": False}
    if total_timesteps is not None:
        kwargs["total_timesteps"] = max(int(total_timesteps) - step, 0)
    if folder is None:
        return kwargs
    folder.mkdir(parents=True, exist_ok=True)
    purge_tensorboard_events(folder, step)
    wait_for_a_later_event_file_name(folder)
    if format_strings is None:
        format_strings = ["stdout", "tensorboard"] if model.verbose >= 1 else ["tensorboard"]
    logger = OncePerStepLogger.replacing(configure(str(folder), list(format_strings)))
    for key, item in meta.get("pending_log", {}).items():
        exclude = tuple(item["exclude"]) if item.get("exclude") is not None else None
        logger.record(key, item["value"], exclude)
        if item.get("count"):
            logger.name_to_count[key] = int(item["count"])
    model.set_logger(logger)
    match = re.match(r"^(.*)_\d+$", folder.name)
    kwargs["tb_log_name"] = match.group(1) if match else folder.name
    return kwargs


# -- the callback ----------------------------------------------------------------------------------
class CheckpointCallback(BaseCallback):
    """Save a checkpoint every ``save_freq_steps`` environment steps, keeping the last ``keep_last``.

    Checkpoints are taken at the start of a rollout (after the previous ``train()``), where the
    model, the optimizers, the counters and the replay buffer agree with each other; for PPO/A2C
    that is a rollout boundary, so the rollout buffer (empty there) need not be saved. The first
    boundary at or after each multiple of ``save_freq_steps`` is used, and a last checkpoint is
    written when ``learn()`` returns. No checkpoint is written while the weights hold NaN/Inf
    (a ``RuntimeWarning`` instead), so after a divergence the newest checkpoint is the last
    good one.

    When training starts below the step of existing checkpoints (a new run in an old folder, or a
    resume from an older checkpoint), those newer checkpoints belong to another timeline: they are
    moved to ``checkpoints/superseded-<time>/`` with a warning, never deleted.

    A wall-time period can be given as well (``save_every_s``): a slow run (a 1M-step CurlSAC on a
    CPU) then loses at most that much work to a kill, however far away the next step multiple is.

    :param run_dir: the run folder; checkpoints go to ``run_dir/checkpoints``.
    :param save_freq_steps: environment steps (over all envs) between checkpoints (0: by time only).
    :param keep_last: how many periodic checkpoints to keep.
    :param save_replay_buffer: store the replay buffer too (off-policy; large).
    :param verbose: 1 prints a line per checkpoint.
    :param save_every_s: also checkpoint at the first boundary after this many seconds since the
        last checkpoint (None or 0: by steps only).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        save_freq_steps: int,
        keep_last: int = 3,
        save_replay_buffer: bool = False,
        verbose: int = 0,
        save_every_s: float | None = None,
    ) -> None:
        super().__init__(verbose)
        if save_freq_steps < 0 or (save_freq_steps == 0 and not save_every_s):
            raise ValueError(f"save_freq_steps={save_freq_steps} must be >= 1 (or 0 with save_every_s)")
        if save_every_s is not None and not (save_every_s >= 0 and math.isfinite(save_every_s)):
            raise ValueError(f"save_every_s={save_every_s} must be a finite number >= 0")
        if keep_last < 1:
            raise ValueError(f"keep_last={keep_last} must be >= 1")
        self.run_dir = Path(run_dir)
        self.save_freq_steps = int(save_freq_steps)
        self.keep_last = int(keep_last)
        self.save_replay_buffer = save_replay_buffer
        self.save_every_s = float(save_every_s or 0.0)
        self._last_saved_time = time.monotonic()
        self.last_saved_step = -1
        self.last_checkpoint: Path | None = None
        self.skipped_nonfinite = 0

    def _on_training_start(self) -> None:
        step = int(self.model.num_timesteps)
        self.last_saved_step = step
        self._last_saved_time = time.monotonic()
        folder = checkpoints_dir(self.run_dir)
        newer = [p for p in list_checkpoints(folder) if _step_of(p) > step]
        if newer:
            aside = folder / f"superseded-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
            aside.mkdir()
            for path in newer:
                os.replace(path, aside / path.name)
            warnings.warn(
                f"training starts at step {step}, below {len(newer)} existing checkpoint(s) of {folder}; "
                f"moved them to {aside} (delete them if they are not needed)",
                RuntimeWarning,
                stacklevel=2,
            )

    def _on_rollout_start(self) -> None:
        by_steps = self.save_freq_steps > 0 and self.model.num_timesteps - self.last_saved_step >= self.save_freq_steps
        by_time = self.save_every_s > 0 and time.monotonic() - self._last_saved_time >= self.save_every_s
        if (by_steps or by_time) and self.model.num_timesteps > self.last_saved_step:
            self._save()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        if self.model.num_timesteps > self.last_saved_step:
            self._save()

    def _save(self) -> None:
        step = int(self.model.num_timesteps)
        try:
            path = save_checkpoint(
                self.model,
                self.run_dir,
                save_replay_buffer=self.save_replay_buffer,
                keep_last=self.keep_last,
            )
        except FileExistsError as err:
            # someone saved this very step already (e.g. save_checkpoint by hand): keep theirs
            warnings.warn(f"{err}; keeping it", RuntimeWarning, stacklevel=2)
            self.last_saved_step = step
            return
        except NonFiniteWeightsError as err:
            self.skipped_nonfinite += 1
            self.logger.record("checkpoint/skipped_nonfinite", self.skipped_nonfinite)
            warnings.warn(str(err), RuntimeWarning, stacklevel=2)
            return
        self.last_saved_step = step
        self._last_saved_time = time.monotonic()
        self.last_checkpoint = path
        if self.verbose >= 1:
            print(f"checkpoint: {path}")
