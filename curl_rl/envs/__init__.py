"""Pixel environments for curl_rl: presets, wrappers, and a distractor task of our own.

Importing this package registers the ``curl_rl/...`` gymnasium ids and needs none of the optional
extras (dm_control, ale-py, pygame); those are imported when an env that uses them is built.

>>> from curl_rl.envs import list_presets, make_vec_env
>>> venv = make_vec_env("distractor-easy", n_envs=8, seed=0)
"""

from curl_rl.envs import registration as _registration  # noqa: F401  (registers gym ids)
from curl_rl.envs.distractor import DistractorEnv
from curl_rl.envs.extras import MissingExtraError
from curl_rl.envs.factory import EVAL_SEED_OFFSET, make_env, make_vec_env
from curl_rl.envs.presets import (
    Budgets,
    EnvPreset,
    EnvSection,
    EvalSpec,
    PresetError,
    bundled_presets_dir,
    list_presets,
    load_preset,
    make_action_noise,
)
from curl_rl.envs.registration import registered_ids
from curl_rl.envs.wrappers import ActionRepeat, FrameStack, ImageObservation, PixelObservation, wrap_pixels

__all__ = [
    "EVAL_SEED_OFFSET",
    "ActionRepeat",
    "Budgets",
    "DistractorEnv",
    "EnvPreset",
    "EnvSection",
    "EvalSpec",
    "FrameStack",
    "ImageObservation",
    "MissingExtraError",
    "PixelObservation",
    "PresetError",
    "bundled_presets_dir",
    "list_presets",
    "load_preset",
    "make_action_noise",
    "make_env",
    "make_vec_env",
    "registered_ids",
    "wrap_pixels",
]
