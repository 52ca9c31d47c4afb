"""`portal serve` as a user runs it: embedded PostgreSQL, survives a kill -9, stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port, own_embedded_database

PORTAL = Path(sys.executable).with_name("portal")


def start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env["PORTAL_DATABASE_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [str(PORTAL), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_until_serving(port: int, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "portal serve stopped by itself"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("portal serve did not answer within 60 s")


def postgres_running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def data_dir() -> Iterator[Path]:
    with own_embedded_database("serve") as path:
        yield path


def test_serve_survives_a_kill_and_stops_everything_on_ctrl_c(data_dir: Path) -> None:
    port = free_port()
    first = start(data_dir, port)
    landing = wait_until_serving(port, first)
    assert landing.status_code == 200
    assert "Welkom bij het Informat Partnerportaal" in landing.text
    first.kill()  # kill -9: no clean-up at all
    first.wait()
    assert postgres_running(data_dir), "the crashed run left its database server behind"

    second = start(data_dir, port)
    assert wait_until_serving(port, second).status_code == 200
    second.send_signal(signal.SIGINT)  # Ctrl-C
    assert second.wait(timeout=30) == 0
    assert not postgres_running(data_dir), "Ctrl-C stops the embedded PostgreSQL too"
