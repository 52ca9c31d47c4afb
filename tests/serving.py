"""`portal serve` in a subprocess, as tests that need a real server (or several) start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx

PORTAL = Path(sys.executable).with_name("portal")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def portal_serve(
    port: int, *options: str, env: dict[str, str], output: IO[Any] | int = subprocess.DEVNULL
) -> Iterator[str]:
    """The server's base URL once /health answers; stopped (SIGTERM) afterwards."""
    process = subprocess.Popen(
        [str(PORTAL), "serve", "--port", str(port), *options],
        env={**os.environ, **env},
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
