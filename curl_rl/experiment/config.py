"""The resolved configuration of an experiment: env preset + algorithm + ``--set`` overrides.

``curl-rl train`` and ``curl-rl compare`` both turn their flags into one
:class:`ExperimentConfig` here, before anything runs, so every bad input (unknown env, algo, arm or
``--set`` key, a value of the wrong type, DQN on continuous actions, ...) is a :class:`UsageError`
raised before the first run starts.

The config is a tree with these sections, which ``--set section.key=value`` addresses::

    env.*    the env preset's ``env`` settings (e.g. ``env.frame_stack``)
    algo.*   ``policy``, ``n_envs``, ``routing`` and any keyword of the SB3 algorithm
             (e.g. ``algo.learning_rate``, ``algo.policy_kwargs.net_arch``)
    aux.*    :class:`~curl_rl.AuxConfig` fields, applied to every arm except ``none``
    eval.*   ``freq`` (env steps between evaluations), ``n_episodes``
    probe.*  the representation probe (:class:`ProbeSettings`)
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import importlib
import importlib.util
import inspect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from curl_rl.auxiliary.config import ALGO_NAMES, AUX_PRESETS, ROUTINGS, AuxConfig, resolve_aux_config

__all__ = [
    "DEFAULT_ENV",
    "ExperimentConfig",
    "ProbeSettings",
    "TensorBoardSettings",
    "UsageError",
    "parse_arms",
    "parse_set",
    "plain",
    "preset_kwargs",
    "resolve_experiment",
]

#: the project's default env preset (the distractor task)
DEFAULT_ENV = "distractor-easy"

#: algorithm keywords the runner sets itself; ``--set`` must not touch them
_MANAGED_ALGO_KEYS = {
    "tensorboard_log": "the run folder's tb/ is used",
    "seed": "use --seed / --seeds",
    "device": "use --device",
    "verbose": "use --verbose",
    "_init_setup_model": "internal to SB3",
    "env": "use --env",
    "policy": None,  # settable, listed here only to keep the signature filter simple
}
#: algorithm keywords whose value is a dict that ``--set algo.KEY.sub=...`` may create
#: (``performance``: the encoders' speed switches, ``algo.performance.bf16=true``)
_DICT_ALGO_KEYS = ("policy_kwargs", "replay_buffer_kwargs", "rollout_buffer_kwargs", "action_noise", "performance")
_CLASS_KEYS = re.compile(r"(_class|activation_fn|optimizer_class)$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class UsageError(ValueError):
    """Bad user input, reported with a clear message before any run starts."""


@dataclass(frozen=True)
class ProbeSettings:
    """The representation probe (:mod:`curl_rl.results.probe`).

    :param enabled: run it at every evaluation (needs ``info["state"]`` from the env).
    :param episodes: random-policy episodes collected once per run.
    :param steps_per_episode: frames kept per episode.
    :param alpha: ridge penalty; None (the default) picks it by cross-validation over the training
        episodes (see :func:`curl_rl.results.probe.select_alpha`).
    :param held_out_fraction: share of episodes held out for the R².
    """

    enabled: bool = True
    # many short episodes: each reset draws new positions, so the held-out states vary
    episodes: int = 50
    steps_per_episode: int = 20
    alpha: float | None = None
    held_out_fraction: float = 0.25

    def validate(self) -> ProbeSettings:
        if self.episodes < 2 or self.steps_per_episode < 2:
            raise UsageError("probe.episodes and probe.steps_per_episode must be >= 2 (train and held-out)")
        if self.alpha is not None and (
            isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or self.alpha < 0
        ):
            raise UsageError(f"probe.alpha={self.alpha!r} must be a number >= 0, or null to choose it by CV")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise UsageError(f"probe.held_out_fraction={self.held_out_fraction} must lie in (0, 1)")
        return self


@dataclass(frozen=True)
class TensorBoardSettings:
    """Optional TensorBoard content (kept cheap by default).

    :param images_every: gradient updates between anchor/positive image grids (0: never).
    :param images_n: samples per grid.
    :param embeddings: write an embedding-projector snapshot at the end.
    :param video: write a short video of an evaluation episode at the end.
    :param video_frames: length cap of that video.
    """

    images_every: int = 1000
    images_n: int = 4
    embeddings: bool = False
    video: bool = False
    video_frames: int = 200


def plain(value: Any) -> Any:
    """A YAML/JSON-safe copy: tuples to lists, classes and callables to dotted names, paths to str."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)  # str subclasses (torch's version string) are not YAML-safe
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, type) or callable(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', repr(value))}"
    return str(value)


def _as_dict(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in fields(obj)}
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise TypeError(f"cannot read settings from {type(obj).__name__}")


# -- the env preset, read through the curl_rl.envs interface ---------------------------------


def load_env_preset(source: str) -> Any:
    """Load a preset by name or YAML path; unknown names become a :class:`UsageError`.

    :param source: preset name (``curl-rl envs`` lists them) or path to a preset YAML file.
    :return: the ``EnvPreset``.
    """
    from curl_rl.envs.presets import PresetError, list_presets, load_preset

    try:
        return load_preset(source)
    except PresetError as exc:
        raise UsageError(f"invalid env preset {source!r}: {exc}") from exc
    except (KeyError, ValueError, FileNotFoundError, OSError, TypeError) as exc:
        message = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        hint = ""
        if Path(source).suffix not in (".yaml", ".yml") and "presets" not in message.lower():
            hint = f"; known presets: {', '.join(sorted(list_presets()))}"
        raise UsageError(f"unknown env {source!r}: {message}{hint}") from exc


def _preset_env(preset: Any) -> dict[str, Any]:
    return copy.deepcopy(_as_dict(preset.env))


def _preset_with_env(preset: Any, env: Mapping[str, Any]) -> Any:
    """A copy of ``preset`` with its ``env`` section replaced (the preset object is not changed)."""
    original = preset.env
    if dataclasses.is_dataclass(original) and not isinstance(original, type):
        new_env: Any = dataclasses.replace(original, **dict(env))
    else:
        # keep the preset's mapping type when it can be rebuilt from a dict
        new_env = dict(env)
        if isinstance(original, Mapping) and not isinstance(original, dict):
            try:
                new_env = type(original)(**dict(env))
            except TypeError:
                new_env = dict(env)
    if dataclasses.is_dataclass(preset) and not isinstance(preset, type):
        return dataclasses.replace(preset, env=new_env)
    clone = copy.copy(preset)
    clone.env = new_env
    return clone


def _preset_algo(preset: Any, algo: str) -> dict[str, Any]:
    """``{policy, n_envs, hyperparams, aux}`` of ``algo`` in the preset (defaults when absent)."""
    try:
        section = preset.algo_config(algo) if hasattr(preset, "algo_config") else _as_dict(preset.algos).get(algo)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"env preset {preset.name!r} has no settings for algo {algo!r}: {exc}") from exc
    values = _as_dict(section)
    hyperparams = copy.deepcopy(_as_dict(values.get("hyperparams")))
    if values.get("action_noise"):
        # kept as its spec ({type, std}); built into an SB3 ActionNoise with the action size
        hyperparams["action_noise"] = copy.deepcopy(dict(values["action_noise"]))
    return {
        "policy": values.get("policy") or "CnnPolicy",
        "n_envs": int(values.get("n_envs") or 1),
        "hyperparams": hyperparams,
        "aux": copy.deepcopy(_as_dict(values.get("aux"))),
    }


def _check_algo_fits(preset: Any, algo: str) -> None:
    """DQN on continuous actions (or SAC/TD3 on discrete ones): a clear error from the preset alone."""
    from curl_rl.envs.presets import ALGO_ACTION_SPACES  # the one place the rule lives

    accepted = ALGO_ACTION_SPACES.get(algo, ())
    try:
        have = getattr(preset, "action_space_type", None)
    except Exception:  # an env whose spaces cannot be read without its extra; the dry run checks later
        have = None
    if accepted and have in ("discrete", "continuous") and have not in accepted:
        fitting = ", ".join(name for name, spaces in ALGO_ACTION_SPACES.items() if have in spaces)
        need = " or ".join(accepted)
        raise UsageError(
            f"{algo} needs {need} actions, but env {preset.name!r} has {have} actions; use {fitting} "
            f"(or an env preset with {need} actions)"
        )


def _preset_budget(preset: Any, which: str) -> int:
    budgets = _as_dict(getattr(preset, "budgets", None))
    if which not in budgets:
        raise UsageError(f"env preset {preset.name!r} has no {which!r} budget; pass --steps")
    return int(budgets[which])


def _preset_eval(preset: Any) -> dict[str, int]:
    values = _as_dict(getattr(preset, "eval", None))
    return {"freq": int(values.get("freq", 10_000)), "n_episodes": int(values.get("n_episodes", 5))}


# -- --set ------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A ``--set`` value as a YAML scalar (``3e-4`` is a number here, unlike in YAML 1.1).

    :param text: the text after ``=``.
    :return: the parsed value.
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"cannot parse value {text!r}: {exc}") from exc
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return float(value)
    return value


def parse_set(items: Iterable[str]) -> list[tuple[str, Any]]:
    """Split ``key=value`` strings; the value is parsed by :func:`parse_value`.

    :param items: the ``--set`` arguments.
    :return: ``(dotted key, value)`` pairs in order.
    """
    out = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--set expects KEY=VALUE (e.g. algo.learning_rate=3e-4), got {item!r}")
        if any(not part for part in key.split(".")):
            raise UsageError(f"--set key {key!r} has an empty part")
        out.append((key, parse_value(text)))
    return out


def _sb3_parent(cls: type) -> type:
    return next(k for k in cls.__mro__ if k.__module__.startswith("stable_baselines3"))


def algo_parameters(algo: str) -> dict[str, Any]:
    """Keyword -> default of the SB3 algorithm under ``algo`` (runner-managed keys left out)."""
    out: dict[str, Any] = {}
    # SB3's keywords, then the ones a Curl class adds (CurlSAC's encoder_tau, actor_update_freq, ...)
    from curl_rl.algos import ALGOS  # torch and SB3: imported when a config is resolved, not for --help

    for cls in (_sb3_parent(ALGOS[algo]), ALGOS[algo]):
        for name, param in inspect.signature(cls.__init__).parameters.items():  # type: ignore[misc]
            if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                continue
            if name in ("self", "policy", "env", "aux", "routing") or name in _MANAGED_ALGO_KEYS:
                continue
            out.setdefault(name, None if param.default is inspect.Parameter.empty else param.default)
    # every curl_rl class takes it (through its auxiliary mixin, not its own signature)
    out.setdefault("performance", "auto")
    return out


def _flat_keys(tree: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            keys += _flat_keys(value, f"{name}.")
        else:
            keys.append(name)
    return keys


def _unknown_key(key: str, valid: Sequence[str], where: str) -> UsageError:
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    return UsageError(f"unknown --set key {key!r} ({where}).{hint} Valid keys: {', '.join(sorted(valid))}")


def _check_type(key: str, value: Any, reference: Any) -> Any:
    """Coerce ``value`` to the type of ``reference`` where that is safe, else raise.

    Numbers stay numbers (an int setting accepts ``1e5``), booleans stay booleans; anything with a
    ``None`` or non-scalar reference is accepted as is (SB3 validates it when the model is built).
    """
    if isinstance(reference, bool):
        if not isinstance(value, bool):
            raise UsageError(f"--set {key}={value!r}: expected true or false")
        return value
    if isinstance(reference, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(f"--set {key}={value!r}: expected a number (like {reference!r})")
        if isinstance(reference, int):
            if isinstance(value, float) and not value.is_integer():
                raise UsageError(f"--set {key}={value!r}: expected an integer")
            return int(value)
        return float(value)
    return value


def _set_nested(
    tree: dict[str, Any], section: str, path: Sequence[str], value: Any, create: bool, key: str, where: str
) -> None:
    """Set ``tree[path[0]][path[1]]... = value``; unknown keys list the valid ``section.*`` keys."""
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if child is None and create:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise _unknown_key(key, [f"{section}.{k}" for k in _flat_keys(tree)], where)
        node = child
    last = path[-1]
    if last not in node and not create:
        raise _unknown_key(key, [f"{section}.{k}" for k in _flat_keys(tree)], where)
    node[last] = _check_type(key, value, node.get(last))


# -- the experiment config -----------------------------------------------------------------


@dataclass
class ExperimentConfig:
    """Everything that defines an experiment except its arms and seeds.

    Two invocations with equal :meth:`fingerprint` train the same runs, so a folder holding one may
    be resumed by the other.

    :param env_name: the preset's name (names the experiment folder).
    :param env_source: what ``--env`` / ``--config`` said.
    :param preset: the ``EnvPreset`` with ``env.*`` overrides applied.
    :param algo: key of :data:`curl_rl.ALGOS`.
    :param policy: SB3 policy name.
    :param n_envs: training envs.
    :param routing: encoder routing passed to every arm.
    :param hyperparams: SB3 keyword arguments (preset + ``--set algo.*``).
    :param aux_overrides: AuxConfig overrides for every arm except ``none``.
    :param eval_freq: env steps between evaluations.
    :param eval_episodes: episodes per evaluation.
    :param probe: probe settings.
    :param steps: env steps per run.
    :param overrides: the ``--set`` pairs, as given.
    """

    env_name: str
    env_source: str
    preset: Any
    algo: str
    policy: str
    n_envs: int
    routing: str
    hyperparams: dict[str, Any]
    aux_overrides: dict[str, Any]
    eval_freq: int
    eval_episodes: int
    probe: ProbeSettings
    steps: int
    overrides: list[tuple[str, Any]] = field(default_factory=list)

    @property
    def env_settings(self) -> dict[str, Any]:
        """The resolved ``env`` section."""
        return _preset_env(self.preset)

    def aux_config(self, arm: str) -> AuxConfig:
        """The resolved auxiliary config of one arm (``none`` ignores ``aux.*`` overrides).

        Where the overrides crop (``aux.augment`` holds ``crop``), ``none`` keeps the crop size
        and nothing else: its encoder then reads the centre crop, in training and acting, so it
        has the same input size and weights as the arms it is compared with (CURL's pixel-SAC
        baseline) instead of a larger encoder on the whole frame.

        :param arm: an :data:`~curl_rl.AUX_PRESETS` name.
        """
        spec: dict[str, Any] = {"preset": arm, **self.aux_overrides}
        if arm == "none":
            augment = self.aux_overrides.get("augment") or ()
            if "crop" not in ([augment] if isinstance(augment, str) else augment):
                return resolve_aux_config("none")
            crop_size = self.aux_overrides.get("crop_size")
            spec = {"preset": "none", "augment": ["crop"], "crop_size": crop_size, "rl_augment": "none"}
        try:
            return resolve_aux_config(spec)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"arm {arm!r}: {exc}") from exc

    def sections(self) -> dict[str, Any]:
        """The config tree (what ``--set`` addresses), as plain data."""
        return plain(
            {
                "env": {"preset": self.env_name, **self.env_settings},
                "algo": {
                    "name": self.algo,
                    "policy": self.policy,
                    "n_envs": self.n_envs,
                    "routing": self.routing,
                    **self.hyperparams,
                },
                "aux": self.aux_overrides,
                "eval": {"freq": self.eval_freq, "n_episodes": self.eval_episodes},
                "probe": dataclasses.asdict(self.probe),
                "steps": self.steps,
            }
        )

    def fingerprint(self) -> dict[str, Any]:
        """What must match for a folder to be resumed (normalised through YAML)."""
        return yaml.safe_load(yaml.safe_dump(self.sections(), sort_keys=True))

    def model_kwargs(self) -> dict[str, Any]:
        """SB3 keyword arguments with class names resolved and YAML lists made tuples where needed."""
        kwargs = resolve_classes(copy.deepcopy(self.hyperparams))
        if isinstance(kwargs.get("train_freq"), list):
            # SB3 reads a list as a step count; it needs (n, "step" | "episode")
            kwargs["train_freq"] = tuple(kwargs["train_freq"])
        return kwargs


def resolve_classes(tree: Any, key: str = "") -> Any:
    """Replace class names in ``*_class`` / ``activation_fn`` entries by the classes themselves.

    A bare name is looked up in ``curl_rl``, ``curl_rl.auxiliary.encoder``, SB3's torch layers and
    ``torch.nn``; a dotted name is imported.

    :param tree: hyperparameters (nested dicts).
    :param key: the key ``tree`` was found under.
    :return: the tree with classes.
    """
    if isinstance(tree, dict):
        return {k: resolve_classes(v, k) for k, v in tree.items()}
    if isinstance(tree, str) and _CLASS_KEYS.search(key):
        return import_class(tree)
    return tree


def import_class(name: str) -> Any:
    """Import ``pkg.mod.Name`` or find a bare ``Name`` in the usual modules.

    :param name: class name.
    :return: the class.
    """
    if "." in name:
        module_name, _, attr = name.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UsageError(f"cannot import {name!r}: {exc}") from exc
    for module_name in ("curl_rl", "curl_rl.auxiliary.encoder", "stable_baselines3.common.torch_layers", "torch.nn"):
        module = importlib.import_module(module_name)
        if hasattr(module, name):
            return getattr(module, name)
    raise UsageError(f"unknown class {name!r}; give a dotted path like 'my_pkg.module.MyExtractor'")


def parse_arms(text: str | Sequence[str]) -> list[str]:
    """Validate a comma-separated list of arms.

    :param text: ``"none,aug,curl"`` or a list of names.
    :return: the arm names, in order.
    """
    arms = [a.strip() for a in text.split(",")] if isinstance(text, str) else [a.strip() for a in text]
    arms = [a for a in arms if a]
    if not arms:
        raise UsageError("no arms given; e.g. --arms none,aug,curl")
    unknown = [a for a in arms if a not in AUX_PRESETS]
    if unknown:
        raise UsageError(f"unknown arm(s) {', '.join(map(repr, unknown))}; choose from {', '.join(AUX_PRESETS)}")
    duplicates = sorted({a for a in arms if arms.count(a) > 1})
    if duplicates:
        raise UsageError(f"arm(s) listed twice: {', '.join(duplicates)}")
    return arms


#: ranges of the SB3 hyperparameters whose bad values SB3 accepts silently or refuses late:
#: key -> (low, high, low inclusive, high inclusive)
_ALGO_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "gamma": (0.0, 1.0, False, True),
    "gae_lambda": (0.0, 1.0, True, True),
    "tau": (0.0, 1.0, False, True),
    "encoder_tau": (0.0, 1.0, False, True),
    "learning_rate": (0.0, math.inf, False, False),
    "alpha_lr": (0.0, math.inf, False, False),
    "clip_range": (0.0, math.inf, False, False),
    "ent_coef": (0.0, math.inf, True, False),
    "vf_coef": (0.0, math.inf, True, False),
    "max_grad_norm": (0.0, math.inf, False, False),
    "n_steps": (1.0, math.inf, True, False),
    "batch_size": (1.0, math.inf, True, False),
    "n_epochs": (1.0, math.inf, True, False),
    "buffer_size": (1.0, math.inf, True, False),
    "learning_starts": (0.0, math.inf, True, False),
    "exploration_fraction": (0.0, 1.0, True, True),
    "exploration_initial_eps": (0.0, 1.0, True, True),
    "exploration_final_eps": (0.0, 1.0, True, True),
    "target_update_interval": (1.0, math.inf, True, False),
    "policy_delay": (1.0, math.inf, True, False),
    "actor_update_freq": (1.0, math.inf, True, False),
    "critic_target_update_freq": (1.0, math.inf, True, False),
    "target_policy_noise": (0.0, math.inf, True, False),
    "target_noise_clip": (0.0, math.inf, True, False),
}


def _check_algo_values(algo_tree: Mapping[str, Any]) -> None:
    """Refuse non-finite numbers and out-of-range values of the usual hyperparameters, by name."""
    for key, value in algo_tree.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue  # schedules, strings ("auto_0.1"), dicts
        if not math.isfinite(value):
            raise UsageError(f"algo.{key}={value} is not a finite number; give a finite value")
        bounds = _ALGO_RANGES.get(key)
        if bounds is None:
            continue
        low, high, low_in, high_in = bounds
        ok_low = value >= low if low_in else value > low
        ok_high = value <= high if high_in else value < high
        if not (ok_low and ok_high):
            left, right = "[" if low_in else "(", "]" if high_in else ")"
            upper = "inf" if math.isinf(high) else f"{high:g}"
            raise UsageError(f"algo.{key}={value} must lie in {left}{low:g}, {upper}{right}")


def default_routing(algo: str) -> str:
    """``curl`` for SAC/TD3 so every arm (``none`` included) uses the same encoder routing."""
    return "curl" if algo in ("sac", "td3") else "auto"


def _apply_override(
    tree: dict[str, Any],
    key: str,
    value: Any,
    *,
    algo: str,
    preset: Any,
    sb3_params: dict[str, Any],
    aux_defaults: dict[str, Any],
) -> None:
    """Apply one ``--set key=value`` to the experiment tree, refusing unknown keys by name."""
    section, *path = key.split(".")
    if section == "env":
        if not path:
            raise _unknown_key(key, [f"env.{k}" for k in _flat_keys(tree["env"])], "env settings")
        # env.kwargs.* are the env constructor's own arguments: new ones are allowed (the
        # dry-run build checks them); every other env key must exist in the preset
        create = len(path) == 2 and path[0] == "kwargs" and isinstance(tree["env"].get("kwargs"), dict)
        _set_nested(tree["env"], "env", path, value, create=create, key=key, where=f"env preset {preset.name!r}")
    elif section == "algo":
        valid = ["policy", "n_envs", "routing", *sb3_params]
        if not path or path[0] not in valid:
            managed = _MANAGED_ALGO_KEYS.get(path[0]) if path else None
            if managed:
                raise UsageError(f"--set {key} is not allowed: {managed}")
            raise _unknown_key(key, [f"algo.{k}" for k in valid], f"algo {algo}")
        if len(path) > 1 and path[0] not in _DICT_ALGO_KEYS and not isinstance(tree["algo"].get(path[0]), dict):
            raise UsageError(f"--set {key}: algo.{path[0]} is not a dict setting")
        reference = tree["algo"].get(path[0], sb3_params.get(path[0]))
        if len(path) == 1:
            tree["algo"][path[0]] = _check_type(key, value, reference)
        else:
            _set_nested(tree["algo"], "algo", path, value, create=True, key=key, where=f"algo {algo}")
    elif section == "aux":
        if len(path) != 1 or path[0] not in aux_defaults:
            raise _unknown_key(key, [f"aux.{k}" for k in aux_defaults], "AuxConfig fields")
        tree["aux"][path[0]] = _check_type(key, value, tree["aux"].get(path[0], aux_defaults[path[0]]))
    elif section in ("eval", "probe"):
        if len(path) != 1 or path[0] not in tree[section]:
            raise _unknown_key(key, [f"{section}.{k}" for k in tree[section]], f"{section} settings")
        tree[section][path[0]] = _check_type(key, value, tree[section][path[0]])
    else:
        raise UsageError(
            f"unknown --set key {key!r}: the first part must be one of env, algo, aux, eval, probe "
            "(e.g. algo.learning_rate=3e-4, aux.tau=0.01, env.frame_stack=2)"
        )


def resolve_experiment(
    *,
    env: str | None,
    algo: str,
    steps: int | None = None,
    budget: str = "quick",
    sets: Iterable[str] = (),
    routing: str | None = None,
) -> ExperimentConfig:
    """Turn the command-line choices into a validated :class:`ExperimentConfig`.

    :param env: preset name or YAML path (default :data:`DEFAULT_ENV`).
    :param algo: ``ppo``, ``a2c``, ``sac``, ``td3`` or ``dqn``.
    :param steps: env steps per run; None takes the preset's ``budget``.
    :param budget: ``quick`` or ``full``.
    :param sets: ``key=value`` overrides.
    :param routing: encoder routing; None picks :func:`default_routing`.
    :return: the config.
    """
    if algo not in ALGO_NAMES:
        raise UsageError(f"unknown algo {algo!r}; choose from {', '.join(ALGO_NAMES)}")
    if budget not in ("quick", "full"):
        raise UsageError(f"unknown budget {budget!r}; use quick or full")
    source = env or DEFAULT_ENV
    preset = load_env_preset(source)
    _check_algo_fits(preset, algo)
    algo_section = _preset_algo(preset, algo)
    tree: dict[str, Any] = {
        "env": _preset_env(preset),
        "algo": {
            "policy": algo_section["policy"],
            "n_envs": algo_section["n_envs"],
            "routing": routing or default_routing(algo),
            **algo_section["hyperparams"],
        },
        "aux": dict(algo_section["aux"]),
        "eval": _preset_eval(preset),
        "probe": dataclasses.asdict(ProbeSettings()),
    }
    pairs = parse_set(sets)
    sb3_params = algo_parameters(algo)
    aux_defaults = {f.name: f.default for f in fields(AuxConfig) if f.name != "name"}
    for key, value in pairs:
        _apply_override(tree, key, value, algo=algo, preset=preset, sb3_params=sb3_params, aux_defaults=aux_defaults)

    algo_tree = tree["algo"]
    policy, n_envs, routing_value = algo_tree.pop("policy"), algo_tree.pop("n_envs"), algo_tree.pop("routing")
    if not isinstance(n_envs, int) or n_envs < 1:
        raise UsageError(f"algo.n_envs={n_envs!r} must be an integer >= 1")
    if routing_value not in ROUTINGS:
        raise UsageError(f"routing {routing_value!r} is not one of {', '.join(ROUTINGS)}")
    if not isinstance(policy, str):
        raise UsageError(f"algo.policy={policy!r} must be a policy name like CnnPolicy")
    _check_algo_values(algo_tree)
    evals = tree["eval"]
    if evals["freq"] < 1 or evals["n_episodes"] < 1:
        raise UsageError("eval.freq and eval.n_episodes must be >= 1")
    total = int(steps) if steps is not None else _preset_budget(preset, budget)
    if total < 1:
        raise UsageError(f"--steps must be >= 1, got {total}")
    try:
        probe = ProbeSettings(**tree["probe"]).validate()
    except TypeError as exc:
        raise UsageError(f"probe settings: {exc}") from exc
    config = ExperimentConfig(
        env_name=str(preset.name),
        env_source=source,
        preset=_preset_with_env(preset, tree["env"]) if tree["env"] != _preset_env(preset) else preset,
        algo=algo,
        policy=policy,
        n_envs=n_envs,
        routing=routing_value,
        hyperparams=algo_tree,
        aux_overrides=tree["aux"],
        eval_freq=int(evals["freq"]),
        eval_episodes=int(evals["n_episodes"]),
        probe=probe,
        steps=total,
        overrides=pairs,
    )
    # field names are checked above; values are checked per arm by the planners (aux_config)
    return config


def preset_kwargs(env: str, algo: str = "ppo", aux: str = "curl") -> dict[str, Any]:
    """The env preset's tuned settings for one algorithm and arm, as keyword arguments of its class.

    ``CurlPPO("CnnPolicy", env, **preset_kwargs("distractor-easy", "ppo", "curl"))`` trains with the
    hyperparameters, auxiliary overrides (e.g. the searched weight) and routing that
    ``curl-rl compare`` uses for that arm; pass ``n_envs`` of the preset to ``make_vec_env`` yourself
    (``curl-rl envs`` lists it). An ``action_noise`` given as a dict (TD3) is left out: build it
    for your env's action space.

    :param env: env preset name or YAML path.
    :param algo: ``ppo``, ``a2c``, ``sac``, ``td3`` or ``dqn``.
    :param aux: the arm (an auxiliary preset name).
    :return: keyword arguments (``aux``, ``routing`` and the algorithm's hyperparameters).
    """
    config = resolve_experiment(env=env, algo=algo)
    kwargs = config.model_kwargs()
    if isinstance(kwargs.get("action_noise"), dict):
        kwargs.pop("action_noise")
    return {**kwargs, "aux": config.aux_config(aux), "routing": config.routing}
