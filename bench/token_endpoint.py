"""Benchmark: /connect/token throughput and latency under wrk.

    uv run python bench/token_endpoint.py [--workers 2] [--seconds 15] [--connections 32]

Starts `portal serve --workers N --no-access-log` on a fresh database (embedded PostgreSQL,
or the server at DATABASE_URL) with one client holding five schools' scopes, then drives the
token endpoint with wrk (Debian's `wrk` package) from the same machine, and reports requests
per second and the latency distribution. Every request is a full client_credentials exchange: client
authentication, scope resolution and an ES256-signed JWT.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import db
from app.config import PROJECT_ROOT, get_settings
from app.db import EmbeddedPostgres, create_database, drop_database, with_database
from app.identity.importer import ClientSpec, import_clients
from app.identity.service import secret_hash
from app.piccolo_conf import DB

CLIENT_ID = "bench_client"
SECRET = "bench-secret-0123456789abcdef"
LUA = """
wrk.method = "POST"
wrk.body = "grant_type=client_credentials&client_id=%s&client_secret=%s"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare(url: str) -> None:
    settings = get_settings()
    db.configure(DB, url, settings)
    async with db.connected(DB):
        await db.migrate()
        scopes = [f"api_informat_sas_leerlingen.leerlingen.{100000 + n}" for n in range(5)]
        await import_clients(
            [ClientSpec(CLIENT_ID, [(secret_hash(SECRET), None)], scopes, ["client_credentials"])],
            settings,
        )


def run_wrk(base: str, seconds: int, connections: int) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % (CLIENT_ID, SECRET))
    try:
        result = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                script.name,
                f"{base}/connect/token",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script.name)
    return result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2

    settings = get_settings()
    embedded = None
    if settings.embedded_database:
        embedded = EmbeddedPostgres(PROJECT_ROOT / ".data" / "bench-postgres")
        embedded.start(database="bench_admin")
        admin, url = embedded.url("postgres"), embedded.url("portal_token_bench")
    else:
        admin = with_database(settings.database.url, "postgres")
        url = with_database(settings.database.url, "portal_token_bench")
    server = None
    try:
        asyncio.run(drop_database(admin, "portal_token_bench"))
        asyncio.run(create_database(admin, "portal_token_bench"))
        asyncio.run(prepare(url))
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url}
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("portal")),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(arguments.workers),
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        check = httpx.post(
            f"{base}/connect/token",
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": SECRET,
            },
        )
        check.raise_for_status()
        run_wrk(base, 3, arguments.connections)  # warm up
        output = run_wrk(base, arguments.seconds, arguments.connections)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=15)
        if embedded:
            embedded.stop()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    percentiles = dict(re.findall(r"\s+(50|75|90|99)%\s+([\d.]+\w+)", output))
    print(
        f"/connect/token, {arguments.workers} process(es), {arguments.connections} connections,"
        f" {arguments.seconds} s: {rate.group(1) if rate else '?'} requests/s,"
        f" p50 {percentiles.get('50')}, p99 {percentiles.get('99')},"
        f" errors {errors.group(1) if errors else 0}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
