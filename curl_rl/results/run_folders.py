"""Reading an experiment folder: run records from ``status.json`` and the CSVs, tolerant of damage.

Layout read (written by the training runner, :mod:`curl_rl.experiment.run`)::

    runs/<experiment>/<arm>/seed<N>/status.json
                                    evaluations.csv   timesteps,mean_return,std_return,n_episodes
                                    aux_metrics.csv   timesteps,aux/loss,aux/accuracy,... (optional)

All readers tolerate partially written files (a process killed mid-line, a half-written
``status.json``): bad rows are skipped and counted in the notes, nothing raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["ARM_ORDER", "CsvData", "RunRecord", "load_experiment", "order_arms", "read_numeric_csv", "read_status_file"]

FloatArray = NDArray[np.float64]

#: Arms shown first, in this order; any other arm follows alphabetically.
ARM_ORDER: tuple[str, ...] = ("none", "aug", "curl", "curl+future")

_SEED_DIR = re.compile(r"^seed(\d+)$")
_EVAL_REQUIRED = ("timesteps", "mean_return")
PROBE_TAG = "aux/probe_r2"


@dataclass
class CsvData:
    """Numeric columns of a CSV file read by :func:`read_numeric_csv`.

    :param columns: column name -> float values (NaN for empty cells), one entry per kept row.
    :param n_skipped: rows dropped as malformed (wrong field count, unparseable number).
    :param problem: why nothing could be read (missing file, no header), else None.
    """

    columns: dict[str, FloatArray] = field(default_factory=dict)
    n_skipped: int = 0
    problem: str | None = None


@dataclass
class RunRecord:
    """Everything read from one ``<arm>/seed<N>/`` run folder.

    :param arm: arm name (the folder name).
    :param seed: seed (from the ``seed<N>`` folder name).
    :param run_dir: the run folder.
    :param status: ``status.json``'s status, or ``"unknown"`` when it is missing/unreadable.
    :param error: the error recorded by the runner, if any.
    :param info: the raw ``status.json`` content (empty when unreadable).
    :param eval_timesteps: evaluation timesteps, as read (not sorted).
    :param eval_returns: mean evaluation return per evaluation.
    :param aux: aux metric tag -> (timesteps, values), only finite points.
    :param problems: human-readable reading problems (skipped rows, unreadable files).
    """

    arm: str
    seed: int
    run_dir: Path
    status: str
    error: str | None
    info: dict[str, Any]
    eval_timesteps: FloatArray
    eval_returns: FloatArray
    aux: dict[str, tuple[FloatArray, FloatArray]]
    problems: list[str]

    @property
    def name(self) -> str:
        """``<arm>/seed<N>``, how runs are referred to in reports."""
        return f"{self.arm}/seed{self.seed}"

    @property
    def has_evals(self) -> bool:
        """Whether at least one evaluation row could be read."""
        return self.eval_timesteps.size > 0

    @property
    def usable(self) -> bool:
        """Whether the run enters the statistics: finished and with at least one evaluation."""
        return self.status == "done" and self.has_evals

    @property
    def excluded_reason(self) -> str | None:
        """Why the run is left out of the statistics, or None if it is used."""
        if self.status == "done":
            return None if self.has_evals else "done but evaluations.csv has no readable row"
        if self.status == "unknown":
            return "status.json missing or unreadable"
        return f"status is {self.status!r}"

    @property
    def final_return(self) -> float:
        """``mean_return`` of the last evaluation (largest timesteps; later row wins on a tie)."""
        if not self.has_evals:
            return math.nan
        # Reversed so that argmax picks the *last* row among equal timesteps (a re-logged eval).
        rev_t = self.eval_timesteps[::-1]
        return float(self.eval_returns[::-1][int(np.argmax(rev_t))])

    @property
    def final_timesteps(self) -> float:
        """Timestep of the last evaluation."""
        return float(self.eval_timesteps.max()) if self.has_evals else math.nan

    def info_float(self, key: str) -> float:
        """A numeric ``status.json`` field, NaN when missing or not a number.

        :param key: field name, e.g. ``"steps_per_s"``.
        """
        value = self.info.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return math.nan
        return float(value)


def read_numeric_csv(path: Path, required: Sequence[str] = ()) -> CsvData:
    """Read a numeric CSV with a header, skipping malformed rows instead of raising.

    A row is kept only if it has exactly as many fields as the header and every non-empty cell
    parses as a float; empty cells become NaN. Rows where a ``required`` column is not finite are
    dropped too. This covers a row cut mid-line by a killed writer: a cut inside any column but the
    last leaves too few fields. (A cut inside the *last* column cannot be detected; only runs that
    did not finish can have one and those are excluded from statistics.)

    :param path: CSV file.
    :param required: columns that must be present in the header and finite in a kept row.
    :return: the parsed columns, the number of skipped rows, and a problem string if unreadable.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return CsvData(problem=f"{path.name} missing")
    except OSError as exc:
        return CsvData(problem=f"{path.name} unreadable: {exc}")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return CsvData(problem=f"{path.name} has no header")
    header = [h.strip().strip('"').strip() for h in lines[0].split(",")]
    missing = [c for c in required if c not in header]
    if missing:
        return CsvData(problem=f"{path.name} lacks column(s) {', '.join(missing)}")
    required_idx = [header.index(c) for c in required]
    rows: list[list[float]] = []
    skipped = 0
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(header):
            skipped += 1
            continue
        try:
            row = [float(c) if c.strip() else math.nan for c in cells]
        except ValueError:
            skipped += 1
            continue
        if not all(math.isfinite(row[i]) for i in required_idx):
            skipped += 1
            continue
        rows.append(row)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    columns = {name: table[:, j] for j, name in enumerate(header) if name}
    return CsvData(columns=columns, n_skipped=skipped)


def read_status_file(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """Parse ``status.json``; a missing or half-written file yields ``({}, problem)``."""
    path = run_dir / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return {}, "status.json missing"
    except (OSError, ValueError) as exc:
        return {}, f"status.json unreadable ({type(exc).__name__})"
    if not isinstance(data, dict):
        return {}, "status.json is not a JSON object"
    return data, None


def _load_run(arm: str, seed: int, run_dir: Path) -> RunRecord:
    info, status_problem = read_status_file(run_dir)
    problems = [status_problem] if status_problem else []
    status_value = info.get("status")
    status = status_value if isinstance(status_value, str) and status_value else "unknown"
    error_value = info.get("error")
    error = None if error_value is None else str(error_value)
    for key, expected in (("arm", arm), ("seed", seed)):
        if key in info and info[key] != expected:
            problems.append(f"status.json says {key}={info[key]!r}, folder says {expected!r}")

    evals = read_numeric_csv(run_dir / "evaluations.csv", required=_EVAL_REQUIRED)
    # Unfinished runs may legitimately have no evaluation yet; only a finished one is suspicious.
    if evals.problem and status == "done":
        problems.append(evals.problem)
    if evals.n_skipped:
        problems.append(f"skipped {evals.n_skipped} malformed row(s) in evaluations.csv")
    empty = np.empty(0, dtype=np.float64)
    eval_t = evals.columns.get("timesteps", empty)
    eval_r = evals.columns.get("mean_return", empty)

    aux: dict[str, tuple[FloatArray, FloatArray]] = {}
    aux_path = run_dir / "aux_metrics.csv"
    if aux_path.exists():
        aux_csv = read_numeric_csv(aux_path, required=("timesteps",))
        if aux_csv.problem:
            problems.append(aux_csv.problem)
        if aux_csv.n_skipped:
            problems.append(f"skipped {aux_csv.n_skipped} malformed row(s) in aux_metrics.csv")
        steps = aux_csv.columns.get("timesteps", empty)
        for tag, values in aux_csv.columns.items():
            if tag == "timesteps":
                continue
            keep = np.isfinite(values)
            if keep.any():
                aux[tag] = (steps[keep], values[keep])
    return RunRecord(
        arm=arm,
        seed=seed,
        run_dir=run_dir,
        status=status,
        error=error,
        info=info,
        eval_timesteps=eval_t,
        eval_returns=eval_r,
        aux=aux,
        problems=problems,
    )


def order_arms(arms: Iterable[str]) -> list[str]:
    """Canonical display order: ``none, aug, curl, curl+future``, then the rest alphabetically.

    :param arms: arm names (duplicates ignored).
    :return: ordered list.
    """
    unique = set(arms)
    known = [a for a in ARM_ORDER if a in unique]
    return known + sorted(unique.difference(ARM_ORDER))


def load_experiment(experiment_dir: str | Path) -> list[RunRecord]:
    """Read every ``<arm>/seed<N>/`` run folder of an experiment.

    Folders that do not match the layout (no ``seed<N>`` subfolder, hidden folders) are ignored.

    :param experiment_dir: ``runs/<experiment>``.
    :return: run records ordered by arm (see :func:`order_arms`), then seed.
    :raises FileNotFoundError: if ``experiment_dir`` is not a directory.
    """
    root = Path(experiment_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"experiment folder not found: {root}")
    runs: list[RunRecord] = []
    for arm_dir in root.iterdir():
        if not arm_dir.is_dir() or arm_dir.name.startswith("."):
            continue
        for run_dir in arm_dir.iterdir():
            match = _SEED_DIR.match(run_dir.name)
            if match and run_dir.is_dir():
                runs.append(_load_run(arm_dir.name, int(match.group(1)), run_dir))
    rank = {arm: i for i, arm in enumerate(order_arms(r.arm for r in runs))}
    runs.sort(key=lambda r: (rank[r.arm], r.seed))
    return runs
