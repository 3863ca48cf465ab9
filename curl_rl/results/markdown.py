"""``summary.md``: the Markdown report of a summary dict, numbers with their uncertainty."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["render_markdown"]

_MISSING = "\N{EM DASH}"


def _decimals(value: Any) -> int:
    """Decimals that keep about four significant digits for table values."""
    if not _is_number(value):
        return 2
    magnitude = abs(value)
    if magnitude >= 1000:
        return 0
    if magnitude >= 100:
        return 1
    if magnitude >= 1:
        return 2
    return 3


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, digits: int | None = None) -> str:
    """Compact number for the table: more decimals for small magnitudes, a dash for missing.

    :param value: number or None.
    :param digits: fixed number of decimals; by default chosen from the magnitude.
    """
    if not _is_number(value):
        return _MISSING
    return f"{value:.{_decimals(value) if digits is None else digits}f}"


def _fmt_ci(ci: Mapping[str, Any] | None, key: str = "point", digits: int | None = None) -> str:
    if not ci or not _is_number(ci[key]):
        return _MISSING
    # Interval ends use the point's precision so a row reads as one number with its uncertainty.
    d = _decimals(ci[key]) if digits is None else digits
    return f"{_fmt(ci[key], d)} [{_fmt(ci['low'], d)}, {_fmt(ci['high'], d)}]"


def _fmt_duration(seconds: Any) -> str:
    if not _is_number(seconds):
        return _MISSING
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _error_line(error: str | None) -> str:
    """The last non-empty line of an error (the exception message of a traceback), shortened."""
    if not error:
        return "(no error recorded)"
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else error.strip()
    return line if len(line) <= 240 else line[:237] + "..."


def render_markdown(summary: Mapping[str, Any]) -> str:
    """Markdown report of a :func:`summarize` dict (``summary.md``'s content).

    :param summary: the dict returned by :func:`summarize` / :func:`write_summary`.
    :return: Markdown text.
    """
    baseline = summary["baseline"]
    pct = f"{round(summary['confidence'] * 100)}%"
    lines = [f"# Summary: {summary['experiment']}", ""]
    meta = []
    if summary.get("env"):
        meta.append(f"env **{summary['env']}**")
    if summary.get("algo"):
        meta.append(f"algo **{summary['algo']}**")
    meta.append(f"baseline **{baseline}**")
    meta.append(f"{pct} CIs: percentile stratified bootstrap, {summary['n_boot']} resamples, seed {summary['seed']}")
    lines += [", ".join(meta) + ".", ""]

    header = [
        "Arm",
        "Seeds done / failed",
        "Final return (mean \N{PLUS-MINUS SIGN} std)",
        f"IQM final return [{pct} CI]",
        f"AUC mean [{pct} CI]",
        f"P(arm > {baseline}) [{pct} CI]",
        "Probe R\N{SUPERSCRIPT TWO}",
        "Env steps/s",
        "Wall time",
    ]
    lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for arm in summary["arm_order"]:
        s = summary["arms"][arm]
        seeds = f"{s['n_done']} / {s['n_failed']}"
        extra = [f"+{s['n_running']} running"] if s["n_running"] else []
        extra += [f"+{s['n_other']} other"] if s["n_other"] else []
        if extra:
            seeds += f" ({', '.join(extra)})"
        final = s["final_return"]
        if final is None:
            final_txt = _MISSING
        elif final["std"] is None:
            final_txt = f"{_fmt(final['mean'])} (1 seed)"
        else:
            d = _decimals(final["mean"])
            final_txt = f"{_fmt(final['mean'], d)} \N{PLUS-MINUS SIGN} {_fmt(final['std'], d)}"
        poi = s["probability_of_improvement"]
        if arm == baseline:
            poi_txt = "(baseline)"
        else:
            poi_txt = _fmt_ci(poi, digits=2)
            if poi is not None and not poi["seeds_match"]:
                poi_txt += " \N{DAGGER}"
        auc_txt = _fmt_ci(s["auc"], key="mean")
        probe = s["probe_r2"]
        row = [
            f"`{arm}`",
            seeds,
            final_txt,
            _fmt_ci(s["iqm"]),
            auc_txt,
            poi_txt,
            _fmt(probe["mean"], 3) if probe else _MISSING,
            _fmt(s["steps_per_s"], 0),
            _fmt_duration(s["wall_time_s"]),
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    lines.append("")
    if not summary["arm_order"]:
        lines += ["No runs found.", ""]

    defs = summary["definitions"]
    lines += [
        "**Definitions.** "
        f"*Final return*: {defs['final_return']}. "
        f"*AUC*: {defs['auc']}. "
        f"*IQM*: {defs['iqm']}. "
        f"*P(arm > {baseline})*: {defs['probability_of_improvement']}. "
        f"*std*: {defs['std']}. "
        "Only runs with status `done` enter the statistics.",
        "",
    ]

    if summary["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    if summary["failed_runs"]:
        lines += ["## Failed runs", ""]
        lines += [f"- `{f['arm']}/seed{f['seed']}`: {_error_line(f['error'])}" for f in summary["failed_runs"]]
        lines.append("")
    if summary["excluded_runs"]:
        lines += ["## Other runs not in the statistics", ""]
        lines += [f"- `{e['arm']}/seed{e['seed']}`: {e['reason']}" for e in summary["excluded_runs"]]
        lines.append("")
    figures = summary.get("figures") or {}
    shown = [
        (label, figures.get(key))
        for key, label in (("learning_curves", "Learning curves"), ("aux_metrics", "Auxiliary metrics"))
    ]
    if any(path for _, path in shown):
        lines += ["## Figures", ""]
        lines += [f"![{label}]({path})" + "\n" for label, path in shown if path]
    return "\n".join(lines).rstrip("\n") + "\n"
