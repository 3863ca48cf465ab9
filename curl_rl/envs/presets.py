"""Environment presets: one readable YAML file per environment, validated into :class:`EnvPreset`.

A preset says how to build the env (kind, id or domain/task, wrappers), how long to train
(``budgets``), how to evaluate, and per-algorithm settings in the RL Zoo's shape::

    name: distractor-easy
    description: One line shown by `curl-rl envs`.
    env: {kind: distractor, id: curl_rl/Distractor-v0, kwargs: {difficulty: 0.0},
          image_size: 64, grayscale: false, frame_stack: 1, action_repeat: 1, max_episode_steps: 100}
    budgets: {quick: 32768, full: 200000}      # env steps as SB3 counts them (agent steps)
    eval: {freq: 8192, n_episodes: 10}
    algos:
      ppo:
        policy: CnnPolicy
        n_envs: 8
        hyperparams: {n_steps: 128, ...}       # passed straight to the SB3 constructor
        aux: {crop_size: 56}                   # auxiliary-loss overrides, same for every aux arm

Bundled presets live in the top-level ``envs/`` folder of a checkout; wheels install the same
files under ``<prefix>/share/curl_rl/envs`` (see ``[tool.setuptools.data-files]``). Your own
presets are found by path (``--env my_envs/foo.yaml``) or, by name, in the folders listed in
``$CURL_RL_ENV_PATH`` (separated like ``$PATH``); a name found there shadows a bundled one.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import importlib.metadata
import inspect
import os
import site
import sys
import sysconfig
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

KINDS = ("distractor", "gym", "dmc", "atari")
#: SB3 algorithms a preset may configure, and the action spaces they accept.
ALGO_ACTION_SPACES: dict[str, tuple[str, ...]] = {
    "ppo": ("discrete", "continuous"),
    "a2c": ("discrete", "continuous"),
    "dqn": ("discrete",),
    "sac": ("continuous",),
    "td3": ("continuous",),
}
POLICIES = ("CnnPolicy", "MlpPolicy", "MultiInputPolicy")
DISTRACTOR_IDS = {"curl_rl/Distractor-v0": False, "curl_rl/DistractorContinuous-v0": True}

#: environment variable listing folders of your own preset files (``os.pathsep``-separated)
ENV_PATH_VAR = "CURL_RL_ENV_PATH"

_TOP_KEYS = {"name", "description", "env", "budgets", "eval", "algos", "notes"}
_ENV_KEYS = {
    "kind",
    "id",
    "domain",
    "task",
    "kwargs",
    "image_size",
    "grayscale",
    "frame_stack",
    "action_repeat",
    "max_episode_steps",
    "wrappers",
}
_ALGO_KEYS = {"policy", "n_envs", "hyperparams", "aux", "action_noise", "notes"}
_NOISE_TYPES = ("normal", "ornstein-uhlenbeck")


class PresetError(ValueError):
    """A preset file is missing, malformed, or asks for something unsupported."""


class _Section:
    """Attribute access plus read-only mapping access (``s.x`` and ``s["x"]``) for a dataclass."""

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """Value of ``key``, or ``default`` when it is not a field.

        :param key: field name.
        :param default: returned for unknown keys.
        """
        return getattr(self, key) if key in self.keys() else default

    def keys(self) -> list[str]:
        """Field names, in declaration order."""
        return [f.name for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the fields as a plain dict."""
        return copy.deepcopy(dataclasses.asdict(self))  # type: ignore[call-overload]


@dataclasses.dataclass
class EnvSection(_Section):
    """How to build the env.

    :param kind: ``distractor``, ``gym`` (any gymnasium id, from renders), ``dmc`` or ``atari``.
    :param id: gymnasium id (distractor, gym, atari).
    :param domain: dm_control domain (dmc).
    :param task: dm_control task (dmc).
    :param kwargs: extra keyword arguments for the env constructor / factory.
    :param image_size: side of the square observation image.
    :param grayscale: one luma channel per frame instead of RGB.
    :param frame_stack: frames stacked along channels, newest last.
    :param action_repeat: underlying steps per agent step (Atari: the frame skip).
    :param max_episode_steps: episode cap in agent steps (None: the env's own limit).
    :param wrappers: gymnasium wrappers put around the env as ``gym.make`` returns it, before the
        pixel wrappers (kind ``gym`` only), in order; each ``"module.Class"`` or
        ``{"class": "module.Class", "kwargs": {...}}`` (e.g. MiniGrid's ``RGBImgObsWrapper``).
    """

    kind: str
    id: str | None = None
    domain: str | None = None
    task: str | None = None
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    image_size: int = 84
    grayscale: bool = False
    frame_stack: int = 3
    action_repeat: int = 1
    max_episode_steps: int | None = None
    wrappers: list[dict[str, Any]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Budgets(_Section):
    """Training lengths in env steps as SB3 counts them (one call of the wrapped env's ``step``).

    :param quick: a run that shows progress in minutes on a laptop CPU (or the short standard
        benchmark, e.g. Atari-100k, DMC-100k).
    :param full: the standard long run.
    """

    quick: int
    full: int


@dataclasses.dataclass
class EvalSpec(_Section):
    """Evaluation schedule.

    :param freq: evaluate every this many env steps (SB3 timesteps).
    :param n_episodes: episodes per evaluation.
    """

    freq: int
    n_episodes: int


@dataclasses.dataclass
class EnvPreset:
    """A validated preset. Build envs from it with :func:`curl_rl.envs.make_env`.

    :param name: preset name (the file name without ``.yaml`` for bundled presets).
    :param description: one line.
    :param env: how to build the env.
    :param budgets: ``quick`` and ``full`` training lengths.
    :param eval: evaluation schedule.
    :param algos: per-algorithm entries: ``policy``, ``n_envs``, ``hyperparams`` (SB3 constructor
        kwargs), ``aux`` (auxiliary-loss overrides), optional ``action_noise``.
    :param raw: the parsed YAML, untouched.
    :param path: the file it came from.
    """

    name: str
    description: str
    env: EnvSection
    budgets: Budgets | None
    eval: EvalSpec
    algos: dict[str, dict[str, Any]]
    raw: dict[str, Any] = dataclasses.field(repr=False, default_factory=dict)
    path: Path | None = None

    @property
    def algorithms(self) -> list[str]:
        """Names of the algorithms this preset configures, sorted."""
        return sorted(self.algos)

    def algo_config(self, algo: str) -> dict[str, Any]:
        """The RL-Zoo-like entry for ``algo`` with defaults filled in (a deep copy).

        :param algo: algorithm name, case-insensitive (``ppo``, ``sac``, ...).
        :return: dict with ``policy``, ``n_envs``, ``hyperparams``, ``aux`` and ``action_noise``.
        :raises ValueError: if the preset does not configure ``algo``.
        """
        key = algo.lower()
        if key not in self.algos:
            raise ValueError(
                f"preset {self.name!r} has no settings for algorithm {algo!r}; "
                f"it supports: {', '.join(self.algorithms)}"
            )
        entry = copy.deepcopy(self.algos[key])
        entry.setdefault("policy", "CnnPolicy")
        entry.setdefault("n_envs", 1)
        entry.setdefault("hyperparams", {})
        entry.setdefault("aux", {})
        entry.setdefault("action_noise", None)
        return entry

    def budget(self, which: str) -> int:
        """``budgets.quick`` or ``budgets.full``.

        :param which: ``"quick"`` or ``"full"``.
        """
        if which not in ("quick", "full"):
            raise ValueError(f"budget must be 'quick' or 'full', got {which!r}")
        if self.budgets is None:
            raise ValueError(f"preset {self.name!r} has no budgets; give the number of steps (--steps)")
        return int(getattr(self.budgets, which))

    @property
    def frames_per_step(self) -> int:
        """Underlying env frames (physics control steps, Atari frames) per agent step."""
        return int(self.env.action_repeat)

    @property
    def action_space_type(self) -> str:
        """``"discrete"`` or ``"continuous"``, without rendering anything."""
        return _action_space_type(self.env)

    @property
    def state_dim(self) -> int | None:
        """Length of ``info["state"]`` (None when the env has no ground-truth state)."""
        return _state_dim(self.env)

    def to_dict(self) -> dict[str, Any]:
        """The preset as plain data (what a YAML file would hold)."""
        return {
            "name": self.name,
            "description": self.description,
            "env": self.env.to_dict(),
            "budgets": self.budgets.to_dict() if self.budgets is not None else None,
            "eval": self.eval.to_dict(),
            "algos": copy.deepcopy(self.algos),
        }


# ---------------------------------------------------------------------------- spaces and state
def _action_space_type(env: EnvSection) -> str:
    if env.kind == "distractor":
        continuous = bool(env.kwargs.get("continuous", DISTRACTOR_IDS.get(env.id or "", False)))
        return "continuous" if continuous else "discrete"
    if env.kind == "dmc":
        return "continuous"
    if env.kind == "atari":
        return "discrete"
    return _gym_action_space_type(env.id or "", _freeze(env.kwargs))


def _freeze(kwargs: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in kwargs.items()))


@functools.lru_cache(maxsize=64)
def _gym_spaces(env_id: str, frozen_kwargs: tuple[tuple[str, str], ...]) -> tuple[Any, Any]:
    import ast

    from curl_rl.envs.classic import raw_spaces

    kwargs = {k: ast.literal_eval(v) for k, v in frozen_kwargs}
    return raw_spaces(env_id, **kwargs)


def _gym_action_space_type(env_id: str, frozen_kwargs: tuple[tuple[str, str], ...]) -> str:
    from gymnasium import spaces

    _, action_space = _gym_spaces(env_id, frozen_kwargs)
    return "discrete" if isinstance(action_space, spaces.Discrete) else "continuous"


def _state_dim(env: EnvSection) -> int | None:
    import numpy as np

    if env.kind == "distractor":
        from curl_rl.envs.distractor import STATE_DIM

        return STATE_DIM
    if env.kind == "atari":
        return None
    if env.kind == "dmc":
        from curl_rl.envs.dmc import DMC_STATE_DIMS

        known = DMC_STATE_DIMS.get((env.domain or "", env.task or ""))
        if known is not None:
            return known
        try:
            from dm_control import suite
        except ImportError:
            return None
        spec = suite.load(env.domain, env.task).observation_spec()
        return sum(int(np.prod(s.shape)) for s in spec.values())
    from gymnasium import spaces

    obs_space, _ = _gym_spaces(env.id or "", _freeze(env.kwargs))
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) == 3:
        return None  # an image env: its state is whatever it puts in info["state"], if anything
    return int(np.prod(obs_space.shape))


# ---------------------------------------------------------------------------- finding presets
def _repo_presets_dir() -> Path | None:
    root = Path(__file__).resolve().parents[2]
    candidate = root / "envs"
    # The pyproject check keeps an unrelated "envs" folder beside site-packages from being used.
    if candidate.is_dir() and (root / "pyproject.toml").is_file():
        return candidate
    return None


def _installed_presets_dirs() -> list[Path]:
    dirs: list[Path] = []
    try:
        files = importlib.metadata.distribution("curl_rl").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for f in files:
        parts = Path(str(f)).parts
        if len(parts) >= 3 and parts[-3:-1] == ("curl_rl", "envs") and f.name.endswith(".yaml"):
            dirs.append(Path(str(f.locate())).resolve().parent)
            break
    prefixes = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None)]
    dirs.extend(Path(p) / "share" / "curl_rl" / "envs" for p in prefixes if p)
    return dirs


def bundled_presets_dir() -> Path:
    """The folder holding the bundled preset files (checkout or installed wheel).

    :raises FileNotFoundError: if neither a checkout's ``envs/`` nor installed data is found.
    """
    candidates = [d for d in (_repo_presets_dir(), *_installed_presets_dirs()) if d is not None]
    for d in candidates:
        if d.is_dir() and any(d.glob("*.yaml")):
            return d
    raise FileNotFoundError("no bundled curl_rl presets found; looked in: " + ", ".join(str(d) for d in candidates))


def user_presets_dirs() -> list[Path]:
    """The folders named in ``$CURL_RL_ENV_PATH``, in order.

    :raises PresetError: for an entry that is not a folder (a typo would otherwise hide presets).
    """
    dirs = []
    for entry in os.environ.get(ENV_PATH_VAR, "").split(os.pathsep):
        if not entry.strip():
            continue
        folder = Path(entry).expanduser()
        if not folder.is_dir():
            raise PresetError(f"${ENV_PATH_VAR} names {folder}, which is not a folder; fix or unset it")
        dirs.append(folder)
    return dirs


def _preset_files() -> dict[str, Path]:
    """Name -> file over the bundled folder and ``$CURL_RL_ENV_PATH`` (the earliest user folder wins)."""
    files = {p.stem: p for p in sorted(bundled_presets_dir().glob("*.yaml"))}
    for folder in reversed(user_presets_dirs()):
        files.update({p.stem: p for p in sorted(folder.glob("*.yaml"))})
    return files


def list_presets() -> dict[str, str]:
    """Every preset known by name (bundled and ``$CURL_RL_ENV_PATH``) with its one-line description.

    :return: ``{name: description}``, sorted by name.
    """
    out: dict[str, str] = {}
    for name, path in _preset_files().items():
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        out[name] = str(data.get("description", "")).strip() if isinstance(data, dict) else ""
    return dict(sorted(out.items()))


def _looks_like_path(value: str | os.PathLike[str]) -> bool:
    if isinstance(value, os.PathLike):
        return True
    return value.endswith((".yaml", ".yml")) or os.sep in value or "/" in value


def load_preset(name_or_path: str | os.PathLike[str]) -> EnvPreset:
    """Load a preset by name (bundled or in ``$CURL_RL_ENV_PATH``), or a user's preset file by path.

    :param name_or_path: e.g. ``"distractor-easy"`` or ``"my_presets/foo.yaml"``.
    :return: the validated preset.
    :raises ValueError: unknown name (the message lists the bundled presets) or invalid file
        (:class:`PresetError`, a ``ValueError``, naming the field).
    """
    if isinstance(name_or_path, EnvPreset):
        return name_or_path
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise PresetError(f"preset file not found: {path}")
        return _load_file(path, default_name=path.stem)
    name = str(name_or_path)
    files = _preset_files()
    if name not in files:
        if Path(name).is_file():
            return _load_file(Path(name), default_name=Path(name).stem)
        close = difflib.get_close_matches(name, list(files), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"unknown env preset {name!r}.{hint} Available presets: {', '.join(files)}. "
            f"You can also pass the path of your own preset YAML file, or put it in a folder named in ${ENV_PATH_VAR}."
        )
    return _load_file(files[name], default_name=name)


def _load_file(path: Path, default_name: str) -> EnvPreset:
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as err:
        raise PresetError(f"{path}: not valid YAML: {err}") from err
    return parse_preset(data, source=str(path), default_name=default_name, path=path)


# ---------------------------------------------------------------------------- validation
def _check_keys(where: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise PresetError(f"{where}: unknown field(s) {', '.join(hints)}; allowed: {', '.join(sorted(allowed))}")


def _int(where: str, value: Any, minimum: int = 1, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    # YAML reads 1e5 as a string and 100_000 as an int; accept integral floats like 1.0e5 too.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise PresetError(f"{where} must be an integer >= {minimum}, got {value!r}")
    return value


def _dict(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PresetError(f"{where} must be a mapping, got {type(value).__name__}: {value!r}")
    return value


#: keywords the Curl algorithm classes add to their SB3 parent's (presets may set them);
#: tests/test_envs_presets.py checks this against the classes' signatures
CURL_RL_ALGO_PARAMS: dict[str, frozenset[str]] = {
    "sac": frozenset({"encoder_tau", "actor_update_freq", "alpha_lr", "alpha_betas", "key_encoder"}),
}


@functools.lru_cache(maxsize=16)
def sb3_constructor_params(algo: str) -> frozenset[str]:
    """Keyword arguments an SB3 algorithm's constructor accepts (besides ``policy`` and ``env``).

    :param algo: ``ppo``, ``a2c``, ``dqn``, ``sac`` or ``td3``.
    """
    import stable_baselines3 as sb3

    cls = getattr(sb3, algo.upper())
    params = inspect.signature(cls.__init__).parameters
    own = frozenset(p for p in params if p not in ("self", "policy", "env"))
    return own | CURL_RL_ALGO_PARAMS.get(algo, frozenset())


def _check_env(where: str, raw: Any) -> EnvSection:
    env = _dict(where, raw)
    _check_keys(where, env, _ENV_KEYS)
    kind = env.get("kind")
    if kind not in KINDS:
        raise PresetError(f"{where}.kind must be one of {', '.join(KINDS)}, got {kind!r}")
    section = EnvSection(
        kind=kind,
        id=env.get("id"),
        domain=env.get("domain"),
        task=env.get("task"),
        kwargs=_dict(f"{where}.kwargs", env.get("kwargs")),
        image_size=_int(f"{where}.image_size", env.get("image_size", 84), minimum=8) or 84,
        grayscale=env.get("grayscale", False),
        frame_stack=_int(f"{where}.frame_stack", env.get("frame_stack", 3)) or 1,
        action_repeat=_int(f"{where}.action_repeat", env.get("action_repeat", 1)) or 1,
        max_episode_steps=_int(f"{where}.max_episode_steps", env.get("max_episode_steps"), allow_none=True),
        wrappers=_check_wrappers(f"{where}.wrappers", env.get("wrappers"), kind),
    )
    if not isinstance(section.grayscale, bool):
        raise PresetError(f"{where}.grayscale must be true or false, got {section.grayscale!r}")
    if kind == "dmc":
        if not (isinstance(section.domain, str) and isinstance(section.task, str)):
            raise PresetError(f"{where}: kind 'dmc' needs 'domain' and 'task' (e.g. cheetah / run)")
    elif not isinstance(section.id, str) or not section.id:
        if kind == "distractor":
            section.id = "curl_rl/Distractor-v0"
        else:
            raise PresetError(f"{where}: kind {kind!r} needs a gymnasium 'id'")
    if kind == "distractor" and section.id not in DISTRACTOR_IDS:
        raise PresetError(f"{where}.id must be one of {', '.join(DISTRACTOR_IDS)}, got {section.id!r}")
    if kind == "atari" and not section.grayscale:
        raise PresetError(f"{where}.grayscale must be true for Atari (SB3's WarpFrame is grayscale)")
    return section


def _check_wrappers(where: str, raw: Any, kind: Any) -> list[dict[str, Any]]:
    """``wrappers:`` as ``[{"class": dotted name, "kwargs": {...}}]`` (imported when the env is built)."""
    if raw is None or raw == []:
        return []
    if kind != "gym":
        raise PresetError(f"{where}: wrappers are supported for kind 'gym' (the others build their own stack)")
    if not isinstance(raw, list):
        raise PresetError(f"{where} must be a list of 'module.Class' or {{class: module.Class, kwargs: {{...}}}}")
    out = []
    for i, item in enumerate(raw):
        entry = {"class": item, "kwargs": {}} if isinstance(item, str) else item
        if not isinstance(entry, dict):
            raise PresetError(f"{where}[{i}] must be 'module.Class' or a mapping with 'class' and 'kwargs'")
        _check_keys(f"{where}[{i}]", entry, {"class", "kwargs"})
        name = entry.get("class")
        if not isinstance(name, str) or "." not in name.strip("."):
            raise PresetError(f"{where}[{i}].class must be a dotted name like gymnasium.wrappers.ClipReward")
        out.append({"class": name, "kwargs": _dict(f"{where}[{i}].kwargs", entry.get("kwargs"))})
    return out


def _check_algo(where: str, algo: str, raw: Any, space_type: str | None) -> dict[str, Any]:
    if algo not in ALGO_ACTION_SPACES:
        raise PresetError(
            f"{where}: unsupported algorithm {algo!r}; supported: {', '.join(sorted(ALGO_ACTION_SPACES))}"
        )
    entry = _dict(where, raw)
    _check_keys(where, entry, _ALGO_KEYS)
    policy = entry.get("policy", "CnnPolicy")
    if policy not in POLICIES:
        raise PresetError(f"{where}.policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    _int(f"{where}.n_envs", entry.get("n_envs", 1))
    hyper = _dict(f"{where}.hyperparams", entry.get("hyperparams"))
    valid = sb3_constructor_params(algo)
    for key in hyper:
        if key not in valid:
            close = difflib.get_close_matches(str(key), sorted(valid), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PresetError(
                f"{where}.hyperparams: {key!r} is not a keyword of stable_baselines3.{algo.upper()}{hint}"
            )
    _dict(f"{where}.policy_kwargs", hyper.get("policy_kwargs"))
    _dict(f"{where}.aux", entry.get("aux"))
    noise = entry.get("action_noise")
    if noise is not None:
        noise = _dict(f"{where}.action_noise", noise)
        _check_keys(f"{where}.action_noise", noise, {"type", "std"})
        if noise.get("type", "normal") not in _NOISE_TYPES:
            raise PresetError(f"{where}.action_noise.type must be one of {', '.join(_NOISE_TYPES)}")
        std = noise.get("std", 0.1)
        if isinstance(std, bool) or not isinstance(std, int | float) or std < 0:
            raise PresetError(f"{where}.action_noise.std must be a number >= 0, got {std!r}")
    if space_type is not None and space_type not in ALGO_ACTION_SPACES[algo]:
        raise PresetError(
            f"{where}: {algo.upper()} needs a {' or '.join(ALGO_ACTION_SPACES[algo])} action space, "
            f"but this env's actions are {space_type}"
        )
    return entry


def parse_preset(
    data: Any, source: str = "<preset>", default_name: str | None = None, path: Path | None = None
) -> EnvPreset:
    """Validate parsed YAML and build an :class:`EnvPreset`.

    Every section is checked, and all problems are reported together (one fix-and-rerun round,
    not one per problem).

    :param data: the parsed YAML document.
    :param source: where it came from, for error messages.
    :param default_name: name used when the document has no ``name``.
    :param path: file path to record on the preset.
    :return: the preset.
    :raises PresetError: listing every offending field.
    """
    if not isinstance(data, dict):
        raise PresetError(f"{source}: a preset must be a YAML mapping, got {type(data).__name__}")
    problems: list[str] = []

    def check(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except PresetError as exc:
            problems.append(str(exc))
            return None

    check(_check_keys, source, data, _TOP_KEYS)
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        problems.append(f"{source}: 'name' must be a non-empty string")
    description = data.get("description")
    if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
        problems.append(f"{source}: 'description' must be a one-line string")
    env = check(_check_env, f"{source}: env", data.get("env"))
    budgets = check(_check_budgets, source, data.get("budgets"))
    evaluation = check(_check_eval, source, data.get("eval"))
    algos_raw = check(_dict, f"{source}: algos", data.get("algos")) or {}
    if not algos_raw and not any("algos" in p for p in problems):
        problems.append(f"{source}: 'algos' must configure at least one algorithm (e.g. algos: {{ppo: {{}}}})")
    space_type: str | None = None
    if env is not None:
        try:
            space_type = _action_space_type(env)
        except Exception:
            # A gym id from a package that is not installed: the check runs at make_env instead.
            space_type = None
    algos = {}
    for key, value in algos_raw.items():
        entry = check(_check_algo, f"{source}: algos.{key}", str(key).lower(), value, space_type)
        if entry is not None:
            algos[str(key).lower()] = entry
    if problems:
        head = f"{len(problems)} problems:\n  " if len(problems) > 1 else ""
        raise PresetError(head + "\n  ".join(problems))
    return EnvPreset(
        name=str(name),
        description=str(description).strip(),
        env=env,
        budgets=budgets,
        eval=evaluation,
        algos=algos,
        raw=copy.deepcopy(data),
        path=path,
    )


def _check_budgets(source: str, raw: Any) -> Budgets | None:
    """Optional: without budgets, every run gives its length (``--steps``)."""
    if raw is None:
        return None
    budgets_raw = _dict(f"{source}: budgets", raw)
    _check_keys(f"{source}: budgets", budgets_raw, {"quick", "full"})
    quick = _int(f"{source}: budgets.quick", budgets_raw.get("quick")) or 1
    full = _int(f"{source}: budgets.full", budgets_raw.get("full", quick)) or 1
    if quick > full:
        raise PresetError(f"{source}: budgets.quick ({quick}) is larger than budgets.full ({full})")
    return Budgets(quick=quick, full=full)


def _check_eval(source: str, raw: Any) -> EvalSpec:
    eval_raw = _dict(f"{source}: eval", raw)
    _check_keys(f"{source}: eval", eval_raw, {"freq", "n_episodes"})
    return EvalSpec(
        freq=_int(f"{source}: eval.freq", eval_raw.get("freq", 10_000)) or 1,
        n_episodes=_int(f"{source}: eval.n_episodes", eval_raw.get("n_episodes", 10)) or 1,
    )


def make_action_noise(spec: Mapping[str, Any] | None, action_dim: int) -> Any:
    """Build the SB3 action noise an algo entry's ``action_noise`` describes (TD3/SAC).

    :param spec: ``{type: normal | ornstein-uhlenbeck, std: 0.1}`` or None.
    :param action_dim: size of the action vector.
    :return: an SB3 ``ActionNoise`` or None.
    """
    if not spec:
        return None
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise

    std = float(spec.get("std", 0.1))
    mean, sigma = np.zeros(action_dim), std * np.ones(action_dim)
    if spec.get("type", "normal") == "ornstein-uhlenbeck":
        return OrnsteinUhlenbeckActionNoise(mean=mean, sigma=sigma)
    return NormalActionNoise(mean=mean, sigma=sigma)
