"""A training process killed with SIGKILL leaves a loadable checkpoint and readable events, and resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tiny_envs import DotEnv

from curl_rl.experiment.checkpoint import (
    CheckpointCallback,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resume_learn_kwargs,
)

TESTS_DIR = Path(__file__).resolve().parent
N_STEPS = 32

TRAINER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])
    from tiny_envs import DotEnv

    import curl_rl.experiment.checkpoint as ck
    from curl_rl import CurlEncoder, CurlPPO

    # widen the window between "model.zip written" and "checkpoint renamed into place", so the
    # kill lands in the middle of a save
    real_capture = ck.capture_rng_state

    def slow_capture(model=None):
        time.sleep(0.3)
        return real_capture(model)

    ck.capture_rng_state = slow_capture
    run = Path(sys.argv[1])
    small = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
    model = CurlPPO(
        "CnnPolicy", DotEnv(), aux="curl", seed=0, n_steps=32, batch_size=16, n_epochs=1,
        policy_kwargs=small, tensorboard_log=str(run / "tb"), device="cpu",
    )
    model.learn(10**6, callback=ck.CheckpointCallback(run, save_freq_steps=32, keep_last=2), tb_log_name="PPO")
    """
)


def _scalar_steps(folder: Path) -> dict[str, list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_sigkill_mid_save_leaves_a_resumable_run(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "exp" / "curl" / "seed0"
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, str(script), str(run), str(TESTS_DIR)], env=env, stderr=subprocess.PIPE)
    folder = run / "checkpoints"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"trainer exited early ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            if len(list_checkpoints(run)) >= 2 and any(folder.glob(".tmp-*")):
                break
            time.sleep(0.02)
        else:
            pytest.fail("the trainer wrote no checkpoints in time")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    # the half-written save is there, but ignored
    assert any(folder.glob(".tmp-*"))
    path = latest_checkpoint(run)
    assert path is not None and not path.name.startswith(".")
    model = load_checkpoint(path, DotEnv(), device="cpu")
    step = int(model.num_timesteps)
    assert step >= 2 * N_STEPS and step % N_STEPS == 0

    before = _scalar_steps(run / "tb" / "PPO_1")  # readable as the killed process left it
    assert max(before["time/fps"]) > step  # it logged past the checkpoint: those steps must go

    total = step + 2 * N_STEPS
    kwargs = resume_learn_kwargs(model, run, total_timesteps=total)
    model.learn(callback=CheckpointCallback(run, save_freq_steps=N_STEPS, keep_last=2), **kwargs)
    model.logger.close()
    assert model.num_timesteps == total
    assert latest_checkpoint(run) == folder / f"step_{total:012d}"
    assert not any(folder.glob(".tmp-*"))  # the killed writer's leftovers were removed

    after = _scalar_steps(run / "tb" / "PPO_1")
    for tag, steps in after.items():
        assert steps == sorted(set(steps)), f"{tag}: duplicate or out-of-order steps {steps}"
    assert after["time/fps"] == list(range(N_STEPS, total + 1, N_STEPS))  # nothing missing
    assert after["train/loss"] == list(range(2 * N_STEPS, total + 1, N_STEPS))
    assert after["aux/loss"] == after["train/loss"]


def test_resumed_events_are_read_after_the_killed_runs_events(tmp_path: Path) -> None:
    """A kill and a resume within one second: the old event file's name differed from the new one
    only in the pid, so a resumed process with a smaller pid had its steps read first."""
    import socket

    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    from curl_rl import CurlEncoder, CurlPPO

    run = tmp_path / "run"
    folder = run / "tb" / "PPO_1"
    folder.mkdir(parents=True)
    # the killed run's file, stamped two seconds ahead so that the resumed file gets an earlier or
    # the same stamp, and with a pid that sorts (as text) after this process's
    old = folder / f"events.out.tfevents.{int(time.time()) + 2}.{socket.gethostname()}.99999999.0"
    with open(old, "wb") as fh:
        writer = RecordWriter(fh)
        for step in (32, 64, 96):
            value = summary_pb2.Summary.Value(tag="time/fps", simple_value=float(step))
            writer.write(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])).SerializeToString())
    small = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
    model = CurlPPO(
        "CnnPolicy", DotEnv(), aux="curl", n_steps=32, batch_size=16, policy_kwargs=small,
        tensorboard_log=str(run / "tb"), device="cpu",
    )  # fmt: skip
    model.num_timesteps = 64  # the checkpoint being resumed from
    resume_learn_kwargs(model, run)
    model.logger.record("time/fps", 96.0)
    model.logger.dump(96)
    model.logger.close()
    assert _scalar_steps(folder)["time/fps"] == [32, 64, 96]
