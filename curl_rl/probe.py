"""A linear probe of representation quality: ridge regression from embeddings to ground-truth state.

The return of an RL agent mixes many things (exploration, credit assignment, luck). The probe asks
one narrower question: how much of the env's true state can a *linear* read-out recover from the
encoder's embedding of a frame? An auxiliary loss that helps the representation should raise it.

Protocol (the same for every arm and every evaluation, so numbers are comparable):

* frames come from the evaluation env under a uniformly random policy, collected once per run
  with a fixed seed (:func:`collect_probe_frames`); a random policy visits varied states, while the
  deterministic policy being evaluated may sit still and leave nothing to regress;
* the frames are split into train and held-out **by episode**, so near-duplicate consecutive frames
  never sit on both sides;
* the embedding is the online encoder in eval mode, without augmentation (what the policy sees);
* features are standardised with the train statistics, a closed-form ridge (``alpha = 1``) is fit,
  and the score is the held-out R² (``1 - SSE/SST`` per state dimension, averaged over the
  dimensions that vary in the held-out set).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.preprocessing import preprocess_obs

__all__ = [
    "ProbeData",
    "RepresentationProbe",
    "RidgeModel",
    "collect_probe_frames",
    "embed_observations",
    "fit_ridge",
    "online_encoder",
    "probe_r2",
    "r2_score",
]

FloatArray = NDArray[np.float64]

#: below this held-out variance (per sample) a state dimension is treated as constant
_MIN_VARIANCE = 1e-12


@dataclass
class RidgeModel:
    """A fitted ridge regression on standardised features.

    :param mean: per-feature mean of the training features.
    :param scale: per-feature std of the training features (1 where a feature is constant).
    :param weights: ``(n_features, n_targets)`` coefficients on the standardised features.
    :param intercept: ``(n_targets,)`` intercept (the training target mean).
    """

    mean: FloatArray
    scale: FloatArray
    weights: FloatArray
    intercept: FloatArray

    def predict(self, features: NDArray[Any]) -> FloatArray:
        """Predict targets for ``(n, n_features)`` features.

        :param features: raw (unstandardised) features.
        :return: ``(n, n_targets)`` predictions.
        """
        x = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        return x @ self.weights + self.intercept


def fit_ridge(features: NDArray[Any], targets: NDArray[Any], alpha: float = 1.0) -> RidgeModel:
    """Closed-form ridge regression with an unpenalised intercept on standardised features.

    :param features: ``(n, n_features)``.
    :param targets: ``(n,)`` or ``(n, n_targets)``.
    :param alpha: L2 penalty on the weights of the standardised features.
    :return: the fitted model.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"features {x.shape} and targets {y.shape} must be (n, d) and (n, k) with the same n")
    if x.shape[0] < 2:
        raise ValueError("ridge regression needs at least 2 samples")
    if alpha < 0:
        raise ValueError(f"alpha={alpha} must be >= 0")
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    # a constant feature carries no information; scale 1 keeps it at 0 instead of dividing by 0
    scale = np.where(std > 1e-8, std, 1.0)
    xs = (x - mean) / scale
    y_mean = y.mean(axis=0)
    gram = xs.T @ xs + alpha * np.eye(xs.shape[1])
    # lstsq rather than solve: with alpha = 0 and redundant features the Gram matrix is singular
    weights = np.linalg.lstsq(gram, xs.T @ (y - y_mean), rcond=None)[0]
    return RidgeModel(mean=mean, scale=scale, weights=weights, intercept=y_mean)


def r2_score(y_true: NDArray[Any], y_pred: NDArray[Any]) -> float:
    """Coefficient of determination ``1 - SSE/SST``, averaged over target dimensions.

    Dimensions that do not vary in ``y_true`` have no defined R² and are left out; NaN when none
    varies. Below 0 means worse than predicting the held-out mean.

    :param y_true: ``(n,)`` or ``(n, k)`` true values.
    :param y_pred: predictions of the same shape.
    :return: mean R² over the varying dimensions.
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.ndim == 1:
        t, p = t[:, None], p[:, None]
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    sst = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    sse = ((t - p) ** 2).sum(axis=0)
    varying = sst > _MIN_VARIANCE * max(t.shape[0], 1)
    if not varying.any():
        return float("nan")
    return float(np.mean(1.0 - sse[varying] / sst[varying]))


def probe_r2(
    train_x: NDArray[Any], train_y: NDArray[Any], test_x: NDArray[Any], test_y: NDArray[Any], alpha: float = 1.0
) -> float:
    """Fit ridge on the train split and return the held-out R².

    :param train_x: train embeddings ``(n, d)``.
    :param train_y: train states ``(n, k)``.
    :param test_x: held-out embeddings ``(m, d)``.
    :param test_y: held-out states ``(m, k)``.
    :param alpha: ridge penalty.
    :return: held-out R² (see :func:`r2_score`).
    """
    model = fit_ridge(train_x, train_y, alpha)
    return r2_score(test_y, model.predict(test_x))


@dataclass
class ProbeData:
    """Frames and their ground-truth states, with the episode each frame came from.

    :param observations: ``(n, *obs_shape)`` observations as the env returns them (uint8 images).
    :param states: ``(n, k)`` float ground-truth states (``info["state"]``).
    :param episodes: ``(n,)`` episode index of each frame.
    """

    observations: NDArray[Any]
    states: FloatArray
    episodes: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.states.shape[0])

    def split(self, held_out_fraction: float = 0.25) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Train / held-out masks: the last episodes are held out.

        With a single episode, its last ``held_out_fraction`` of frames is held out instead (a
        contiguous block, so neighbours straddle the cut only once).

        :param held_out_fraction: share of episodes (or frames) held out.
        :return: ``(train_mask, test_mask)``.
        """
        ids = np.unique(self.episodes)
        if ids.size >= 2:
            n_test = min(ids.size - 1, max(1, round(ids.size * held_out_fraction)))
            test = np.isin(self.episodes, ids[-n_test:])
        else:
            n = len(self)
            cut = n - max(1, round(n * held_out_fraction))
            test = np.arange(n) >= cut
        return ~test, test


def _state_of(info: dict[str, Any]) -> NDArray[np.float64] | None:
    state = info.get("state")
    if state is None:
        return None
    return np.asarray(state, dtype=np.float64).reshape(-1)


def collect_probe_frames(
    env: gym.Env, n_episodes: int = 8, steps_per_episode: int = 100, seed: int = 0
) -> ProbeData | None:
    """Roll a uniformly random policy and keep ``(observation, info["state"])`` pairs.

    Each episode starts from ``env.reset(seed=seed + i)`` and is cut after ``steps_per_episode``
    steps, so the split by episode always has several episodes to work with.

    :param env: a single (not vectorised) env returning ``info["state"]``.
    :param n_episodes: episodes (segments) to collect.
    :param steps_per_episode: frames kept per episode at most.
    :param seed: seed of the resets and of the random actions.
    :return: the frames, or None when the env gives no ``info["state"]``.
    """
    if n_episodes < 1 or steps_per_episode < 1:
        raise ValueError("probe: n_episodes and steps_per_episode must be >= 1")
    env.action_space.seed(seed)
    observations: list[NDArray[Any]] = []
    states: list[NDArray[np.float64]] = []
    episodes: list[int] = []
    for episode in range(n_episodes):
        obs, info = env.reset(seed=seed + episode)
        state = _state_of(info)
        for _ in range(steps_per_episode):
            if state is not None:
                observations.append(np.asarray(obs))
                states.append(state)
                episodes.append(episode)
            obs, _, terminated, truncated, info = env.step(env.action_space.sample())
            state = _state_of(info)
            if state is None and not observations and episode == 0:
                # neither reset nor step reports a state: this env cannot be probed
                return None
            if terminated or truncated:
                if state is not None:
                    observations.append(np.asarray(obs))
                    states.append(state)
                    episodes.append(episode)
                break
    if not states:
        return None
    return ProbeData(
        observations=np.stack(observations),
        states=np.stack(states),
        episodes=np.asarray(episodes, dtype=np.int64),
    )


def online_encoder(model: Any) -> torch.nn.Module:
    """The online features extractor the auxiliary loss trains (the one the policy acts with).

    :param model: a curl_rl algorithm (or a plain SB3 one).
    :return: the extractor module.
    """
    encoder = getattr(model, "_aux_encoder", None)
    if encoder is not None:
        return encoder
    for owner in ("critic", "q_net", "policy"):
        part = getattr(model, owner, None)
        extractor = getattr(part, "features_extractor", None)
        if extractor is not None:
            return extractor
    raise ValueError(f"cannot find the features extractor of {type(model).__name__}")


@torch.no_grad()
def embed_observations(model: Any, observations: NDArray[Any], batch_size: int = 256) -> FloatArray:
    """Embeddings of raw env observations by the online encoder, in eval mode, without augmentation.

    :param model: a curl_rl / SB3 algorithm.
    :param observations: ``(n, *obs_shape)`` observations as the env returns them (channel-last
        images are transposed the way the policy does it).
    :param batch_size: frames per forward pass.
    :return: ``(n, features_dim)`` float64 embeddings.
    """
    encoder = online_encoder(model)
    policy = model.policy
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = []
        for start in range(0, len(observations), batch_size):
            obs_tensor, _ = policy.obs_to_tensor(observations[start : start + batch_size])
            features = encoder(
                preprocess_obs(obs_tensor, policy.observation_space, normalize_images=policy.normalize_images)
            )
            chunks.append(features.reshape(features.shape[0], -1).double().cpu().numpy())
    finally:
        encoder.train(was_training)
    return np.concatenate(chunks, axis=0)


class RepresentationProbe:
    """Held-out R² of a ridge read-out of the state from the current embedding (``aux/probe_r2``).

    :param data: the frames to probe (see :func:`collect_probe_frames`).
    :param alpha: ridge penalty.
    :param held_out_fraction: share of episodes held out.
    """

    def __init__(self, data: ProbeData, alpha: float = 1.0, held_out_fraction: float = 0.25) -> None:
        if len(data) < 4:
            raise ValueError(f"probe: {len(data)} frames are too few to split; collect more")
        self.data = data
        self.alpha = alpha
        self.train_mask, self.test_mask = data.split(held_out_fraction)

    def evaluate(self, model: Any) -> float:
        """Embed the frames with ``model``'s encoder, fit on the train split, score the held-out one.

        :param model: the algorithm being trained.
        :return: held-out R² (NaN when the held-out states do not vary).
        """
        features = embed_observations(model, self.data.observations)
        return probe_r2(
            features[self.train_mask],
            self.data.states[self.train_mask],
            features[self.test_mask],
            self.data.states[self.test_mask],
            self.alpha,
        )
