"""One writer per run folder (and per experiment folder): an exclusive lock file with its holder.

The lock is a file ``.lock`` created with ``O_CREAT | O_EXCL`` (atomic on local file systems)
holding the writer's pid, host and start time. It is removed when the writer leaves the ``with``
block, whatever the reason (an exception, Ctrl-C). A writer killed with SIGKILL leaves its lock
behind: a lock whose pid no longer runs on this host is stale and is taken over, with a note.
A lock held by a live process, or by another host (whose processes we cannot see), is refused
with an error naming the holder and the fix.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

LOCK_NAME = ".lock"


class FolderLocked(RuntimeError):
    """Another live writer holds the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


class FolderLock:
    """Exclusive lock on ``folder`` for the duration of a ``with`` block.

    :param folder: the run or experiment folder (created if missing).
    :param what: how messages name the folder (``"run"``, ``"experiment"``).
    """

    def __init__(self, folder: Path | str, what: str = "run") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._held = False

    def holder(self) -> dict[str, Any] | None:
        """The lock file's content, or None when there is no (readable) lock."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def acquire(self) -> None:
        """Take the lock or raise :class:`FolderLocked` naming the holder."""
        self.folder.mkdir(parents=True, exist_ok=True)
        me = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._clear_if_stale():
                    raise FolderLocked(self._message()) from None
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(me, handle)
            self._held = True
            return
        raise FolderLocked(self._message())

    def _clear_if_stale(self) -> bool:
        holder = self.holder()
        if holder is None:
            # unreadable: a writer between create and write, or the remains of a crash at that instant
            return False
        pid, host = holder.get("pid"), holder.get("host")
        if host != socket.gethostname() or not isinstance(pid, int) or _alive(pid):
            return False
        warnings.warn(
            f"{self.folder}: taking over the lock of pid {pid} (no longer running; it was killed or crashed)",
            RuntimeWarning,
            stacklevel=3,
        )
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        return True

    def _message(self) -> str:
        holder = self.holder() or {}
        who = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {holder.get('since', '?')}"
        return (
            f"the {self.what} folder {self.folder} is being written by {who}; wait for it to finish, or, if that "
            f"process is gone, delete {self.path}"
        )

    def release(self) -> None:
        """Remove the lock if this object holds it."""
        if self._held:
            self._held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
