"""RL Baselines3 Zoo integration: the Curl algorithms under their own names, with hyperparameter search.

``curl-rl zoo train --algo curl_ppo --env curl_rl/Distractor-v0`` is ``python -m rl_zoo3.train``
with five more algorithms (``curl_ppo``, ``curl_a2c``, ``curl_sac``, ``curl_td3``, ``curl_dqn``)
and, for ``curl_ppo``, a bundled hyperparameter file (``zoo_hyperparams/``), used when no
``--conf-file`` is given. A zoo hyperparameter entry takes an ``aux:`` block, passed to the
class as its ``aux`` argument (a dict naming its ``preset``, as everywhere in curl_rl)::

    curl_rl/Distractor-v0:
      policy: CnnPolicy
      n_envs: 8
      n_timesteps: 32768
      aux: {preset: curl, weight: 0.01, crop_size: 56}

From Python, call :func:`register` once, then use rl_zoo3 as usual (``rl_zoo3.train.train()``).

Hyperparameter search (``-optimize``) samples the zoo's own parameters for the base algorithm
(``sample_ppo_params`` for ``curl_ppo``) plus the auxiliary weight, log-uniform on
:data:`AUX_WEIGHT_RANGE`. The sampled weight is merged into the entry's ``aux:`` block (the zoo's
samplers replace whole keys, which would drop e.g. the crop size); the block itself is stored in
each trial's parameters as ``aux_base`` (JSON), so a trial reloaded with ``--trial-id`` builds the
same auxiliary config from the study alone. Without an ``aux:`` block the search uses
:data:`DEFAULT_SEARCH_PRESET`.

rl_zoo3 is an optional dependency (``pip install curl_rl[zoo]``); importing this module without it
raises an ImportError that says so.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

try:
    import rl_zoo3
    import rl_zoo3.exp_manager
    import rl_zoo3.hyperparams_opt as zoo_opt
    import rl_zoo3.train
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the RL Zoo integration needs rl_zoo3: pip install 'curl_rl[zoo]'") from exc

from curl_rl.algos import ALGOS

#: zoo name -> curl_rl algorithm key; the zoo name is the base algorithm's zoo name with ``curl_``
ZOO_NAMES = {f"curl_{algo}": algo for algo in ALGOS}

#: log-uniform range of the auxiliary weight in hyperparameter search (the distractor-easy searches
#: chose 0.03, then 0.01; the presets' default is 1)
AUX_WEIGHT_RANGE = (1e-3, 1.0)

#: auxiliary preset searched when the hyperparameter entry has no ``aux:`` block
DEFAULT_SEARCH_PRESET = "curl"

#: bundled hyperparameter files, one per zoo algorithm name
HYPERPARAMS_DIR = Path(__file__).with_name("zoo_hyperparams")

Sampler = Callable[..., dict[str, Any]]
Converter = Callable[[dict[str, Any]], dict[str, Any]]

# The entry's aux block, for the sampler: the zoo calls samplers with (trial, n_actions, n_envs,
# additional_args) only, so the manager hands it over around its objective().
_ENTRY_AUX: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("entry_aux", default=None)


def _aux_block(base: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if base is None:
        return {"preset": DEFAULT_SEARCH_PRESET}
    if isinstance(base, str):
        return {"preset": base}
    return dict(base)


def convert_aux_params(base_converter: Converter) -> Converter:
    """Wrap a zoo converter: ``aux_base`` and ``aux_weight`` become the ``aux`` argument.

    :param base_converter: the base algorithm's converter (e.g. ``convert_onpolicy_params``).
    :return: a converter from a trial's parameters to keyword arguments of the Curl class.
    """

    def convert(sampled_params: dict[str, Any]) -> dict[str, Any]:
        params = dict(sampled_params)
        aux = _aux_block(json.loads(params.pop("aux_base", "null")))
        if "aux_weight" in params:
            aux["weight"] = params.pop("aux_weight")
        return {**base_converter(params), "aux": aux}

    return convert


def sample_aux_params(base_sampler: Sampler) -> Sampler:
    """Wrap a zoo sampler: the base algorithm's parameters plus the auxiliary weight.

    :param base_sampler: the base algorithm's sampler (e.g. ``sample_ppo_params``).
    :return: a sampler with the zoo's signature.
    """

    def sample(trial: Any, n_actions: int, n_envs: int, additional_args: dict) -> dict[str, Any]:
        sampled = base_sampler(trial, n_actions, n_envs, additional_args)
        # one choice: recorded in trial.params (what --trial-id reloads), not searched
        base = trial.suggest_categorical("aux_base", [json.dumps(_aux_block(_ENTRY_AUX.get()), sort_keys=True)])
        weight = trial.suggest_float("aux_weight", *AUX_WEIGHT_RANGE, log=True)
        aux = convert_aux_params(_identity)({"aux_base": base, "aux_weight": weight})["aux"]
        return {**sampled, "aux": aux}

    return sample


class CurlExperimentManager(rl_zoo3.exp_manager.ExperimentManager):
    """The zoo's experiment manager; hands each trial's sampler the entry's ``aux:`` block."""

    def objective(self, trial: Any) -> float:
        token = _ENTRY_AUX.set(self._hyperparams.get("aux"))
        try:
            return super().objective(trial)
        finally:
            _ENTRY_AUX.reset(token)


def _identity(params: dict[str, Any]) -> dict[str, Any]:
    return params


def register() -> None:
    """Add the Curl algorithms, their samplers and converters to rl_zoo3's registries (idempotent)."""
    # the zoo types each table by its first entry's exact function type
    samplers = cast(dict[str, Any], zoo_opt.HYPERPARAMS_SAMPLER)
    converters = cast(dict[str, Any], zoo_opt.HYPERPARAMS_CONVERTER)
    for zoo_name, algo in ZOO_NAMES.items():
        rl_zoo3.ALGOS[zoo_name] = ALGOS[algo]
        converters[zoo_name] = convert_aux_params(converters.get(algo, _identity))
        samplers[zoo_name] = sample_aux_params(samplers[algo])
    # the samplers need the manager's hand-over; train() builds the manager by this module name
    rl_zoo3.train.ExperimentManager = CurlExperimentManager  # type: ignore[misc, unused-ignore]


def _option(argv: Sequence[str], *names: str) -> str | None:
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def bundled_conf_file(algo: str) -> Path | None:
    """The bundled hyperparameter file of a zoo algorithm name, if curl_rl ships one."""
    path = HYPERPARAMS_DIR / f"{algo}.yml"
    return path if path.is_file() else None


def zoo_argv(argv: Sequence[str]) -> list[str]:
    """The arguments for rl_zoo3's script, with the bundled ``--conf-file`` added for Curl algorithms.

    :param argv: ``SCRIPT [zoo options]``, e.g. ``["train", "--algo", "curl_ppo", ...]``.
    :return: the same arguments, with ``--conf-file`` added where curl_rl bundles one.
    :raises ValueError: a Curl algorithm without a bundled file and without ``--conf-file``.
    """
    args = list(argv)
    algo = _option(args, "--algo")
    if not args or args[0] != "train" or algo not in ZOO_NAMES or _option(args, "--conf-file", "-conf"):
        return args
    conf = bundled_conf_file(algo)
    if conf is None:
        bundled = sorted(p.stem for p in HYPERPARAMS_DIR.glob("*.yml"))
        raise ValueError(
            f"curl_rl bundles no hyperparameters for {algo} (only for {', '.join(bundled)}); pass "
            f"--conf-file your.yml with an entry for your env (see the README's RL Zoo section)"
        )
    return [*args, "--conf-file", str(conf)]


#: ``curl-rl zoo SCRIPT``: rl_zoo3's scripts, as ``rl_zoo3.cli`` names them (module, function)
SCRIPTS = {
    "train": ("rl_zoo3.train", "train"),
    "enjoy": ("rl_zoo3.enjoy", "enjoy"),
    # the plots need seaborn, which rl_zoo3 does not install; imported only when asked for
    "plot_train": ("rl_zoo3.plots", "plot_train"),
    "plot_from_file": ("rl_zoo3.plots", "plot_from_file"),
    "all_plots": ("rl_zoo3.plots", "all_plots"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """``curl-rl zoo SCRIPT ...``: rl_zoo3's ``train``, ``enjoy`` and plot scripts, with Curl algorithms.

    :param argv: ``SCRIPT [zoo options]`` (default ``sys.argv[1:]``).
    :return: the exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in SCRIPTS:
        print(f"usage: curl-rl zoo {{{','.join(SCRIPTS)}}} [rl_zoo3 options]", file=sys.stderr if args else sys.stdout)
        print("rl_zoo3's scripts with curl_ppo, curl_a2c, curl_sac, curl_td3 and curl_dqn added; see the README")
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    try:
        args = zoo_argv(args)
    except ValueError as exc:
        print(f"curl-rl zoo: error: {exc}", file=sys.stderr)
        return 2
    register()
    module, function = SCRIPTS[args[0]]
    script = getattr(importlib.import_module(module), function)
    saved = sys.argv
    # rl_zoo3's scripts parse sys.argv themselves
    sys.argv = [f"curl-rl zoo {args[0]}", *args[1:]]
    try:
        script()
    finally:
        sys.argv = saved
    return 0
