"""Installs are reproducible: every dependency is pinned in constraints.txt, and the venv holds the pins.

constraints.txt serves every tested Python (3.11 and 3.13): a pin that holds on one of them only carries
a `python_version` marker (`make lock` writes them).
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
TESTED_PYTHONS = ("3.11", "3.13")


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _environment(python: str) -> dict[str, str]:
    """Marker values that differ from this interpreter's for one of `python` (X.Y)."""
    return {"python_version": python, "python_full_version": f"{python}.0"}


def _pins(python: str) -> dict[str, str]:
    """Name → pinned version for an interpreter of `python` (X.Y)."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1 and specifiers[0].operator == "==", (
                f"constraints.txt: {line!r} is not pinned with =="
            )
            if requirement.marker is None or requirement.marker.evaluate(_environment(python)):
                name = _name(requirement.name)
                assert name not in pins, f"constraints.txt pins {name} twice for Python {python}"
                pins[name] = specifiers[0].version
    return pins


@pytest.mark.parametrize("python", TESTED_PYTHONS)
def test_every_declared_dependency_is_pinned(python: str) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for extra in project["optional-dependencies"].values() for r in extra]  # dev, k8s
    declared = [Requirement(r) for r in [*project["dependencies"], *extras]]
    needed = [r for r in declared if r.marker is None or r.marker.evaluate(_environment(python))]
    pins = _pins(python)
    assert [str(r) for r in needed if _name(r.name) not in pins] == []


def test_the_installed_packages_are_the_pinned_ones() -> None:
    installed = {_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    drift = {n: (v, installed.get(n)) for n, v in _pins(running).items() if installed.get(n) != v}
    assert drift == {}, "run `make install` (or `make lock` after changing pyproject.toml)"


def test_python_3_13_gets_audioop_for_pydub() -> None:
    """pydub imports audioop, which Python 3.13 removed: there the pins must bring audioop-lts."""
    assert "audioop-lts" in _pins("3.13")
    assert "audioop-lts" not in _pins("3.11")
