"""benchmarks/trim_wheel.py: a wheel trimmed for the GPU machine's carry limit still installs."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from benchmarks.trim_wheel import trim_wheel

FILES = {
    "tinypkg/__init__.py": b"VALUE = 42\n",
    "tinypkg/assets/mesh.bin": b"\0" * 4096,
    "tinypkg/assets/more/skin.png": b"png",
    "tinypkg/keep.txt": b"kept",
    "tinypkg-0.1.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
    "tinypkg-0.1.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}


def record_hash(data: bytes) -> str:
    """A file's hash as a wheel's ``RECORD`` writes it (``sha256=`` urlsafe base64, unpadded)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _wheel(folder: Path) -> Path:
    path = folder / "tinypkg-0.1-py3-none-any.whl"
    record = [f"{name},{record_hash(data)},{len(data)}" for name, data in FILES.items()]
    record.append("tinypkg-0.1.dist-info/RECORD,,")
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in FILES.items():
            zf.writestr(name, data)
        zf.writestr("tinypkg-0.1.dist-info/RECORD", "\n".join(record) + "\n")
    return path


def test_trimmed_wheel_drops_the_folder_from_zip_and_record_and_installs(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    out = tmp_path / "trimmed" / wheel.name
    out.parent.mkdir()
    dropped, kept = trim_wheel(wheel, ["tinypkg/assets/"], out)
    assert (dropped, kept) == (2, 5)
    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        record = zf.read("tinypkg-0.1.dist-info/RECORD").decode()
        assert zf.read("tinypkg/keep.txt") == b"kept"
    assert not any(n.startswith("tinypkg/assets/") for n in names)
    assert "assets" not in record and "tinypkg/__init__.py,sha256=" in record
    target = tmp_path / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(target), str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    assert (target / "tinypkg" / "__init__.py").read_bytes() == b"VALUE = 42\n"
    assert not (target / "tinypkg" / "assets").exists()


def test_trim_refuses_a_prefix_that_matches_nothing_or_the_metadata(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    with pytest.raises(ValueError, match="nothing in"):
        trim_wheel(wheel, ["tinypkg/asets/"], tmp_path / "a.whl")
    with pytest.raises(ValueError, match="metadata must stay"):
        trim_wheel(wheel, ["tinypkg-0.1.dist-info/"], tmp_path / "b.whl")
    with pytest.raises(ValueError, match="not over it"):
        trim_wheel(wheel, ["tinypkg/assets/"], wheel)
