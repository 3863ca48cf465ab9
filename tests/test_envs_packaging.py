"""The bundled presets ship in the wheel (data-files) and are found after installation."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from curl_rl.envs import list_presets
from curl_rl.envs.presets import _installed_presets_dirs

ROOT = Path(__file__).parents[1]


def test_pyproject_ships_every_preset() -> None:
    tomllib = pytest.importorskip("tomllib", reason="Python >= 3.11")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data_files = config["tool"]["setuptools"]["data-files"]
    assert data_files["share/curl_rl/envs"] == ["envs/*.yaml"]
    assert sorted(p.stem for p in (ROOT / "envs").glob("*.yaml")) == sorted(list_presets())
    assert any(d.parts[-3:] == ("share", "curl_rl", "envs") for d in _installed_presets_dirs())


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="venv layout differs on Windows")
def test_wheel_contains_presets_and_loads_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "curl_rl", src / "curl_rl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "envs", src / "envs")
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)], check=True)
    (wheel,) = wheels.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(Path(n).stem for n in names if "/data/share/curl_rl/envs/" in n and n.endswith(".yaml"))
    assert shipped == sorted(list_presets())

    # A real venv (pip --target drops data files); the project's dependencies come through a .pth.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = sysconfig.get_path("purelib")
    (site_dir,) = venv.glob("lib/python*/site-packages")
    (site_dir / "deps.pth").write_text(purelib + "\n")
    subprocess.run(
        [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "-q", str(wheel)], check=True
    )
    code = (
        "import curl_rl.envs as e; d = e.bundled_presets_dir(); "
        f"assert str(d).startswith({str(venv)!r}), d; "
        "print(len(e.list_presets()), e.load_preset('distractor-easy').name)"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(len(list_presets())), "distractor-easy"]
