"""Checks for the optional extras (``[dmc]``, ``[atari]``, ``[classic]``) with actionable errors.

Importing ``curl_rl.envs`` never imports these packages; the checks run only when an env that
needs one is built, and look modules up with ``find_spec`` so they stay cheap.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

#: extra name -> modules it provides (import names).
EXTRA_MODULES: dict[str, tuple[str, ...]] = {
    "dmc": ("dm_control", "mujoco"),
    "atari": ("ale_py", "cv2"),
    "classic": ("pygame",),
}


class MissingExtraError(ImportError):
    """An optional dependency group is not installed; the message names the pip command.

    :param extra: the extra's name (e.g. ``"dmc"``).
    :param what: what was being built, for the message.
    :param missing: the import names that were not found.
    """

    def __init__(self, extra: str, what: str, missing: list[str]) -> None:
        self.extra = extra
        self.missing = missing
        super().__init__(
            f"{what} needs the optional extra [{extra}] (missing: {', '.join(missing)}). "
            f'Install it with: pip install "curl_rl[{extra}]"'
        )


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``extra`` is importable.

    :param extra: one of :data:`EXTRA_MODULES`.
    :param what: what needs it (e.g. ``"preset 'dmc-cheetah-run'"``), for the message.
    """
    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(extra, what, missing)
    if extra == "dmc":
        _check_mujoco_version()


def _check_mujoco_version() -> None:
    # mujoco 4 breaks dm_control 1.0.x at the first render; fail early with the fix instead.
    try:
        version = importlib.metadata.version("mujoco")
    except importlib.metadata.PackageNotFoundError:
        return
    major = version.split(".", 1)[0]
    if major.isdigit() and int(major) >= 4:
        raise ImportError(
            f"mujoco {version} is installed but dm_control needs mujoco < 4. "
            'Install a compatible version with: pip install "mujoco>=3,<4" (or pip install "curl_rl[dmc]")'
        )
