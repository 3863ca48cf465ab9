"""The README's Python example runs as written (with a shorter budget)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_quickstart_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None, "README lost its Python example"
    code = block.group(1)
    assert "model.learn(50_000)" in code
    monkeypatch.chdir(tmp_path)
    exec(compile(code.replace("model.learn(50_000)", "model.learn(256)"), "README.md", "exec"), {})
    assert (tmp_path / "curl_ppo.zip").exists()
    assert any((tmp_path / "runs" / "quickstart").iterdir())
