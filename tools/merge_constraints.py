"""Merge the `pip freeze` of the oldest and of the newest tested Python into one constraints file.

`make lock` resolves the project on both; a pin they share is written as it is, a pin only one of them
has (audioop-lts on 3.13, say), or has at another version, is written under a `python_version` marker,
so `pip install -c constraints.txt` installs the locked set on either Python.

    python tools/merge_constraints.py OLDER_FREEZE NEWER_FREEZE NEWER_VERSION > constraints.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def _pins(path: Path) -> dict[str, str]:
    """Normalised name → `name==version` line, as `pip freeze` wrote it."""
    pins = {}
    for line in map(str.strip, path.read_text().splitlines()):
        if line and not line.startswith("#"):
            name, sep, _ = line.partition("==")
            if not sep:
                raise SystemExit(f"{path}: {line!r} is not a name==version pin")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = line
    return pins


def merge(older: dict[str, str], newer: dict[str, str], newer_version: str) -> list[str]:
    lines = []

    # pip freeze's order: by the name as spelled, lower-cased.
    def spelled(name: str) -> str:
        return (older.get(name) or newer[name]).partition("==")[0].lower()

    for name in sorted(older.keys() | newer.keys(), key=spelled):
        old, new = older.get(name), newer.get(name)
        if old == new:
            lines.append(str(old))
            continue
        if old:
            lines.append(f'{old} ; python_version < "{newer_version}"')
        if new:
            lines.append(f'{new} ; python_version >= "{newer_version}"')
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not re.fullmatch(r"\d+\.\d+", argv[2]):
        raise SystemExit(__doc__)
    print("\n".join(merge(_pins(Path(argv[0])), _pins(Path(argv[1])), argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
