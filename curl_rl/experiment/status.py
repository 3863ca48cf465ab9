"""A run's ``status.json``: written atomically, merged field by field, read by one reader.

The fields (``status``, ``error``, ``arm``, ``seed``, ``env_steps``, ``wall_time_s`` ...) are listed
in :mod:`curl_rl.experiment.run`; :func:`curl_rl.results.run_folders.read_status_file` is the reader
that every consumer shares.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

from curl_rl.experiment.config import plain
from curl_rl.results.run_folders import read_status_file

__all__ = ["STATUSES", "now", "read_status", "write_status"]

#: statuses a run can have; only "done" counts as finished
STATUSES = ("running", "done", "failed", "interrupted")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def write_status(run_dir: Path, **values: Any) -> dict[str, Any]:
    """Update ``status.json`` atomically (temp file + ``os.replace``), merging with what is there.

    :param run_dir: the run folder.
    :param values: fields to set.
    :return: the written content.
    """
    current = read_status(run_dir) or {}
    current.update(values)
    current["updated"] = now()
    tmp = run_dir / f".status.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(plain(current), indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / "status.json")
    return current


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """``status.json`` of a run folder, or None when missing or unreadable."""
    data, problem = read_status_file(Path(run_dir))
    return None if problem else data
