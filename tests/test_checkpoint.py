"""Checkpoints: what they hold, atomic writing and pruning, and resuming a run exactly."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from tiny_envs import DotEnv

from curl_rl import CurlEncoder, CurlPPO, CurlSAC
from curl_rl.experiment.checkpoint import (
    CheckpointCallback,
    NonFiniteWeightsError,
    drop_csv_rows_after_step,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    purge_tensorboard_events,
    read_meta,
    resume_learn_kwargs,
    save_checkpoint,
)
from curl_rl.experiment.determinism import capture_rng_state, restore_rng_state

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
PPO_KW = dict(n_steps=32, batch_size=16, n_epochs=2, policy_kwargs=SMALL, device="cpu")
SAC_KW = dict(buffer_size=400, learning_starts=20, batch_size=16, policy_kwargs=SMALL, device="cpu")


class FixedStartDot(DotEnv):
    """DotEnv whose episodes always start at the same place.

    A checkpoint does not hold the env's internal state; the resumed run resets the env. A resumed
    run therefore equals the uninterrupted one exactly when the uninterrupted run also starts a
    new, identical episode at the checkpoint: fixed-length episodes that end at the checkpoint step
    and a reset that does not depend on the env's random state.
    """

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        _, info = super().reset(seed=seed, options=options)
        self.pos = np.array([5, 17])
        self._stack = [self._frame()] * self.frames
        return self._obs(), info


def ppo(seed: int = 0, env: Any = None, **extra: Any) -> CurlPPO:
    return CurlPPO("CnnPolicy", env if env is not None else DotEnv(), aux="curl", seed=seed, **{**PPO_KW, **extra})


def sac(seed: int = 0, env: Any = None, **extra: Any) -> CurlSAC:
    env = env if env is not None else DotEnv(continuous=True)
    return CurlSAC("CnnPolicy", env, aux="curl", seed=seed, **{**SAC_KW, **extra})


def tensors_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    assert a.keys() == b.keys()
    return all(torch.equal(a[k], b[k]) for k in a if isinstance(a[k], torch.Tensor))


def optimizer_states_equal(a: torch.optim.Optimizer, b: torch.optim.Optimizer) -> bool:
    sa, sb = a.state_dict()["state"], b.state_dict()["state"]
    assert sa.keys() == sb.keys() and sa
    return all(tensors_equal(sa[k], sb[k]) for k in sa)


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# -- round trips -------------------------------------------------------------------------------
def test_ppo_checkpoint_round_trip(tmp_path: Path) -> None:
    model = ppo()
    model.learn(64)
    path = save_checkpoint(model, tmp_path)
    assert sorted(os.listdir(path)) == ["meta.json", "model.zip", "rng.pt"]
    meta = read_meta(path)
    assert meta["algo"] == "ppo" and meta["num_timesteps"] == 64 and meta["_n_updates"] == model._n_updates
    assert "aux/loss" in meta["pending_log"]  # recorded by train(), not yet written by SB3
    expected_rng = torch.get_rng_state()
    torch.manual_seed(123)  # anything drawn after the save must be undone by the load

    loaded = load_checkpoint(path, DotEnv(), device="cpu")
    assert isinstance(loaded, CurlPPO)
    assert torch.equal(torch.get_rng_state(), expected_rng)
    assert loaded.num_timesteps == 64 and loaded._n_updates == model._n_updates
    obs = np.stack([DotEnv().reset(seed=i)[0] for i in range(6)])
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert tensors_equal(model.policy.state_dict(), loaded.policy.state_dict())
    assert tensors_equal(model.aux_head.state_dict(), loaded.aux_head.state_dict())  # W, key encoder, queue
    assert loaded.aux_head.key_encoder.num_steps == model.aux_head.key_encoder.num_steps
    assert torch.equal(loaded.aux_head.generator.get_state(), model.aux_head.generator.get_state())
    assert optimizer_states_equal(model.policy.optimizer, loaded.policy.optimizer)
    assert optimizer_states_equal(model.aux_optimizer, loaded.aux_optimizer)

    loaded.learn(32, reset_num_timesteps=False)
    assert loaded.num_timesteps == 96
    assert not tensors_equal(model.aux_head.state_dict(), loaded.aux_head.state_dict())


def test_sac_checkpoint_round_trip_with_replay_buffer(tmp_path: Path) -> None:
    model = sac()
    model.learn(40)
    path = save_checkpoint(model, tmp_path, save_replay_buffer=True)
    assert (path / "replay_buffer.pkl").is_file() and read_meta(path)["replay_buffer"]

    loaded = load_checkpoint(path, DotEnv(continuous=True), device="cpu")
    assert isinstance(loaded, CurlSAC)
    obs = np.stack([DotEnv(continuous=True).reset(seed=i)[0] for i in range(6)])
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert tensors_equal(model.policy.state_dict(), loaded.policy.state_dict())
    assert tensors_equal(model.aux_head.state_dict(), loaded.aux_head.state_dict())
    for name in ("actor.optimizer", "critic.optimizer", "ent_coef_optimizer", "aux_optimizer"):
        a, b = model, loaded
        for part in name.split("."):
            a, b = getattr(a, part), getattr(b, part)
        assert optimizer_states_equal(a, b), name
    assert torch.equal(model.log_ent_coef, loaded.log_ent_coef)
    # the action space draws the random actions before learning_starts
    assert model.action_space.np_random.bit_generator.state == loaded.action_space.np_random.bit_generator.state

    buf, old = loaded.replay_buffer, model.replay_buffer
    assert (buf.pos, buf.full) == (old.pos, old.full)
    np.testing.assert_array_equal(buf.actions, old.actions)
    np.testing.assert_array_equal(buf.rewards, old.rewards)
    # the resumed run starts a new episode: the last stored transition is marked as a cut
    assert buf.timeouts[buf.pos - 1].all()
    batch_inds = np.arange(buf.pos - 1)
    np.testing.assert_array_equal(buf._get_samples(batch_inds).observations, old._get_samples(batch_inds).observations)

    loaded.learn(20, reset_num_timesteps=False)
    assert loaded.num_timesteps == 60 and loaded.replay_buffer.pos == 60


def test_rng_state_round_trip_is_weights_only_loadable(tmp_path: Path) -> None:
    model = ppo()
    state = capture_rng_state(model)
    torch.save(state, tmp_path / "rng.pt")
    draws = (
        random.random(),
        np.random.rand(),  # noqa: NPY002 - the global generator is part of the saved state
        torch.rand(1),
        model.action_space.sample(),
        model.env.get_attr("np_random")[0].random(),
    )
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), model)
    again = (
        random.random(),
        np.random.rand(),  # noqa: NPY002 - the global generator is part of the saved state
        torch.rand(1),
        model.action_space.sample(),
        model.env.get_attr("np_random")[0].random(),
    )
    assert draws[0] == again[0] and draws[1] == again[1] and torch.equal(draws[2], again[2])
    assert draws[3] == again[3] and draws[4] == again[4]


# -- exact continuation -------------------------------------------------------------------------
def test_ppo_resume_gives_the_same_parameters_as_an_uninterrupted_run(tmp_path: Path) -> None:
    def env() -> DotEnv:
        return FixedStartDot(episode_len=16)  # episodes end at every rollout boundary (n_steps=32)

    straight = ppo(seed=3, env=env())
    straight.learn(128)

    first = ppo(seed=3, env=env())
    first.learn(64, callback=CheckpointCallback(tmp_path, save_freq_steps=64))
    del first
    resumed = load_checkpoint(latest_checkpoint(tmp_path), env(), device="cpu")
    assert resumed.num_timesteps == 64
    resumed.learn(**resume_learn_kwargs(resumed, tmp_path, total_timesteps=128))

    assert resumed.num_timesteps == 128 and resumed._n_updates == straight._n_updates
    assert tensors_equal(straight.policy.state_dict(), resumed.policy.state_dict())
    assert tensors_equal(straight.aux_head.state_dict(), resumed.aux_head.state_dict())
    assert optimizer_states_equal(straight.policy.optimizer, resumed.policy.optimizer)
    assert optimizer_states_equal(straight.aux_optimizer, resumed.aux_optimizer)


def test_sac_resume_with_replay_buffer_gives_the_same_parameters(tmp_path: Path) -> None:
    def env() -> DotEnv:
        return FixedStartDot(continuous=True, episode_len=15)

    straight = sac(seed=5, env=env())
    straight.learn(60)

    first = sac(seed=5, env=env())
    first.learn(30, callback=CheckpointCallback(tmp_path, save_freq_steps=30, save_replay_buffer=True))
    resumed = load_checkpoint(latest_checkpoint(tmp_path), env(), device="cpu")
    resumed.learn(**resume_learn_kwargs(resumed, tmp_path, total_timesteps=60))

    assert resumed.num_timesteps == 60
    assert tensors_equal(straight.policy.state_dict(), resumed.policy.state_dict())
    assert tensors_equal(straight.aux_head.state_dict(), resumed.aux_head.state_dict())


def test_resume_continues_tensorboard_without_duplicate_or_missing_steps(tmp_path: Path) -> None:
    def env() -> DotEnv:
        return FixedStartDot(episode_len=16)

    straight = ppo(seed=1, env=env(), tensorboard_log=str(tmp_path / "straight" / "tb"))
    straight.learn(128, tb_log_name="PPO")
    straight.logger.close()

    run = tmp_path / "run"
    first = ppo(seed=1, env=env(), tensorboard_log=str(run / "tb"))
    # goes on past the checkpoint at 64: the events at 96 must not survive the resume
    first.learn(96, callback=CheckpointCallback(run, save_freq_steps=64), tb_log_name="PPO")
    first.logger.close()  # a writer still open on the folder would keep writing the old file
    assert [p.name for p in list_checkpoints(run)] == ["step_000000000064", "step_000000000096"]

    resumed = load_checkpoint(run / "checkpoints" / "step_000000000064", env(), device="cpu")
    kwargs = resume_learn_kwargs(resumed, run, total_timesteps=128)
    assert kwargs == {"reset_num_timesteps": False, "total_timesteps": 64, "tb_log_name": "PPO"}
    with pytest.warns(RuntimeWarning, match="superseded"):
        resumed.learn(callback=CheckpointCallback(run, save_freq_steps=64), **kwargs)
    resumed.logger.close()

    assert sorted(p.name for p in (run / "tb").iterdir()) == ["PPO_1"]
    want, got = scalars(tmp_path / "straight" / "tb" / "PPO_1"), scalars(run / "tb" / "PPO_1")
    assert want.keys() == got.keys()
    for tag in want:
        steps = [s for s, _ in got[tag]]
        assert steps == sorted(set(steps)), f"{tag}: duplicate steps {steps}"
        assert steps == [s for s, _ in want[tag]], tag
        if not tag.startswith("time/"):  # wall-clock and per-learn() counters differ
            assert got[tag] == want[tag], tag
    # the checkpoint at 96 of the abandoned timeline was moved aside, not deleted
    assert any((p / "step_000000000096").is_dir() for p in (run / "checkpoints").glob("superseded-*"))


# -- writing, pruning, never overwriting ----------------------------------------------------------
def test_partial_checkpoints_are_ignored_and_cleaned(tmp_path: Path) -> None:
    model = ppo()
    model.learn(32)
    good = save_checkpoint(model, tmp_path)
    folder = tmp_path / "checkpoints"
    # what a SIGKILL can leave: a temp folder, and (never by us, but possible by hand) a folder
    # without meta.json or with a truncated model.zip
    (folder / ".tmp-step_000000000999-999999999-abcd1234").mkdir()
    (folder / ".tmp-step_000000000999-999999999-abcd1234" / "model.zip").write_bytes(b"PK")
    (folder / "step_000000000500").mkdir()
    (folder / "step_000000000500" / "model.zip").write_bytes(b"PK")
    truncated = folder / "step_000000000600"
    truncated.mkdir()
    for f in good.iterdir():
        (truncated / f.name).write_bytes(f.read_bytes())
    with open(truncated / "model.zip", "r+b") as fh:
        fh.truncate(10)
    assert latest_checkpoint(tmp_path) == good

    # killed between the two renames of an overwrite: the old checkpoint was moved aside
    os.replace(good, folder / f".tmp-old-{good.name}-999999999-abcd1234")
    model.learn(32, reset_num_timesteps=False)
    newer = save_checkpoint(model, tmp_path)
    assert latest_checkpoint(tmp_path) == newer
    assert good.is_dir()  # ... and is put back
    assert not list(folder.glob(".tmp-*"))  # the dead writer's leftovers are gone


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupt_during_a_checkpoint_write_waits_for_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, signum: int
) -> None:
    # compare's workers turn SIGINT and SIGTERM into KeyboardInterrupt; one landing inside torch's
    # zip writer came out as "RuntimeError: unexpected pos", so the run was marked failed, not
    # interrupted, and a rerun started it over instead of resuming it
    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signum, interrupt)
    try:
        model = ppo()
        model.learn(32)
        real_save = CurlPPO.save

        def save_while_interrupted(self: CurlPPO, path: Any, *args: Any, **kwargs: Any) -> None:
            os.kill(os.getpid(), signum)  # the signal lands as the model file is being written
            real_save(self, path, *args, **kwargs)

        monkeypatch.setattr(CurlPPO, "save", save_while_interrupted)
        with pytest.raises(KeyboardInterrupt):
            save_checkpoint(model, tmp_path)
        assert signal.getsignal(signum) is interrupt  # the handler is back in place
    finally:
        signal.signal(signum, previous)
    written = latest_checkpoint(tmp_path)
    assert written is not None and written.name == "step_000000000032"  # written whole, then interrupted
    assert load_checkpoint(written, DotEnv(), device="cpu").num_timesteps == 32


def test_interrupts_are_not_held_where_a_handler_cannot_be_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_rl.experiment.checkpoint import interrupts_held

    before = signal.getsignal(signal.SIGINT)
    real_getsignal = signal.getsignal
    # a handler installed from C reads as None and could not be restored: leave the handlers alone
    monkeypatch.setattr(signal, "getsignal", lambda s: None if s == signal.SIGTERM else real_getsignal(s))
    with interrupts_held():
        assert real_getsignal(signal.SIGINT) is before
    with pytest.raises(KeyboardInterrupt), interrupts_held():
        raise KeyboardInterrupt  # unguarded: nothing swallows it
    monkeypatch.undo()
    with interrupts_held():
        assert signal.getsignal(signal.SIGINT) is not before  # held here
    assert signal.getsignal(signal.SIGINT) is before


def test_keep_last_prunes_untagged_only(tmp_path: Path) -> None:
    model = ppo()
    cb = CheckpointCallback(tmp_path, save_freq_steps=32, keep_last=2)
    model.learn(64, callback=cb)
    tagged = save_checkpoint(model, tmp_path, tag="best")
    model.learn(64, callback=cb, reset_num_timesteps=False)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_000000000064-best", "step_000000000096", "step_000000000128"]
    assert tagged.is_dir()
    assert cb.last_checkpoint == tmp_path / "checkpoints" / "step_000000000128"


def test_never_overwrites_silently(tmp_path: Path) -> None:
    model = ppo()
    model.learn(32)
    path = save_checkpoint(model, tmp_path, tag="mine")
    marker = path / "meta.json"
    before = marker.read_text()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_checkpoint(model, tmp_path, tag="mine")
    assert marker.read_text() == before
    # the callback keeps a checkpoint someone else saved at the step it wants to save
    user_file = save_checkpoint(model, tmp_path) / "notes.txt"
    user_file.write_text("mine")
    cb = CheckpointCallback(tmp_path, save_freq_steps=32)
    cb.init_callback(model)
    with pytest.warns(RuntimeWarning, match="keeping it"):
        cb._save()
    assert user_file.read_text() == "mine"
    # a new run in the old folder moves the old checkpoints aside instead of replacing them
    with pytest.warns(RuntimeWarning, match="moved them to"):
        ppo().learn(32, callback=CheckpointCallback(tmp_path, save_freq_steps=32))
    (aside,) = (tmp_path / "checkpoints").glob("superseded-*")
    assert (aside / "step_000000000032" / "notes.txt").read_text() == "mine"
    assert (aside / "step_000000000032-mine").is_dir()
    # explicit overwrite replaces it
    again = save_checkpoint(model, tmp_path, tag="mine", overwrite=True)
    assert json.loads((again / "meta.json").read_text())["unix_time"] > json.loads(before)["unix_time"]


def test_non_finite_weights_are_never_saved(tmp_path: Path) -> None:
    model = ppo()
    cb = CheckpointCallback(tmp_path, save_freq_steps=32)
    model.learn(32, callback=cb)
    good = latest_checkpoint(tmp_path)
    with torch.no_grad():
        next(model.aux_head.trainable_parameters().__iter__()).fill_(float("nan"))
    with pytest.raises(NonFiniteWeightsError, match="previous checkpoint is kept"):
        save_checkpoint(model, tmp_path)
    with pytest.warns(RuntimeWarning, match="NaN/Inf"), torch.no_grad():
        cb._save()
    assert latest_checkpoint(tmp_path) == good and cb.skipped_nonfinite == 1


def test_resume_from_a_run_folder_without_checkpoint_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="without --resume"):
        load_checkpoint(tmp_path, DotEnv())


# -- helpers for resuming ---------------------------------------------------------------------
def test_purge_tensorboard_events_drops_later_steps_and_torn_records(tmp_path: Path) -> None:
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for step in range(10):
        writer.add_scalar("x", float(step), step)
    writer.close()
    (events,) = tmp_path.glob("*tfevents*")
    with open(events, "ab") as fh:
        fh.write(b"\x05\x00\x00")  # a record cut short by a kill
    assert purge_tensorboard_events(tmp_path, 6) == 3
    assert [s for s, _ in scalars(tmp_path)["x"]] == list(range(7))
    assert purge_tensorboard_events(tmp_path, 6) == 0
    assert not [p for p in tmp_path.iterdir() if p != events]


def test_drop_csv_rows_after_step(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.csv"
    path.write_text("timesteps,mean_return\n0,1.0\n100,2.0\n200,3.0\n")
    assert drop_csv_rows_after_step(path, 100) == 1
    assert path.read_text().splitlines() == ["timesteps,mean_return", "0,1.0", "100,2.0"]
    assert drop_csv_rows_after_step(tmp_path / "missing.csv", 0) == 0
    with pytest.raises(ValueError, match="column="):
        drop_csv_rows_after_step(path, 0, column="step")


def test_checkpoints_by_wall_time_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import curl_rl.experiment.checkpoint as checkpoint_module

    clock = [0.0]
    monkeypatch.setattr(checkpoint_module.time, "monotonic", lambda: clock[0])

    class Tick(BaseCallback):
        def _on_step(self) -> bool:
            clock[0] += 1.0  # one second per env step
            return True

    model = ppo()  # rollouts of 32 steps
    callback = CheckpointCallback(tmp_path, 0, save_every_s=40.0)
    model.learn(160, callback=CallbackList([Tick(), callback]))
    # boundaries at 32, 64, ... s; saved at the first one 40 s after the last save, and at the end
    assert [read_meta(p)["num_timesteps"] for p in list_checkpoints(tmp_path)] == [64, 128, 160]
    with pytest.raises(ValueError, match="save_every_s"):
        CheckpointCallback(tmp_path, 0)
