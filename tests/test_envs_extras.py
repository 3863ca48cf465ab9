"""Missing optional extras produce errors that name the pip command (no extras needed to run)."""

from __future__ import annotations

import importlib.metadata
import importlib.util

import pytest

from curl_rl.envs import MissingExtraError, make_env
from curl_rl.envs.extras import require_extra

_real_find_spec = importlib.util.find_spec


def _hide(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    def find_spec(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name in modules:
            return None
        return _real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.mark.parametrize(
    "preset,module,extra",
    [
        ("dmc-cheetah-run", "dm_control", "dmc"),
        ("atari-pong", "ale_py", "atari"),
        ("cartpole-pixels", "pygame", "classic"),
    ],
)
def test_missing_extra_names_install_command(
    monkeypatch: pytest.MonkeyPatch, preset: str, module: str, extra: str
) -> None:
    _hide(monkeypatch, module)
    with pytest.raises(ImportError) as err:
        make_env(preset, seed=0)
    assert isinstance(err.value, MissingExtraError)
    assert f'pip install "curl_rl[{extra}]"' in str(err.value)
    assert module in str(err.value)


def test_mujoco_4_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    if _real_find_spec("dm_control") is None or _real_find_spec("mujoco") is None:
        pytest.skip('needs the [dmc] extra: pip install "curl_rl[dmc]"')
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.0.0" if name == "mujoco" else real_version(name))
    with pytest.raises(ImportError, match=r'pip install "mujoco>=3,<4"'):
        require_extra("dmc", "test")
