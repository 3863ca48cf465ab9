"""The representation probe: closed-form ridge, held-out R², frame collection and embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from curl_rl import CurlPPO
from curl_rl.envs import load_preset, make_env
from curl_rl.results.probe import (
    ProbeData,
    RepresentationProbe,
    collect_probe_frames,
    embed_observations,
    fit_ridge,
    probe_r2,
    r2_score,
    select_alpha,
)

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name


def _states(rng: np.random.Generator, n: int = 600, k: int = 4) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(n, k))


def test_r2_near_one_on_a_linear_map_of_the_state() -> None:
    rng = np.random.default_rng(0)
    states = _states(rng)
    mixing = rng.normal(size=(4, 32))
    features = states @ mixing + 0.001 * rng.normal(size=(len(states), 32))
    r2 = probe_r2(features[:450], states[:450], features[450:], states[450:], alpha=1.0)
    assert r2 > 0.99


def test_r2_at_most_about_zero_on_random_features() -> None:
    rng = np.random.default_rng(1)
    states = _states(rng)
    features = rng.normal(size=(len(states), 32))
    r2 = probe_r2(features[:450], states[:450], features[450:], states[450:], alpha=1.0)
    assert -0.3 < r2 < 0.05


def test_a_near_dead_feature_does_not_wreck_the_held_out_score() -> None:
    # A ReLU unit that fired on one train frame (std ~1e-4) but fires normally on held-out frames:
    # per-feature standardisation blew it up ~1e4-fold and the probe scored R² -90 on a good encoder.
    rng = np.random.default_rng(3)
    states = _states(rng)
    features = np.maximum(states @ rng.normal(size=(4, 32)) + 0.1 * rng.normal(size=(len(states), 32)), 0.0)
    dead = np.zeros((len(states), 1))
    dead[0] = 2e-3
    dead[450:] = rng.uniform(0.5, 1.5, size=(150, 1))
    features = np.concatenate([features, dead], axis=1)
    train = slice(0, 450)
    held_out = slice(450, None)
    r2 = probe_r2(features[train], states[train], features[held_out], states[held_out], alpha=1.0)
    alive = probe_r2(features[train, :-1], states[train], features[held_out, :-1], states[held_out], alpha=1.0)
    assert r2 > alive - 0.05


def test_ridge_matches_the_normal_equations_by_hand() -> None:
    # one feature, two samples' worth of arithmetic: x scaled to [-1, 1], y = [0, 2]
    x = np.array([[1.0], [3.0]])
    y = np.array([0.0, 2.0])
    model = fit_ridge(x, y, alpha=1.0)
    # scaled x = [-1, 1]; w = (x'x + 1)^-1 x'(y - 1) = (2 + 1)^-1 * 2 = 2/3
    assert model.weights[0, 0] == pytest.approx(2.0 / 3.0)
    assert model.intercept[0] == pytest.approx(1.0)
    assert model.predict(np.array([[3.0]]))[0, 0] == pytest.approx(1.0 + 2.0 / 3.0)
    # alpha = 0 recovers the exact line
    exact = fit_ridge(x, y, alpha=0.0)
    assert exact.predict(np.array([[2.0]]))[0, 0] == pytest.approx(1.0)


def test_r2_score_definition() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert r2_score(y, y) == pytest.approx(1.0)
    assert r2_score(y, np.full(4, y.mean())) == pytest.approx(0.0)
    # SSE = 4 * 1, SST = 5 -> 1 - 4/5
    assert r2_score(y, y + 1.0) == pytest.approx(0.2)
    # a constant target dimension has no R² and is left out of the mean
    two = np.stack([y, np.ones(4)], axis=1)
    assert r2_score(two, two) == pytest.approx(1.0)
    assert np.isnan(r2_score(np.ones(4), np.zeros(4)))


def test_split_is_by_episode() -> None:
    data = ProbeData(
        observations=np.zeros((12, 1)),
        states=np.arange(12.0)[:, None],
        episodes=np.repeat(np.arange(4), 3),
    )
    train, test = data.split(0.25)
    assert set(data.episodes[test]) == {3}
    assert not set(data.episodes[train]) & set(data.episodes[test])
    single = ProbeData(
        observations=np.zeros((8, 1)), states=np.arange(8.0)[:, None], episodes=np.zeros(8, dtype=np.int64)
    )
    train, test = single.split(0.25)
    assert test.tolist() == [False] * 6 + [True] * 2


def test_collect_and_probe_a_model() -> None:
    preset = load_preset(Path(ENVS) / "dots.yaml")
    env = make_env(preset, 3)
    data = collect_probe_frames(env, n_episodes=6, steps_per_episode=10, seed=3)
    assert data is not None
    assert data.observations.shape[1:] == (16, 16, 6) and data.observations.dtype == np.uint8
    assert data.states.shape == (len(data), 2)
    assert len(np.unique(data.episodes)) == 6
    model = CurlPPO(
        "CnnPolicy",
        DummyVecEnv([lambda: make_env(preset, 0)]),
        aux="curl",
        n_steps=16,
        batch_size=8,
        policy_kwargs=preset.algos["ppo"]["hyperparams"]["policy_kwargs"]
        | {"features_extractor_class": __import__("curl_rl").CurlEncoder},
        seed=0,
    )
    features = embed_observations(model, data.observations, batch_size=7)
    assert features.shape == (len(data), 16)
    # eval mode and no augmentation: the same frames embed the same way twice
    np.testing.assert_allclose(features, embed_observations(model, data.observations), rtol=1e-5, atol=1e-6)
    r2 = RepresentationProbe(data).evaluate(model)
    assert np.isfinite(r2)


def test_env_without_state_gives_no_probe_data() -> None:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    assert collect_probe_frames(env, n_episodes=2, steps_per_episode=5) is None


def test_cross_validated_alpha_resists_overfitting() -> None:
    # 300 features, 400 train rows, weak signal: an unregularised fit overfits badly; CV does not
    rng = np.random.default_rng(2)
    n, d = 600, 300
    states = _states(rng, n, 2)
    features = rng.normal(size=(n, d))
    features[:, :2] += 0.5 * states
    groups = np.repeat(np.arange(n // 20), 20)
    train, test = groups < 20, groups >= 20
    fixed = probe_r2(features[train], states[train], features[test], states[test], alpha=0.01)
    chosen = select_alpha(features[train], states[train], groups[train])
    cv = probe_r2(features[train], states[train], features[test], states[test], alpha=None, train_groups=groups[train])
    assert chosen >= 100.0
    assert fixed < -0.5 < cv
    # a clean linear read-out keeps a small penalty and R² near 1
    clean = states @ rng.normal(size=(2, 16))
    assert select_alpha(clean[train], states[train], groups[train]) <= 1.0
    assert probe_r2(clean[train], states[train], clean[test], states[test], alpha=None) > 0.99
    assert select_alpha(clean[:10], states[:10], np.zeros(10)) == 10.0  # one group: the middle candidate
