"""The package works installed as a wheel, not only as an editable checkout.

A container image or a plain `pip install` puts the package in site-packages with no pyproject.toml
beside it; the code location must still load there (its dg configuration ships in the package) with
its data files (the excitement model, the migrations).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LOAD_SCRIPT = """
import sys
import montage_pipeline
import montage_pipeline.media.excitement  # reads the shipped model at import
from montage_pipeline.definitions import defs
from montage_pipeline.platform.migrate import upgrade
upgrade("sqlite:///" + sys.argv[1])
print(montage_pipeline.__file__)
print(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))
"""


def test_the_shipped_dg_config_matches_the_checkouts() -> None:
    shipped = tomllib.loads((ROOT / "montage_pipeline" / "dg.toml").read_text())
    checkout = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dg"]
    assert shipped["directory_type"] == checkout["directory_type"] == "project"
    assert shipped["project"] == checkout["project"]


def test_the_code_location_loads_from_an_installed_wheel(tmp_path: Path) -> None:
    # Built from a copy: setuptools' build/ folder in the checkout could carry deleted modules along.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT / "montage_pipeline", source / "montage_pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "setup.cfg", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(source)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("montage_pipeline-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    env = {"PYTHONPATH": str(site), "MONTAGE_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, str(tmp_path / "platform.sqlite")],
        cwd=tmp_path,
        check=False,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    module_file, asset_keys = result.stdout.strip().splitlines()[-2:]
    assert Path(module_file).is_relative_to(site), "the checkout was imported, not the wheel"
    assert "scored_highlights" in asset_keys and "social_posts" in asset_keys
    tables = (
        sqlite3.connect(tmp_path / "platform.sqlite").execute("SELECT name FROM sqlite_master").fetchall()
    )
    assert {"jobs", "weekly_montages", "social_posts"} <= {name for (name,) in tables}
