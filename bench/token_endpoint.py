"""Benchmark: /connect/token against node-oidc-provider, under wrk, in one run.

    uv run python bench/token_endpoint.py [--workers 2] [--seconds 15] [--connections 32]
                                          [--runs 3]

Three servers answer the same client_credentials request (client_secret_post, five schools'
scopes, an ES256-signed at+jwt access token), each in `--workers` processes on loopback:

- the portal (`portal serve --workers N --no-access-log`) on a fresh database (the embedded
  PostgreSQL, or the server at DATABASE_URL);
- node-oidc-provider (bench/oidc-provider, npm `oidc-provider`) with its client in memory;
- node-oidc-provider reading its client from the same PostgreSQL on every request.

wrk (Debian's `wrk` package) drives each in turn, `--runs` times; the report gives the
median requests per second and latency percentiles per server and the portal's ratios.
Needs wrk, node and npm; `npm ci` runs in bench/oidc-provider when its packages are missing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import db
from app.config import get_settings
from app.identity.importer import ClientSpec, import_clients
from app.identity.service import secret_hash
from app.piccolo_conf import DB
from bench.common import Result, fresh_database, run_wrk

PEER = Path(__file__).resolve().parent / "oidc-provider"
DATABASE = "portal_token_bench"
CLIENT_ID = "bench_client"
SECRET = "bench-secret-0123456789abcdef"
SCOPES = [f"api_informat_sas_leerlingen.leerlingen.{100000 + n}" for n in range(5)]
BODY = urlencode(
    {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "scope": " ".join(SCOPES),
    }
)


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    token_path: str
    cwd: Path | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare(url: str) -> None:
    settings = get_settings()
    db.configure(DB, url, settings)
    async with db.connected(DB):
        await import_clients(
            [ClientSpec(CLIENT_ID, [(secret_hash(SECRET), None)], SCOPES, ["client_credentials"])],
            settings,
        )


@contextmanager
def serving(server: Server, port: int) -> Iterator[str]:
    """The server's token endpoint URL, once it has issued one token."""
    process = subprocess.Popen(
        server.command,
        env={**os.environ, **server.env, "PORT": str(port)},
        cwd=server.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}{server.token_path}"
    try:
        for _ in range(300):
            try:
                answer = httpx.post(
                    url,
                    content=BODY,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=2,
                )
                answer.raise_for_status()
                if sorted(answer.json()["scope"].split()) != SCOPES:
                    raise SystemExit(f"{server.name} granted {answer.json()['scope']!r}")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{server.name} did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def servers(url: str, workers: int, port: int) -> list[Server]:
    portal = str(Path(sys.executable).with_name("portal"))
    node = {"WORKERS": str(workers), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": SECRET}
    node["SCOPES"] = " ".join(SCOPES)
    return [
        Server(
            "portal",
            [portal, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"],
            {"DATABASE_URL": url},
            "/connect/token",
        ),
        Server(
            "node-oidc-provider, clients in memory",
            ["node", "server.mjs"],
            {**node, "CLIENTS": "memory"},
            "/token",
            PEER,
        ),
        Server(
            "node-oidc-provider, clients in PostgreSQL",
            ["node", "server.mjs"],
            {**node, "CLIENTS": "postgres", "DATABASE_URL": url},
            "/token",
            PEER,
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--portal-only", action="store_true", help="measure the portal alone (no ratios)"
    )
    arguments = parser.parse_args()
    for tool in ("wrk", "node", "npm"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: apt-get install wrk nodejs npm)", file=sys.stderr)
            return 2
    if not (PEER / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)

    results: dict[str, list[Result]] = {}
    with fresh_database(DATABASE) as url:
        asyncio.run(prepare(url))
        for run in range(arguments.runs):
            port = free_port()
            measured = servers(url, arguments.workers, port)
            for server in measured[:1] if arguments.portal_only else measured:
                with serving(server, port) as token_url:
                    run_wrk(token_url, BODY, 3, arguments.connections)  # warm up
                    result = run_wrk(token_url, BODY, arguments.seconds, arguments.connections)
                results.setdefault(server.name, []).append(result)
                print(
                    f"run {run + 1}: {server.name}: {result.rate:.0f} requests/s,"
                    f" p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms, errors {result.errors}",
                    flush=True,
                )

    print(
        f"\n/connect/token, {arguments.workers} processes each, {arguments.connections}"
        f" connections, {arguments.seconds} s, median of {arguments.runs} runs\n"
    )
    print("| server | requests/s | p50 | p99 | errors |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, runs in results.items():
        rate = statistics.median(r.rate for r in runs)
        p99 = statistics.median(r.p99 for r in runs)
        medians[name] = (rate, p99)
        print(
            f"| {name} | {rate:.0f} | {statistics.median(r.p50 for r in runs):.2f} ms"
            f" | {p99:.2f} ms | {sum(r.errors for r in runs)} |"
        )
    portal_rate, portal_p99 = medians["portal"]
    print()
    for name, (rate, p99) in medians.items():
        if name != "portal":
            print(
                f"portal / {name}: {portal_rate / rate:.2f}x the throughput,"
                f" p99 {portal_p99:.2f} ms against {p99:.2f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
