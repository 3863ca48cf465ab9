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
    assert "model.learn(32_768, progress_bar=True)" in code
    monkeypatch.chdir(tmp_path)
    short = code.replace("model.learn(32_768, progress_bar=True)", "model.learn(1024)")
    exec(compile(short, "README.md", "exec"), {})
    assert (tmp_path / "curl_ppo.zip").exists()
    assert any((tmp_path / "runs" / "quickstart").iterdir())


def test_preset_kwargs_are_what_compare_uses() -> None:
    from curl_rl import preset_kwargs

    settings = preset_kwargs("distractor-easy", "ppo", aux="curl")
    assert settings["n_steps"] == 128 and settings["batch_size"] == 128 and settings["n_epochs"] == 4
    # the preset's weight is the one the latest committed search under the consistent objective chose
    search = Path(__file__).resolve().parent.parent / "docs/results/aux-weight-distractor-easy-low/search.json"
    chosen = float(__import__("json").loads(search.read_text())["best"])
    assert settings["aux"].name == "curl" and settings["aux"].weight == chosen
    assert preset_kwargs("distractor-easy", "ppo", aux="none")["aux"].name == "none"
