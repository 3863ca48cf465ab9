"""Pixel environments for curl_rl: presets, wrappers, and a distractor task of our own.

Importing this package (or ``curl_rl``) registers the ``curl_rl/...`` gymnasium ids, as importing
``ale_py`` does for Atari, and imports nothing heavy: the public names below load on first use
(PEP 562), and dm_control, ale-py and pygame only when an env that uses them is built.

>>> from curl_rl.envs import list_presets, make_vec_env
>>> venv = make_vec_env("distractor-easy", n_envs=8, seed=0)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from curl_rl._lazy import lazy_attributes
from curl_rl.envs.registration import register_envs, registered_ids

register_envs()

#: public name -> the module that defines it
_LAZY = {
    "DistractorEnv": "curl_rl.envs.distractor",
    "MissingExtraError": "curl_rl.envs.extras",
    "EVAL_SEED_OFFSET": "curl_rl.envs.factory",
    "make_env": "curl_rl.envs.factory",
    "make_vec_env": "curl_rl.envs.factory",
    "Budgets": "curl_rl.envs.presets",
    "EnvPreset": "curl_rl.envs.presets",
    "EnvSection": "curl_rl.envs.presets",
    "EvalSpec": "curl_rl.envs.presets",
    "PresetError": "curl_rl.envs.presets",
    "bundled_presets_dir": "curl_rl.envs.presets",
    "list_presets": "curl_rl.envs.presets",
    "load_preset": "curl_rl.envs.presets",
    "make_action_noise": "curl_rl.envs.presets",
    "ActionRepeat": "curl_rl.envs.wrappers",
    "FrameStack": "curl_rl.envs.wrappers",
    "ImageObservation": "curl_rl.envs.wrappers",
    "PixelObservation": "curl_rl.envs.wrappers",
    "wrap_pixels": "curl_rl.envs.wrappers",
}

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
    "register_envs",
    "registered_ids",
    "wrap_pixels",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
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
    from curl_rl.envs.wrappers import ActionRepeat, FrameStack, ImageObservation, PixelObservation, wrap_pixels


__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
