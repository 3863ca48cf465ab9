"""The figures of an experiment: learning curves with bootstrap bands, and the aux metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curl_rl.results.aggregate import joined_info
from curl_rl.results.run_folders import FloatArray, RunRecord, load_experiment, order_arms

__all__ = ["figure_title", "figures_from_runs", "write_figures"]


def figure_title(summary: Mapping[str, Any]) -> str:
    parts = [p for p in (summary.get("env"), summary.get("algo")) if p]
    return f"{summary['experiment']} \N{EN DASH} {' / '.join(parts)}" if parts else str(summary["experiment"])


def _curves_and_aux(
    runs: Sequence[RunRecord], include_unfinished: bool
) -> tuple[dict[str, list[tuple[FloatArray, FloatArray]]], dict[str, dict[str, list[tuple[FloatArray, FloatArray]]]]]:
    picked = [r for r in runs if r.has_evals and (r.usable or include_unfinished)]
    curves: dict[str, list[tuple[FloatArray, FloatArray]]] = {}
    for r in picked:
        curves.setdefault(r.arm, []).append((r.eval_timesteps, r.eval_returns))
    aux: dict[str, dict[str, list[tuple[FloatArray, FloatArray]]]] = {}
    for tag in sorted({t for r in picked for t in r.aux}):
        aux[tag] = {}
        for r in picked:
            if tag in r.aux:
                aux[tag].setdefault(r.arm, []).append(r.aux[tag])
    return curves, aux


def figures_from_runs(
    runs: Sequence[RunRecord],
    out_dir: Path,
    title: str,
    n_boot: int,
    confidence: float,
    seed: int,
    include_unfinished: bool,
) -> dict[str, Path | None]:
    # Imported here so that reading/summarising never pays matplotlib's import time.
    from curl_rl.results.plotting import plot_aux_metrics, plot_learning_curves

    curves, aux = _curves_and_aux(runs, include_unfinished)
    arms = order_arms(r.arm for r in runs)
    figures: dict[str, Path | None] = {"learning_curves": None, "aux_metrics": None}
    if curves:
        figures["learning_curves"] = plot_learning_curves(
            curves,
            out_dir / "learning_curves.png",
            title=f"Evaluation return \N{EN DASH} {title}",
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        )
    if aux:
        figures["aux_metrics"] = plot_aux_metrics(
            aux, out_dir / "aux_metrics.png", title=f"Auxiliary metrics \N{EN DASH} {title}", arm_order=arms
        )
    return figures


def write_figures(
    experiment_dir: str | Path,
    out_dir: str | Path | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    include_unfinished: bool = False,
) -> dict[str, Path | None]:
    """Draw ``learning_curves.png`` and ``aux_metrics.png`` for an experiment (``curl-rl plot``).

    A figure with nothing to show is not written and its entry is None.

    :param experiment_dir: ``runs/<experiment>``.
    :param out_dir: where to write; defaults to ``experiment_dir``.
    :param n_boot: bootstrap replicates per grid point of the CI band.
    :param confidence: coverage of the band.
    :param seed: resampling seed.
    :param include_unfinished: also draw running/failed runs' partial curves (e.g. to watch an
        experiment in progress); they never enter ``summary.json``'s statistics.
    :return: ``{"learning_curves": path | None, "aux_metrics": path | None}``.
    """
    root = Path(experiment_dir)
    runs = load_experiment(root)
    env, _ = joined_info(runs, "env")
    algo, _ = joined_info(runs, "algo")
    title = figure_title({"experiment": root.resolve().name, "env": env, "algo": algo})
    return figures_from_runs(
        runs,
        Path(out_dir) if out_dir is not None else root,
        title,
        n_boot,
        confidence,
        seed,
        include_unfinished,
    )
