"""The committed study results: their write-up quotes them faithfully, and the search ranks fairly."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"
STUDIES = sorted(p.parent for p in RESULTS.glob("*/summary.md"))
#: (folder, table file) of every committed result whose rows a write-up may quote
TABLES = [(p.parent, p.name) for p in sorted(RESULTS.glob("*/summary.md")) + sorted(RESULTS.glob("*/search.md"))]


def _load_search_table() -> Any:
    spec = importlib.util.spec_from_file_location("search_table", RESULTS / "search_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(markdown: str) -> list[list[str]]:
    return [
        [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|") and not re.match(r"^\|[\s:|-]+\|$", line.strip())
    ]


def test_every_study_has_its_command_and_outputs() -> None:
    assert STUDIES, "no committed studies under docs/results"
    for study in STUDIES:
        command = (study / "COMMAND.md").read_text()
        assert "bash docs/results/run_study.sh " + study.name in command
        assert (study / "summary.json").is_file() and (study / "learning_curves.png").is_file()


def _quoted_tables(readme: str, link: str) -> list[list[str]]:
    """Table rows of the README section that links to ``link``, up to the next heading."""
    sections = re.split(r"\n(?=#+ )", readme)
    rows: list[list[str]] = []
    for section in sections:
        if link in section:
            rows += _rows(section)
    return rows


@pytest.mark.parametrize("readme_path", [RESULTS / "README.md", RESULTS.parent.parent / "README.md"])
def test_write_ups_quote_the_committed_summaries(readme_path: Path) -> None:
    """Every number in a results table of a write-up appears in the same row of the committed table."""
    readme = readme_path.read_text()
    checked = 0
    for study, table in TABLES:
        link = f"{study.name}/{table}"
        if link not in readme:
            continue
        summary_rows = {row[0]: set(row[1:]) for row in _rows((study / table).read_text())}
        for row in _quoted_tables(readme, link):
            arm = row[0]
            if arm not in summary_rows:
                continue  # the header, or a table of another kind
            for cell in row[1:]:
                if cell in ("—", "(baseline)"):
                    continue
                where = f"{readme_path.name}: {study.name} {arm}"
                assert cell in summary_rows[arm], f"{where}: {cell!r} is not in {table}"
                checked += 1
    assert checked > 0, f"{readme_path.name} quotes no committed summary"


def _summary(aucs: dict[str, list[float | None]]) -> dict[str, Any]:
    arms = {
        arm: {
            "steps_per_s": 100.0,
            "runs": [
                {"seed": seed, "status": "done" if auc is not None else "failed", "auc": auc, "final_return": auc}
                for seed, auc in enumerate(values)
            ],
        }
        for arm, values in aucs.items()
    }
    return {"arm_order": list(aucs), "arms": arms}


def test_search_picks_the_best_mean_auc_over_all_arms() -> None:
    table = _load_search_table()
    result = table.rank(
        {
            "0.1": _summary({"curl": [3.0, 3.0], "curl+future": [1.0, 1.0]}),  # mean 2.0
            "0.3": _summary({"curl": [2.0, 2.0], "curl+future": [2.5, 2.5]}),  # mean 2.25
            "1": _summary({"curl": [9.0, None], "curl+future": [0.0, 0.0]}),  # failed run ignored: mean 3.0
        }
    )
    assert result["best"] == "1"
    assert result["values"]["1"]["arms"]["curl"]["n"] == 1
    assert "**`aux.weight=1`**" in table.markdown("aux.weight", result)


def test_search_breaks_ties_towards_the_smaller_value() -> None:
    table = _load_search_table()
    same: dict[str, list[float | None]] = {"curl": [2.0, 2.0]}
    assert table.rank({"1": _summary(same), "0.3": _summary(same)})["best"] == "0.3"


def test_committed_searches_match_their_summaries() -> None:
    table = _load_search_table()
    for search_json in RESULTS.glob("*/search.json"):
        committed = json.loads(search_json.read_text())
        candidates = {
            value: json.loads((search_json.parent / f"summary-{value}.json").read_text())
            for value in committed["values"]
        }
        assert table.rank(candidates)["best"] == committed["best"], search_json


def test_search_with_words_breaks_ties_by_order_and_respects_eligible() -> None:
    table = _load_search_table()
    same: dict[str, list[float | None]] = {"curl": [1.0, 5.0]}
    assert table.rank({"drac": _summary(same), "consistent": _summary(same)})["best"] == "drac"
    better: dict[str, list[float | None]] = {"curl": [9.0, 5.0]}
    result = table.rank({"naive": _summary(better), "drac": _summary(same)}, eligible=["drac", "consistent"])
    assert result["best"] == "drac" and "eligible: drac, consistent" in result["criterion"]
