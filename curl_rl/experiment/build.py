"""Building what a run trains: the model of one arm, and the dry run that checks every arm first.

The dry run (:func:`check_runs_buildable`) builds the env once and each arm's model on it in the
main process, so a bad hyperparameter or an aux setting the observation space cannot take is one
clear error before any worker starts, not one traceback per run.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from curl_rl.algos import ALGOS
from curl_rl.algos.performance import PerformanceConfig, bf16_supported, resolve_auto, resolve_performance_config
from curl_rl.envs import make_action_noise, make_env
from curl_rl.experiment.config import ExperimentConfig, UsageError, algo_parameters, plain

__all__ = ["build_model", "check_runs_buildable", "effective_hyperparams"]


def build_model(
    config: ExperimentConfig,
    arm: str,
    env: VecEnv,
    seed: int,
    device: str = "auto",
    tensorboard_log: str | None = None,
    verbose: int = 0,
    **overrides: Any,
) -> BaseAlgorithm:
    """The curl_rl algorithm of ``config`` for one arm.

    :param config: the experiment config.
    :param arm: auxiliary preset name.
    :param env: the training env.
    :param seed: the seed.
    :param device: torch device.
    :param tensorboard_log: SB3's TensorBoard folder.
    :param verbose: SB3 verbosity.
    :param overrides: hyperparameters replacing the config's (used by the dry-run check).
    :return: the model.
    """
    cls: Any = ALGOS[config.algo]
    kwargs = {**config.model_kwargs(), **overrides}
    if isinstance(kwargs.get("action_noise"), dict):
        kwargs["action_noise"] = make_action_noise(kwargs["action_noise"], int(np.prod(env.action_space.shape or (1,))))
    # the device's speed switches, resolved here and passed explicitly, so every arm (none included)
    # runs the same kernels and arms differ only in their objective
    # (a user's algo.performance included: its "auto" switches are recorded as what they became)
    kwargs["performance"] = _device_performance(kwargs.get("performance"), device)
    return cls(
        config.policy,
        env,
        aux=config.aux_config(arm),
        routing=config.routing,
        seed=seed,
        device=device,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        **kwargs,
    )


def _device_performance(requested: Any, device: str) -> PerformanceConfig:
    """``algo.performance`` as the booleans it becomes on ``device``.

    :raises ValueError: a malformed value, or bf16 asked of a device without it.
    """
    return resolve_auto(resolve_performance_config(requested), get_device(device))


def _check_action_space(algo: str, space: gym.Space, env_name: str) -> None:
    discrete = isinstance(space, gym.spaces.Discrete)
    if algo == "dqn" and not discrete:
        raise UsageError(
            f"dqn needs discrete actions, but env {env_name!r} has {space}; use ppo, a2c, sac or td3, "
            "or a discrete variant of the env"
        )
    if algo in ("sac", "td3") and not isinstance(space, gym.spaces.Box):
        raise UsageError(
            f"{algo} needs continuous (Box) actions, but env {env_name!r} has {space}; use ppo, a2c or dqn, "
            "or a continuous variant of the env"
        )


def check_runs_buildable(config: ExperimentConfig, arms: list[str], device: str = "auto") -> dict[str, Any]:
    """Dry run before anything starts: build the env once and every arm's model on it.

    Catches incompatible algo/env pairs, bad hyperparameters and aux settings the observation
    space cannot take, with the error in the main process instead of in every worker.

    :param config: the experiment config.
    :param arms: the arms to check.
    :param device: the requested device (checked for availability).
    :return: facts about the env: ``observation_shape``, ``obs_bytes``, ``action_space``, ``has_state``.
    """
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for but CUDA is not available; use auto or cpu")
    for arm in arms:
        config.aux_config(arm)  # bad aux values fail here, before anything is built
    try:
        env = make_env(config.preset, 0)
    except Exception as exc:
        raise UsageError(f"env {config.env_name!r} cannot be built with these settings: {exc}") from exc
    try:
        _check_action_space(config.algo, env.action_space, config.env_name)
        _, info = env.reset(seed=0)
        facts = {
            "observation_shape": tuple(env.observation_space.shape or ()),
            "obs_bytes": int(np.prod(env.observation_space.shape or (1,)))
            * int(np.dtype(env.observation_space.dtype or np.uint8).itemsize),
            "action_space": str(env.action_space),
            "has_state": "state" in info,
        }
    finally:
        env.close()
    small: dict[str, Any] = {}
    try:
        # the switches are judged for the device the runs will use; the check model is built on
        # the CPU, so it drops a bf16 that only that device has
        performance = _device_performance(config.hyperparams.get("performance"), device)
    except ValueError as exc:
        raise UsageError(f"algo.performance: {exc}") from exc
    cpu_bf16 = performance.bf16 and bf16_supported(torch.device("cpu"))
    small["performance"] = dataclasses.replace(performance, bf16=cpu_bf16)
    defaults = algo_parameters(config.algo)
    if "buffer_size" in defaults:
        # the dry run must not allocate the real replay buffer
        small["buffer_size"] = min(int(config.hyperparams.get("buffer_size", 1000)), 1000)
    if "n_steps" in defaults and config.n_envs > 1:
        # one env stands for n_envs here: give its rollout the real rollout's size, so SB3's checks
        # (n_steps * n_envs > 1, the mini-batch against the rollout) judge the real numbers
        small["n_steps"] = int(config.hyperparams.get("n_steps", defaults["n_steps"])) * config.n_envs
    for arm in arms:
        aux = config.aux_config(arm)  # raises UsageError with the arm's name
        vec = DummyVecEnv([lambda: make_env(config.preset, 0)])
        try:
            with warnings.catch_warnings():
                # SB3 checks the mini-batch against this one-env rollout, not the real n_envs one;
                # the real construction in the run warns if the real sizes do not fit
                warnings.filterwarnings("ignore", message="You have specified a mini-batch size")
                model = build_model(config, arm, vec, seed=0, device="cpu", **small)
            del model
        except UsageError:
            raise
        except Exception as exc:
            hint = ""
            if "Kernel size can't be greater than actual input size" in str(exc):
                # SB3's NatureCNN does not check its input size; say which setting fixes it
                hint = f"; the images {facts['observation_shape']} are too small for the encoder: raise env.image_size"
            raise UsageError(f"{config.algo} with arm {arm!r} ({aux.name}) cannot be built: {exc}{hint}") from exc
        finally:
            vec.close()
    return facts


def effective_hyperparams(model: BaseAlgorithm, algo: str) -> dict[str, Any]:
    """SB3's values after construction (defaults included); schedules and objects left out.

    :param model: the built model.
    :param algo: its algorithm name.
    :return: plain ``{keyword: value}``.
    """
    out = {}
    for name in algo_parameters(algo):
        if not hasattr(model, name):
            continue
        value = getattr(model, name)
        if isinstance(value, bool | int | float | str | tuple | list | dict) or value is None:
            out[name] = value
    return plain(out)
