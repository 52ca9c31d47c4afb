"""`portal serve` in a subprocess, as tests that need a real server (or several) start it."""

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
from typing import IO, Any

import httpx

from app.config import PROJECT_ROOT

PORTAL = Path(sys.executable).with_name("portal")
# One deployment, one secret key: servers a test starts share it with the app in the test's
# own process (it signs sessions and seals signing keys in the shared database).
TEST_SECRET_KEY = "test-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def environment(changes: dict[str, str | None]) -> dict[str, str]:
    """This process's environment with `changes`; None removes a variable."""
    merged = {**os.environ, "PORTAL_SECRET_KEY": TEST_SECRET_KEY, **changes}
    return {key: value for key, value in merged.items() if value is not None}


@contextmanager
def own_embedded_database(name: str) -> Iterator[Path]:
    """A data folder for an embedded PostgreSQL of a test's own (short, inside the project:
    the server's Unix socket lives there); its server is stopped and the folder removed after."""
    path = PROJECT_ROOT / ".data" / f"{name}-{os.getpid()}"
    try:
        yield path
    finally:
        subprocess.run(["pkill", "-f", str(path)], check=False)
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def portal_serve(
    port: int,
    *options: str,
    env: dict[str, str | None],
    output: IO[Any] | int = subprocess.DEVNULL,
) -> Iterator[str]:
    """The server's base URL once /health answers; stopped (SIGTERM) afterwards."""
    process = subprocess.Popen(
        [str(PORTAL), "serve", "--port", str(port), *options],
        env=environment(env),
        stdout=output,
        stderr=subprocess.STDOUT if output != subprocess.DEVNULL else subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("portal serve stopped by itself")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("portal serve did not answer within 60 s")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
