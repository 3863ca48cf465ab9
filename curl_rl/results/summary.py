"""Summaries of an experiment folder: ``summary.json``, ``summary.md`` and the figures.

The parts, one file each: :mod:`~curl_rl.results.run_folders` reads the run folders,
:mod:`~curl_rl.results.aggregate` computes each arm's statistics (its docstring defines them),
:mod:`~curl_rl.results.markdown` renders ``summary.md`` and :mod:`~curl_rl.results.figures` draws
the PNGs (which runs enter the statistics: :mod:`~curl_rl.results.aggregate`).
:func:`write_summary` runs them in that order and writes the files atomically.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curl_rl.results.aggregate import DEFINITIONS, jsonable, summarize, summarize_runs
from curl_rl.results.figures import figure_title, figures_from_runs, write_figures
from curl_rl.results.markdown import render_markdown
from curl_rl.results.run_folders import (
    ARM_ORDER,
    RunRecord,
    load_experiment,
    order_arms,
    read_numeric_csv,
    read_status_file,
)

__all__ = [
    "ARM_ORDER",
    "DEFINITIONS",
    "RunRecord",
    "load_experiment",
    "order_arms",
    "read_numeric_csv",
    "read_status_file",
    "render_markdown",
    "summarize",
    "write_figures",
    "write_summary",
]


def write_summary(
    experiment_dir: str | Path,
    baseline: str = "none",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    out_dir: str | Path | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Summarise an experiment and write ``summary.json``, ``summary.md`` and the figures.

    :param experiment_dir: ``runs/<experiment>``.
    :param baseline: arm the probability of improvement is measured against.
    :param n_boot: bootstrap replicates for every confidence interval (and the figure bands).
    :param seed: bootstrap seed.
    :param confidence: coverage of the intervals.
    :param out_dir: where to write; defaults to ``experiment_dir``.
    :param figures: also draw ``learning_curves.png`` / ``aux_metrics.png``.
    :return: the summary dict as written to ``summary.json``; ``"figures"`` holds the PNG file names
        relative to ``out_dir`` (None for a figure with nothing to draw).
    """
    root = Path(experiment_dir)
    target = Path(out_dir) if out_dir is not None else root
    target.mkdir(parents=True, exist_ok=True)
    runs = load_experiment(root)
    summary = summarize_runs(runs, root, baseline, n_boot, confidence, seed)
    if figures:
        paths = figures_from_runs(
            runs, target, figure_title(summary), n_boot, confidence, seed, include_unfinished=False
        )
        summary["figures"] = {k: (p.name if p is not None else None) for k, p in paths.items()}
    result: dict[str, Any] = jsonable(summary)
    # Written to a temp name and renamed so a reader never sees a half-written summary.
    for name, text in (
        ("summary.json", json.dumps(result, indent=2, allow_nan=False) + "\n"),
        ("summary.md", render_markdown(result)),
    ):
        tmp = target / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target / name)
    return result
