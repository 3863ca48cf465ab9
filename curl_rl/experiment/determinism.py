"""Random-number state: capture and restore every generator a run draws from, and strict modes.

A training run draws from five kinds of generator: Python's ``random``, NumPy's global
generator, torch's CPU (and CUDA) generators, the action space's generator (random exploration
before ``learning_starts``) and each environment's ``np_random``. The auxiliary head's
augmentation generator is not here: it is module state of the head and travels with the model
(``AuxiliaryHead.get_extra_state``).

Captured states are made of tensors, numbers, strings, tuples and dicts only, so
``torch.load(..., weights_only=True)`` can read them back (no pickled code).
"""

from __future__ import annotations

import functools
import os
import platform
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["capture_rng_state", "configure_determinism", "restore_rng_state"]

# the bit generators a NumPy Generator may be rebuilt from (a name read from a file picks one)
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


def _to_safe(value: Any) -> Any:
    """Turn NumPy arrays (inside dicts/tuples) into tensors plus dtype, for ``weights_only``."""
    if isinstance(value, np.ndarray):
        return {"__ndarray__": torch.from_numpy(value.astype(np.int64)), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _to_safe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_to_safe(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def _from_safe(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return value["__ndarray__"].numpy().astype(np.dtype(value["dtype"]))
        return {k: _from_safe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_from_safe(v) for v in value)
    return value


def generator_state(gen: np.random.Generator) -> dict[str, Any]:
    """Serialisable state of a NumPy ``Generator``.

    :param gen: the generator.
    :return: its bit generator's state (a dict naming the bit generator).
    """
    return _to_safe(gen.bit_generator.state)


def make_generator(state: dict[str, Any]) -> np.random.Generator:
    """Rebuild a NumPy ``Generator`` from :func:`generator_state`'s output.

    :param state: the saved state.
    :return: a new generator in exactly that state.
    """
    raw = _from_safe(state)
    name = raw["bit_generator"]
    if name not in _BIT_GENERATORS:
        raise ValueError(
            f"unknown NumPy bit generator {name!r} in a saved RNG state; expected one of {_BIT_GENERATORS}"
        )
    bit_gen = getattr(np.random, name)()
    bit_gen.state = raw
    return np.random.Generator(bit_gen)


def _space_state(space: Any) -> dict[str, Any] | None:
    gen = getattr(space, "np_random", None)
    return generator_state(gen) if isinstance(gen, np.random.Generator) else None


def _env_states(env: Any) -> list[dict[str, Any]] | None:
    if env is None:
        return None
    try:
        gens = env.get_attr("np_random")
    except Exception:
        return None
    if not all(isinstance(g, np.random.Generator) for g in gens):
        return None
    return [generator_state(g) for g in gens]


def capture_rng_state(model: Any = None) -> dict[str, Any]:
    """Snapshot of every random generator a training run draws from.

    :param model: an SB3 algorithm; adds its action space's and its env's generators when given.
    :return: a dict of tensors, numbers and strings (readable with ``weights_only=True``).
    """
    # the legacy global generator is the one SB3 seeds and third-party code draws from
    np_state = np.random.get_state(legacy=False)  # noqa: NPY002
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _to_safe(np_state),
        "torch": torch.get_rng_state(),
        # only when CUDA was used: querying it otherwise would initialise CUDA for nothing
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None,
    }
    if model is not None:
        state["action_space"] = _space_state(model.action_space)
        state["env"] = _env_states(model.get_env())
    return state


def restore_rng_state(state: dict[str, Any], model: Any = None) -> list[str]:
    """Put the generators back into a captured state.

    Environment generators are restored only when the env has as many sub-envs as were saved.
    When it is restored, any reset seed queued on the VecEnv (``VecEnv.seed``, which SB3's
    ``load`` calls through ``set_random_seed``) is dropped, so the next ``reset()`` continues the
    saved random stream instead of replaying the run's first episodes.

    :param state: output of :func:`capture_rng_state`.
    :param model: the SB3 algorithm whose action space and env to restore.
    :return: names of the parts that could not be restored (e.g. ``["env"]``).
    """
    skipped: list[str] = []
    random.setstate(_tuple_tree(state["python"]))
    np.random.set_state(_from_safe(state["numpy"]))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(state["cuda"]):
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            skipped.append("cuda")
    if model is None:
        return skipped
    space_state = state.get("action_space")
    if space_state is not None:
        # gymnasium spaces have no np_random setter; the private slot is what seed() fills
        model.action_space._np_random = make_generator(space_state)
    env_states = state.get("env")
    env = model.get_env()
    if env_states is not None:
        if env is not None and env.num_envs == len(env_states):
            _drop_queued_seeds(env)
            for i, env_state in enumerate(env_states):
                env.set_attr("np_random", make_generator(env_state), indices=[i])
        else:
            skipped.append("env")
    return skipped


def _tuple_tree(value: Any) -> Any:
    # random.setstate needs tuples; a round trip through some serialisers yields lists
    if isinstance(value, list | tuple):
        return tuple(_tuple_tree(v) for v in value)
    return value


def _drop_queued_seeds(env: Any) -> None:
    # VecEnv.seed() only queues seeds for the next reset(); wrappers (VecTransposeImage, ...)
    # forward seed() to the innermost VecEnv, which is where the queue lives
    inner = env
    while hasattr(inner, "venv"):
        inner = inner.venv
    reset_seeds = getattr(inner, "_reset_seeds", None)
    if callable(reset_seeds):
        reset_seeds()


def configure_determinism(strict: bool = True, warn_only: bool = False) -> None:
    """Ask torch for deterministic kernels (matters on GPU; CPU training is already deterministic).

    Call before the model is built. On CUDA this sets ``CUBLAS_WORKSPACE_CONFIG`` (effective only
    if CUDA has not been initialised yet), disables cuDNN autotuning and makes every op either
    deterministic or raise (``warn_only=True``: warn instead). Slower on GPU.

    :param strict: turn the deterministic mode on (``False`` turns it off again).
    :param warn_only: warn instead of raising on ops without a deterministic implementation.
    """
    if strict:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(strict, warn_only=warn_only)
    torch.backends.cudnn.deterministic = strict
    torch.backends.cudnn.benchmark = not strict and torch.backends.cudnn.benchmark


def versions() -> dict[str, str]:
    """Versions of the libraries that decide the numbers of a run (written with runs and checkpoints)."""
    import gymnasium
    import stable_baselines3

    import curl_rl

    return {
        "curl_rl": curl_rl.__version__,
        # one version number covers many commits, and a study that grows across sessions mixes them
        "curl_rl_source": source_commit(Path(curl_rl.__file__).parent),
        "stable_baselines3": stable_baselines3.__version__,
        "torch": str(torch.__version__),
        "gymnasium": gymnasium.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(terse=True),
        # the kernels torch picks on a CPU follow its vector extensions, and PPO trajectories part
        # on such last-bit differences: two machines gave different runs for one seed and command
        "cpu": _cpu_model(),
        "torch_cpu_capability": str(torch.backends.cpu.get_cpu_capability()),
        "torch_threads": str(torch.get_num_threads()),
    }


@functools.cache
def source_commit(package_dir: Path) -> str:
    """The git commit a package was imported from, ``+modified`` when its tracked files differ from it.

    :param package_dir: the package's folder.
    :return: e.g. ``81e38cc`` or ``81e38cc+modified``; ``unknown (not a git checkout)`` for an
        installed wheel, or where git is missing.
    """
    try:
        head = subprocess.run(
            ["git", "-C", str(package_dir), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        changed = subprocess.run(
            ["git", "-C", str(package_dir), "status", "--porcelain", "--untracked-files=no", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + ("+modified" if changed.stdout.strip() else "")


@functools.cache
def _cpu_model() -> str:
    # read once per process: versions() is written with every checkpoint
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
