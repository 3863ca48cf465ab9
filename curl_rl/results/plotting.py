"""Figures for ``curl-rl compare`` / ``curl-rl plot``.

Figures are drawn on a bare :class:`matplotlib.figure.Figure` with an Agg canvas instead of through
``pyplot``: that needs no display, does not switch the process-wide backend under a user's notebook
and leaves no figure registered in pyplot's global state (no leak when called in a loop).

The functions take plain data (per-arm lists of per-seed curves); loading a run folder is
:mod:`curl_rl.results.summary`'s job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter
from numpy.typing import ArrayLike

from curl_rl.results.stats import align_curves, curve_band

__all__ = ["AUX_METRIC_LABELS", "arm_colors", "arm_styles", "plot_aux_metrics", "plot_learning_curves"]

Curve = tuple[ArrayLike, ArrayLike]

#: Human-readable titles for the aux metric tags the trainers log; unknown tags are shown as is.
AUX_METRIC_LABELS: dict[str, str] = {
    "aux/loss": "Auxiliary loss",
    "aux/accuracy": "Contrastive accuracy",
    "aux/pos_neg_gap": "Positive - negative similarity gap",
    "aux/embedding_std": "Embedding std (collapse check)",
    "aux/probe_r2": "Linear probe R\N{SUPERSCRIPT TWO}",
}

# Fixed colours for the standard arms so the same arm looks the same in every figure and every
# experiment, whatever subset of arms is present.
_FIXED_COLORS: dict[str, str] = {
    "none": "#4d4d4d",
    "aug": "#1f77b4",
    "curl": "#d62728",
    "curl+future": "#ff7f0e",
    "atc": "#2ca02c",
    "spr": "#9467bd",
    "triplet": "#8c564b",
}
_EXTRA_COLORS: tuple[str, ...] = ("#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#98df8a")


def _per_arm(arms: Sequence[str], fixed: dict[str, str], cycle: Sequence[str]) -> dict[str, str]:
    """``fixed[arm]`` for the standard arms, then ``cycle`` in turn for the others (in given order)."""
    out: dict[str, str] = {}
    extra = 0
    for arm in arms:
        if arm in fixed:
            out[arm] = fixed[arm]
        else:
            out[arm] = cycle[extra % len(cycle)]
            extra += 1
    return out


def arm_colors(arms: Sequence[str]) -> dict[str, str]:
    """Colour per arm: fixed ones for the standard arms, then a cycle for the rest (in given order).

    :param arms: arm names.
    :return: arm -> matplotlib colour.
    """
    return _per_arm(arms, _FIXED_COLORS, _EXTRA_COLORS)


#: the baseline and the augmentation-only arm get their own dash patterns, so a curve drawn
#: exactly under another one (two arms with equal values) still shows
_FIXED_STYLES: dict[str, str] = {"none": "--", "aug": ":"}
_EXTRA_STYLES: tuple[str, ...] = ("-", "-.")


def arm_styles(arms: Sequence[str]) -> dict[str, str]:
    """Line style per arm: dashed ``none``, dotted ``aug``, then solid and dash-dot alternating.

    :param arms: arm names.
    :return: arm -> matplotlib line style.
    """
    return _per_arm(arms, _FIXED_STYLES, _EXTRA_STYLES)


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_path: str | Path) -> Path:
    path = Path(out_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def plot_learning_curves(
    curves: Mapping[str, Sequence[Curve]],
    out_path: str | Path,
    title: str = "Learning curves",
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    xlabel: str = "Environment steps",
    ylabel: str = "Evaluation return",
) -> Path:
    """Mean evaluation return over seeds per arm, with a bootstrap CI band of the mean.

    Per arm the seeds are aligned on the union of their evaluation timesteps (no extrapolation past
    a seed's last evaluation, see :func:`curl_rl.results.stats.align_curves`); arms are drawn in the mapping's
    order. Arms without any data are left out of the plot.

    :param curves: arm -> list of ``(timesteps, mean_return)`` per seed.
    :param out_path: PNG path to write (parent folders are created).
    :param title: figure title, e.g. ``"CURL comparison - CarRacing-v3 / SAC"``.
    :param n_boot: bootstrap replicates per grid point for the band.
    :param confidence: coverage of the band (0.95 -> "95% CI" in the legend note).
    :param seed: resampling seed, so the band is reproducible.
    :param xlabel: x-axis label.
    :param ylabel: y-axis label.
    :return: the written path.
    """
    colors, styles = arm_colors(list(curves)), arm_styles(list(curves))
    fig = _new_figure(8.0, 5.0)
    ax = fig.add_subplot()
    drawn = 0
    for arm, arm_curves in curves.items():
        grid, values = align_curves(arm_curves)
        if grid.size == 0:
            continue
        mean, low, high = curve_band(values, n_boot=n_boot, confidence=confidence, seed=seed)
        color = colors[arm]
        ax.plot(grid, mean, color=color, linestyle=styles[arm], linewidth=2.0, label=f"{arm} (n={len(arm_curves)})")
        ax.fill_between(grid, low, high, color=color, alpha=0.2, linewidth=0)
        if grid.size == 1:
            # A single evaluation would be an invisible zero-length line.
            ax.errorbar(grid, mean, yerr=[mean - low, high - mean], fmt="o", color=color, capsize=4)
        drawn += 1
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    ax.grid(True, alpha=0.3)
    if drawn:
        ax.legend(
            title=f"arm: mean, {round(confidence * 100)}% CI band",
            loc="best",
            fontsize="small",
            framealpha=0.85,
        )
    else:
        ax.text(0.5, 0.5, "no finished runs", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, out_path)


def plot_aux_metrics(
    metrics: Mapping[str, Mapping[str, Sequence[Curve]]],
    out_path: str | Path,
    title: str = "Auxiliary metrics",
    arm_order: Sequence[str] | None = None,
    xlabel: str = "Environment steps",
) -> Path:
    """One subplot per auxiliary metric, the mean over seeds per arm.

    Seeds are aligned like in :func:`plot_learning_curves`; grid points where no seed of an arm
    logged the metric are gaps. Only the mean is drawn: aux metrics are diagnostics (is the
    contrastive task learning, is the embedding collapsing), and bands would clutter small panels.

    :param metrics: metric tag (e.g. ``"aux/accuracy"``) -> arm -> list of ``(timesteps, value)``
        per seed.
    :param out_path: PNG path to write.
    :param title: figure title.
    :param arm_order: order of arms in legends and colour assignment; by default order of first
        appearance.
    :param xlabel: x-axis label of the bottom row.
    :return: the written path.
    """
    if arm_order is None:
        seen: dict[str, None] = {}
        for per_arm in metrics.values():
            seen.update(dict.fromkeys(per_arm))
        arm_order = list(seen)
    colors, styles = arm_colors(list(arm_order)), arm_styles(list(arm_order))
    tags = list(metrics)
    n = max(len(tags), 1)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    # At least 6.4 wide so a single panel still fits the title and a legend row.
    fig = _new_figure(max(6.4, 4.6 * ncols), 3.5 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    handles: dict[str, Artist] = {}
    for k, tag in enumerate(tags):
        ax = axes[k // ncols][k % ncols]
        for arm in arm_order:
            arm_curves = metrics[tag].get(arm)
            if not arm_curves:
                continue
            grid, values = align_curves(arm_curves)
            if grid.size == 0:
                continue
            with np.errstate(all="ignore"):
                finite = np.isfinite(values)
                counts = finite.sum(axis=0)
                mean = np.where(counts > 0, np.where(finite, values, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan)
            (line,) = ax.plot(
                grid,
                mean,
                color=colors[arm],
                linestyle=styles[arm],
                linewidth=1.6,
                marker="o" if grid.size == 1 else None,
            )
            handles.setdefault(arm, line)
        ax.set_title(AUX_METRIC_LABELS.get(tag, tag), fontsize="medium")
        ax.set_ylabel(tag, fontsize="small")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(True, alpha=0.3)
        if k // ncols == nrows - 1 or k + ncols >= len(tags):
            ax.set_xlabel(xlabel)
    for k in range(len(tags), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    if not tags:
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no auxiliary metrics logged", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.suptitle(title)
    if handles:
        ordered = [a for a in arm_order if a in handles]
        fig.legend(
            [handles[a] for a in ordered],
            ordered,
            title="arm (mean over seeds)",
            loc="outside lower center",
            ncols=min(len(ordered), 7 if ncols > 1 else 4),
            fontsize="small",
        )
    return _save(fig, out_path)
