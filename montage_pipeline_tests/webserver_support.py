"""A real `dagster-webserver` on a throwaway embedded instance, for tests of the UI and its API."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_home(folder: Path) -> Path:
    """A DAGSTER_HOME with the embedded (SQLite) instance file."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dagster_home" / "dagster.yaml", folder / "dagster.yaml")
    return folder


@contextmanager
def dagster_webserver(dagster_home: Path, montage_home: Path) -> Iterator[str]:
    """Serve `montage_pipeline.definitions` on a free port; yields the base URL once it answers."""
    port = free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "MONTAGE_HOME": str(montage_home)}
    command = [str(Path(sys.executable).parent / "dagster-webserver"), "-m", "montage_pipeline.definitions"]
    web = subprocess.Popen(
        [*command, "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        else:
            raise TimeoutError("dagster-webserver did not answer within two minutes")
        yield base
    finally:
        web.terminate()
        try:
            web.wait(30)
        except subprocess.TimeoutExpired:  # a webserver stuck in shutdown must not outlive the test
            web.kill()
            web.wait(10)
