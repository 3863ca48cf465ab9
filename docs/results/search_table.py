"""Rank the candidate values of a one-parameter search (see run_search.sh).

The criterion is fixed before the runs: the mean, over every run of every arm, of the area under the
learning curve (AUC: the mean evaluation return over training). AUC rather than the final return
because the study asks about sample efficiency and because it averages over several evaluations,
which makes it less noisy than one final evaluation with few seeds. Ties go to the smaller value
(for values that are not numbers: the one listed first). ``--eligible`` restricts which values may
be chosen, fixed before the runs too (e.g. a search that also measures an unsound reference mode).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def _runs(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {
        arm: [run for run in summary["arms"][arm]["runs"] if run["status"] == "done" and run["auc"] is not None]
        for arm in summary["arm_order"]
    }


def _tie_break(value: str, position: int) -> float:
    try:
        return -float(value)
    except ValueError:
        return -float(position)


def rank(candidates: dict[str, dict[str, Any]], eligible: list[str] | None = None) -> dict[str, Any]:
    """Per-value, per-arm means and the value with the best mean AUC over all runs.

    :param candidates: value -> summary.json, in the order the values were given.
    :param eligible: the values that may be chosen (``None``: all).
    """
    table: dict[str, Any] = {}
    for value, summary in candidates.items():
        per_arm = {}
        all_auc: list[float] = []
        for arm, runs in _runs(summary).items():
            aucs = [run["auc"] for run in runs]
            finals = [run["final_return"] for run in runs]
            all_auc += aucs
            per_arm[arm] = {
                "n": len(runs),
                "seeds": [run["seed"] for run in runs],
                "auc_mean": statistics.fmean(aucs) if aucs else None,
                "final_mean": statistics.fmean(finals) if finals else None,
                "steps_per_s": summary["arms"][arm]["steps_per_s"],
            }
        table[value] = {"arms": per_arm, "criterion": statistics.fmean(all_auc) if all_auc else None}
    scored = [
        (v, t["criterion"], i)
        for i, (v, t) in enumerate(table.items())
        if t["criterion"] is not None and (eligible is None or v in eligible)
    ]
    best = max(scored, key=lambda item: (item[1], _tie_break(item[0], item[2])))[0] if scored else None
    criterion = "mean AUC over all runs of all arms (ties: smaller value)"
    if eligible is not None:
        criterion += f"; eligible: {', '.join(eligible)}"
    return {"criterion": criterion, "values": table, "best": best}


def markdown(key: str, result: dict[str, Any]) -> str:
    arms = list(next(iter(result["values"].values()))["arms"])
    lines = [
        f"# Search over `{key}`",
        "",
        f"Criterion (fixed in advance): {result['criterion']}. Chosen: **`{key}={result['best']}`**.",
        "",
        "| value | " + " | ".join(f"{arm} AUC | {arm} final" for arm in arms) + " | criterion |",
        "|---|" + "---|---|" * len(arms) + "---|",
    ]
    for value, row in result["values"].items():
        cells = []
        for arm in arms:
            stats = row["arms"][arm]
            cells += [_fmt(stats["auc_mean"]), _fmt(stats["final_mean"])]
        mark = " (chosen)" if value == result["best"] else ""
        lines.append(f"| {value}{mark} | " + " | ".join(cells) + f" | {_fmt(row['criterion'])} |")
    seeds = sorted({s for row in result["values"].values() for a in row["arms"].values() for s in a["seeds"]})
    lines += ["", f"Means over seeds {seeds}; AUC = mean evaluation return over training; final = last evaluation."]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--key", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--eligible", default=None, help="comma-separated values that may be chosen")
    parser.add_argument("summaries", nargs="+", help="VALUE=path/to/summary.json")
    args = parser.parse_args()
    candidates = {}
    for item in args.summaries:
        value, path = item.split("=", 1)
        candidates[value] = json.loads(Path(path).read_text())
    result = rank(candidates, args.eligible.split(",") if args.eligible else None)
    (args.out / "search.json").write_text(json.dumps({"key": args.key, **result}, indent=2) + "\n")
    (args.out / "search.md").write_text(markdown(args.key, result))
    print(markdown(args.key, result))


if __name__ == "__main__":
    main()
