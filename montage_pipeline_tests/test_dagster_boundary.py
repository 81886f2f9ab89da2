"""The Dagster boundary: `montage_pipeline/defs/` is the only package that imports Dagster.

Outside it, no module imports `dagster` or a `dagster_*` package (not even inside a function), and
importing any of them loads no Dagster: the cores below (`selection`, `highlights`, `media`, `storage`,
`publishing`, `platform`, `weeks`, ...) never reach up into `defs/`, and the entry points (`cli.py`,
`api/`) reach it only inside the commands that launch or inspect runs. The one module that loads
`defs/` on import is `montage_pipeline/definitions.py`, the code location Dagster and `dg` load. See
docs/architecture.md for the picture.
"""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "montage_pipeline"
DEFS = "montage_pipeline.defs"
CODE_LOCATION = "montage_pipeline.definitions"  # loads defs/ on import, by design
ENTRY_POINTS = ("montage_pipeline.cli", "montage_pipeline.api")  # may import defs/ inside functions
# Alembic runs these as scripts (their names start with digits, env.py needs Alembic's context).
NOT_IMPORTABLE = ("montage_pipeline.platform.migrations",)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


OUTSIDE_DEFS = sorted(
    (_module_name(p), p) for p in PACKAGE.rglob("*.py") if not _within(_module_name(p), DEFS)
)


def _is_dagster(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return top == "dagster" or top.startswith("dagster_")


def _imports(path: Path, module: str, top_level_only: bool) -> list[tuple[int, str]]:
    """(line, imported module) for each import in the file, relative ones resolved to absolute names."""
    tree = ast.parse(path.read_text())
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def test_the_scan_sees_the_package() -> None:
    names = {name for name, _ in OUTSIDE_DEFS}
    assert {"montage_pipeline.weeks", "montage_pipeline.storage.media_store", "montage_pipeline.cli"} <= names
    assert not any(_within(n, DEFS) for n in names)


def test_nothing_outside_defs_imports_dagster() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}"
        for module, path in OUTSIDE_DEFS
        for line, imported in _imports(path, module, top_level_only=False)
        if _is_dagster(imported)
    ]
    assert offenders == [], "Dagster belongs in montage_pipeline/defs/:\n" + "\n".join(offenders)


def test_only_the_code_location_and_the_entry_points_reach_into_defs() -> None:
    offenders = []
    for module, path in OUTSIDE_DEFS:
        if module == CODE_LOCATION:
            continue
        entry_point = any(_within(module, e) for e in ENTRY_POINTS)
        for line, imported in _imports(path, module, top_level_only=entry_point):
            if _within(imported, DEFS) or _within(imported, CODE_LOCATION):
                where = "at import time" if entry_point else "(a core never reaches up into defs/)"
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported} {where}")
    assert offenders == [], "\n".join(offenders)


# The layers of docs/architecture.md, top to bottom: a package imports only from layers below its own.
LAYERS = [
    {"cli"},
    {"api", "definitions"},
    {"defs"},
    {"publishing"},
    {"highlights"},
    {"selection"},
    {"platform"},
    {"media"},
    {"settings"},
    {"profiles", "rules"},
    {"storage", "weeks", "freeze_preloaded"},
]


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_every_package_has_a_layer() -> None:
    packages = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    packages -= {"__init__", "__pycache__"}
    assert packages == set().union(*LAYERS), "put the new package in LAYERS and in docs/architecture.md"


def test_packages_import_only_the_layers_below() -> None:
    offenders = []
    for module, path in [*OUTSIDE_DEFS, *((_module_name(p), p) for p in (PACKAGE / "defs").rglob("*.py"))]:
        if module == "montage_pipeline":
            continue
        mine = module.split(".")[1]
        for line, imported in _imports(path, module, top_level_only=False):
            parts = imported.split(".")
            if parts[0] != "montage_pipeline" or len(parts) < 2 or parts[1] == mine:
                continue
            package = (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file()
            if package and _layer(parts[1]) <= _layer(mine):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({mine}) imports {imported}")
    assert offenders == [], "a lower layer imports a higher one:\n" + "\n".join(offenders)


# Run in a fresh interpreter: imports the modules named in turn, and for each records which Dagster
# modules its import loaded and the chain of montage_pipeline modules that was importing when the first
# one was asked for. It stops after the first module that loads Dagster (any later one would find
# Dagster already there); `_probe` starts a new interpreter for the rest. A clean package costs one
# interpreter start and one import of the media libraries instead of one per module.
_PROBE = (
    "import importlib, json, sys\n\n"
    + inspect.getsource(_is_dagster)  # the same rule as the static checks above
    + """
class Watch:
    chain = None
    def find_spec(self, name, path=None, target=None):
        if Watch.chain is None and _is_dagster(name):
            frame, chain = sys._getframe(1), []
            while frame is not None:
                caller = frame.f_globals.get("__name__", "")
                if caller.startswith("montage_pipeline") and caller not in chain:
                    chain.append(caller)
                frame = frame.f_back
            Watch.chain = chain[::-1] + [name]
        return None

sys.meta_path.insert(0, Watch())
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except Exception as exc:
        print(json.dumps({"module": module, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        continue
    loaded = sorted(m for m in sys.modules if _is_dagster(m))
    print(json.dumps({"module": module, "loaded": loaded[:5], "chain": Watch.chain}), flush=True)
    if loaded:
        break
"""
)


def _probe(*modules: str) -> dict[str, str | None]:
    """Each module's problem (None: importing it loads no Dagster), as in an interpreter of its own."""
    problems: dict[str, str | None] = {}
    while rest := [m for m in modules if m not in problems]:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *rest], capture_output=True, text=True, timeout=600, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"module"')]
        assert reports, f"the probe reported nothing: {done.stdout[-2000:]}"
        for seen in reports:
            if "error" in seen:
                problems[seen["module"]] = f"import failed: {seen['error']}"
            elif seen["loaded"]:
                problems[seen["module"]] = "loads Dagster: " + " -> ".join(seen["chain"] or seen["loaded"])
            else:
                problems[seen["module"]] = None
    return problems


@pytest.mark.slow
def test_importing_any_module_outside_defs_loads_no_dagster() -> None:
    modules = [
        name
        for name, _ in OUTSIDE_DEFS
        if name != CODE_LOCATION and not any(_within(name, n) for n in NOT_IMPORTABLE)
    ]
    offenders = [f"{module} {problem}" for module, problem in _probe(*modules).items() if problem]
    assert offenders == [], "\n".join(offenders)


@pytest.mark.slow
def test_the_probe_names_the_chain_that_loads_dagster() -> None:
    """The probe itself works: the code location does load Dagster, through defs/, and the modules
    named after it are each judged in a new interpreter, clean or not."""
    executors = f"{DEFS}.executors"
    problems = _probe(CODE_LOCATION, "montage_pipeline.weeks", executors)
    code_location = problems[CODE_LOCATION]
    assert code_location is not None and code_location.startswith(f"loads Dagster: {CODE_LOCATION} -> {DEFS}")
    assert problems["montage_pipeline.weeks"] is None
    assert problems[executors] == f"loads Dagster: {executors} -> dagster", problems[executors]


@pytest.mark.slow
def test_the_code_location_leaves_the_lazy_media_libraries_to_the_steps() -> None:
    """Loading the code location (what the run worker, the code server and the daemon do) imports no
    OpenCV, SciPy or PySceneDetect: ~95 MB a process that never decodes a frame (media/__init__.py)."""
    from montage_pipeline.media import LAZY_LIBRARIES

    probe = (
        "import json, sys, montage_pipeline.definitions; "
        f"print(json.dumps([m for m in {list(LAZY_LIBRARIES)!r} if m.split('.')[0] in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
