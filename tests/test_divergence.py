"""Divergence guards: NaN/Inf in the auxiliary loss stops (or skips) cleanly; collapse warns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from tiny_envs import DotEnv

from curl_rl import CurlEncoder, CurlPPO, CurlSAC
from curl_rl.experiment.checkpoint import (
    CheckpointCallback,
    NonFiniteWeightsError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    weights_are_finite,
)

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
PPO_KW = dict(n_steps=32, batch_size=16, n_epochs=2, policy_kwargs=SMALL, device="cpu")


def poison(model: Any, value: float = float("nan")) -> None:
    """Make the auxiliary projector output ``value`` everywhere (the RL path is untouched)."""
    model.aux_head.projector.forward = lambda x: x * value


class PoisonAt(BaseCallback):
    """Poison the auxiliary head once training reaches ``step``."""

    def __init__(self, step: int, value: float = float("nan")) -> None:
        super().__init__()
        self.step, self.value = step, value

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= self.step:
            poison(self.model, self.value)

    def _on_step(self) -> bool:
        return True


class Recorder(KVWriter):
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append(dict(key_values))

    def close(self) -> None:
        pass


def test_nan_stops_training_and_the_newest_checkpoint_is_the_last_good_one(tmp_path: Path) -> None:
    # one minibatch per train(): the once-per-train() check is the first thing to see the NaN
    model = CurlPPO("CnnPolicy", DotEnv(), aux="curl", seed=0, **{**PPO_KW, "n_epochs": 1, "batch_size": 32})
    # the checkpoint callback runs first at each rollout start: it saves step 64, then the poison
    callbacks = CallbackList([CheckpointCallback(tmp_path, save_freq_steps=32), PoisonAt(64)])
    with pytest.raises(FloatingPointError, match="auxiliary loss became NaN/Inf") as info:
        model.learn(320, callback=callbacks)
    message = str(info.value)
    assert "nan_policy='skip'" in message and "Lower aux lr" in message
    assert model.num_timesteps == 96  # stopped at the first train() after the poison

    # the failed update left NaN weights behind; none of it reached a checkpoint
    assert not weights_are_finite(model)
    with pytest.raises(NonFiniteWeightsError):
        save_checkpoint(model, tmp_path)
    newest = latest_checkpoint(tmp_path)
    assert newest is not None and newest.name == "step_000000000064"
    restored = load_checkpoint(newest, DotEnv(), device="cpu")
    assert weights_are_finite(restored)
    restored.learn(32, reset_num_timesteps=False)  # and training can go on from it


def test_several_minibatches_still_keep_the_last_good_checkpoint(tmp_path: Path) -> None:
    model = CurlPPO("CnnPolicy", DotEnv(), aux="curl", seed=0, **PPO_KW)  # 4 minibatch updates per train()
    callbacks = CallbackList([CheckpointCallback(tmp_path, save_freq_steps=32), PoisonAt(64)])
    with pytest.raises(Exception):  # noqa: B017 - which error depends on the core fix below
        model.learn(320, callback=callbacks)
    newest = latest_checkpoint(tmp_path)
    assert newest is not None and newest.name == "step_000000000064"
    assert weights_are_finite(load_checkpoint(newest, DotEnv(), device="cpu"))


def test_nan_message_survives_several_minibatches() -> None:
    model = CurlPPO("CnnPolicy", DotEnv(), aux="curl", seed=0, **PPO_KW)
    poison(model)
    with pytest.raises(FloatingPointError, match="nan_policy='skip'"):
        model.learn(64)


def test_inf_stops_sac_at_the_first_update() -> None:
    model = CurlSAC(
        "CnnPolicy",
        DotEnv(continuous=True),
        aux="curl",
        seed=0,
        buffer_size=100,
        learning_starts=10,
        batch_size=8,
        policy_kwargs=SMALL,
        device="cpu",
    )
    poison(model, float("inf"))
    with pytest.raises(FloatingPointError, match="NaN/Inf"):
        model.learn(40)
    assert model.num_timesteps == 11


def test_nan_detection_needs_no_host_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    model = CurlPPO("CnnPolicy", DotEnv(), aux="curl", seed=0, **PPO_KW)
    poison(model)
    obs = torch.as_tensor(np.stack([DotEnv().reset(seed=i)[0] for i in range(8)])).permute(0, 3, 1, 2).contiguous()

    def no_sync(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the per-update auxiliary loss path copied a value to the host")

    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__"):
        monkeypatch.setattr(torch.Tensor, name, no_sync)
    loss = model._aux_loss(obs, None)
    loss = model._aux_loss(obs, None)
    monkeypatch.undo()
    assert loss is not None and not torch.isfinite(loss)
    with pytest.raises(FloatingPointError):
        model._aux_log()  # the single check, once per train()


def test_skip_policy_drops_and_counts_bad_updates() -> None:
    model = CurlPPO("CnnPolicy", DotEnv(), aux={"preset": "curl", "nan_policy": "skip"}, seed=0, **PPO_KW)
    recorder = Recorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    poison(model)
    with pytest.warns(RuntimeWarning, match="dropped every auxiliary update"):
        model.learn(96)
    skipped = [row["aux/skipped_updates"] for row in recorder.rows if "aux/skipped_updates" in row]
    updates_per_train = PPO_KW["n_epochs"] * PPO_KW["n_steps"] // PPO_KW["batch_size"]
    assert skipped == [updates_per_train, updates_per_train]  # the third train() is dumped by the next learn
    assert model.logger.name_to_value["aux/skipped_updates"] == updates_per_train
    assert weights_are_finite(model)


class ConstantExtractor(BaseFeaturesExtractor):
    """A collapsed encoder: the same features for every observation."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 16) -> None:
        super().__init__(observation_space, features_dim)
        self.value = torch.nn.Parameter(torch.randn(features_dim))

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.value.expand(observations.shape[0], -1)


def test_collapse_raises_a_warning() -> None:
    model = CurlPPO(
        "CnnPolicy",
        DotEnv(),
        aux="curl",
        seed=0,
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        policy_kwargs=dict(features_extractor_class=ConstantExtractor),
    )
    with pytest.warns(RuntimeWarning, match="representation collapse"):
        model.learn(64)
    assert model.logger.name_to_value["aux/embedding_std"] < 1e-6
