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
* features are centred with the train means and divided by **one** common scale (the RMS of the
  train feature stds), a closed-form ridge is fit, and the score is the held-out R² (``1 - SSE/SST``
  per state dimension, averaged over the dimensions that vary in the held-out set).

Why one common scale rather than per-feature standardisation: a ReLU unit that fires on 1 of 750
train frames has a train std of ~1e-4; dividing by it turned its ordinary activations on held-out
frames into values of ~1e4, and the ridge read-out extrapolated wildly. Measured on
``distractor-easy`` (PPO ``curl``, aux weight 0.1, seed 3): 13 such near-dead features gave a
held-out R² of -90.3 with per-feature standardisation and +0.67 with the common scale; seeds whose
features were all alive moved by at most 0.1.

The ridge penalty is chosen by cross-validation over whole training episodes (:func:`select_alpha`,
from :data:`ALPHAS`) unless a fixed ``alpha`` is given. A fixed ``alpha = 1`` barely regularises
512 unit-scale features fit on ~750 frames (the Gram matrix's diagonal is ~750). Measured (with
per-feature standardisation, before the common scale) on
``distractor-easy`` (PPO, ``aug`` arm, 32k steps, SB3's 512-feature NatureCNN): ``alpha = 1`` gave
held-out R² from -7.1 to -1.7 for an encoder that had learned the task; the cross-validated
penalty gave +0.42 for the same encoder, and 0.49-0.58 for the other arms' encoders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.preprocessing import preprocess_obs

__all__ = [
    "ALPHAS",
    "ProbeData",
    "RepresentationProbe",
    "RidgeModel",
    "collect_probe_frames",
    "embed_observations",
    "feature_scaling",
    "fit_ridge",
    "online_encoder",
    "probe_r2",
    "r2_score",
    "select_alpha",
]

FloatArray = NDArray[np.float64]

#: below this held-out variance (per sample) a state dimension is treated as constant
_MIN_VARIANCE = 1e-12
#: ridge penalties tried by :func:`select_alpha`
ALPHAS = (1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)


@dataclass
class RidgeModel:
    """A fitted ridge regression on centred, commonly scaled features (see :func:`feature_scaling`).

    :param mean: per-feature mean of the training features.
    :param scale: the common scale of the training features, as a per-feature array.
    :param weights: ``(n_features, n_targets)`` coefficients on the scaled features.
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


def feature_scaling(features: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Per-feature means and one common scale (RMS of the per-feature stds) of training features.

    A common scale keeps every feature's relative size: a near-constant feature stays near 0 on
    unseen frames instead of being blown up by its own tiny std (see the module docstring).

    :param features: ``(n, n_features)`` training features.
    :return: ``(mean, scale)``, both ``(n_features,)``; scale is 1 when every feature is constant.
    """
    mean = features.mean(axis=0)
    rms_std = float(np.sqrt(np.mean(features.var(axis=0))))
    scale = np.full(features.shape[1], rms_std if rms_std > 1e-8 else 1.0)
    return mean, scale


def fit_ridge(features: NDArray[Any], targets: NDArray[Any], alpha: float = 1.0) -> RidgeModel:
    """Closed-form ridge regression with an unpenalised intercept on centred, commonly scaled features.

    :param features: ``(n, n_features)``.
    :param targets: ``(n,)`` or ``(n, n_targets)``.
    :param alpha: L2 penalty on the weights of the scaled features.
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
    mean, scale = feature_scaling(x)
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


def _ridge_path(
    train_x: FloatArray, train_y: FloatArray, val_x: FloatArray, alphas: Sequence[float]
) -> list[FloatArray]:
    """Validation predictions for every alpha from one eigendecomposition.

    The symmetric eigenproblem is solved on the smaller of the Gram matrix ``XᵀX`` (features) and
    the kernel ``XXᵀ`` (samples); each alpha then costs one small matrix product.
    """
    mean, scale = feature_scaling(train_x)
    xs = (train_x - mean) / scale
    val = (val_x - mean) / scale
    y_mean = train_y.mean(axis=0)
    yc = train_y - y_mean
    if xs.shape[0] >= xs.shape[1]:
        eigval, eigvec = np.linalg.eigh(xs.T @ xs)
        left, right = val @ eigvec, eigvec.T @ (xs.T @ yc)
    else:
        eigval, eigvec = np.linalg.eigh(xs @ xs.T)
        left, right = val @ (xs.T @ eigvec), eigvec.T @ yc
    eigval = np.clip(eigval, 0.0, None)
    return [left @ (right / (eigval + alpha)[:, None]) + y_mean for alpha in alphas]


def select_alpha(
    features: NDArray[Any],
    targets: NDArray[Any],
    groups: NDArray[Any],
    alphas: Sequence[float] = ALPHAS,
    n_folds: int = 5,
) -> float:
    """The ridge penalty with the least squared error in cross-validation over whole groups.

    :param features: ``(n, d)`` training features.
    :param targets: ``(n,)`` or ``(n, k)`` training targets.
    :param groups: ``(n,)`` group (episode) of each row; a fold never splits a group.
    :param alphas: candidate penalties.
    :param n_folds: folds (fewer when there are fewer groups).
    :return: the chosen alpha (the middle candidate when the groups cannot be split).
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    ids = np.unique(groups)
    k = min(n_folds, ids.size)
    if k < 2:
        return float(alphas[len(alphas) // 2])
    # each target dimension weighs the same, whatever its units
    y = y / np.where(y.std(axis=0) > 1e-12, y.std(axis=0), 1.0)
    errors = np.zeros(len(alphas))
    for fold in range(k):
        val = np.isin(groups, ids[fold::k])
        if val.all() or not val.any() or (~val).sum() < 2:
            continue
        for i, pred in enumerate(_ridge_path(x[~val], y[~val], x[val], alphas)):
            errors[i] += float(((pred - y[val]) ** 2).sum())
    return float(alphas[int(np.argmin(errors))])


def probe_r2(
    train_x: NDArray[Any],
    train_y: NDArray[Any],
    test_x: NDArray[Any],
    test_y: NDArray[Any],
    alpha: float | None = 1.0,
    train_groups: NDArray[Any] | None = None,
) -> float:
    """Fit ridge on the train split and return the held-out R².

    :param train_x: train embeddings ``(n, d)``.
    :param train_y: train states ``(n, k)``.
    :param test_x: held-out embeddings ``(m, d)``.
    :param test_y: held-out states ``(m, k)``.
    :param alpha: ridge penalty; None picks it with :func:`select_alpha` on the train split.
    :param train_groups: episode of each train row (for ``alpha=None``; default: 5 contiguous blocks).
    :return: held-out R² (see :func:`r2_score`).
    """
    if alpha is None:
        n = len(train_x)
        groups = train_groups if train_groups is not None else np.arange(n) * 5 // max(n, 1)
        alpha = select_alpha(train_x, train_y, groups)
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
    :param alpha: ridge penalty; None chooses it by cross-validation over the training episodes.
    :param held_out_fraction: share of episodes held out.
    """

    def __init__(self, data: ProbeData, alpha: float | None = None, held_out_fraction: float = 0.25) -> None:
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
            train_groups=self.data.episodes[self.train_mask],
        )
