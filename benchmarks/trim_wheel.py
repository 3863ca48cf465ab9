"""Drop folders from a wheel, keeping it installable: the zip entries and their ``RECORD`` lines go.

The lent GPU machine reaches no package registry, so what it lacks travels with the working tree,
which may hold 64 MiB in all. dm_control's wheel is 56 MB, 52 of them assets of tasks this project
never loads (``locomotion``: soccer, mocap, arenas; the DMC suite's ``dog_assets``, read only when a
dog task is built). ``benchmarks/gpu_prepare.sh`` trims those away with this script.

    python -m benchmarks.trim_wheel WHEEL --drop dm_control/locomotion/ --drop dm_control/suite/dog_assets/
"""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Sequence
from pathlib import Path


def trim_wheel(wheel: Path, drop: Sequence[str], out: Path) -> tuple[int, int]:
    """Write ``out``: ``wheel`` without the entries under any prefix in ``drop``.

    :param wheel: the wheel to read.
    :param drop: path prefixes inside the wheel (``"pkg/folder/"`` for a folder, or one file's path).
    :param out: where the trimmed wheel goes (may not be ``wheel`` itself).
    :return: entries dropped, entries kept.
    :raises ValueError: a prefix matches nothing, or one would drop the wheel's metadata.
    """
    if out.resolve() == wheel.resolve():
        raise ValueError(f"{out}: write the trimmed wheel beside the original, not over it")
    with zipfile.ZipFile(wheel) as src:
        names = src.namelist()
        record = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
        if record is None:
            raise ValueError(f"{wheel}: no .dist-info/RECORD; is it a wheel?")
        for prefix in drop:
            if ".dist-info/" in prefix:
                raise ValueError(f"--drop {prefix}: the wheel's metadata must stay")
            if not any(n.startswith(prefix) for n in names):
                raise ValueError(f"--drop {prefix}: nothing in {wheel.name} starts with it")
        dropped = {n for n in names if any(n.startswith(p) for p in drop)}
        kept_record = [
            line for line in src.read(record).decode().splitlines() if line and line.split(",", 1)[0] not in dropped
        ]
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename in dropped:
                    continue
                if info.filename == record:
                    dst.writestr(info, "\n".join(kept_record) + "\n")
                else:
                    dst.writestr(info, src.read(info))
    return len(dropped), len(names) - len(dropped)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("--drop", action="append", required=True, help="a path prefix inside the wheel (repeatable)")
    parser.add_argument("--out", type=Path, help="default: WHEEL with the original moved to WHEEL.full")
    args = parser.parse_args(argv)
    out = args.out
    if out is None:  # keep the wheel's file name (pip reads the version and tags from it)
        full = args.wheel.with_name(args.wheel.name + ".full")
        args.wheel.rename(full)
        args.wheel, out = full, args.wheel
    dropped, kept = trim_wheel(args.wheel, args.drop, out)
    before, after = args.wheel.stat().st_size, out.stat().st_size
    print(f"{out.name}: dropped {dropped} entries, kept {kept}; {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
