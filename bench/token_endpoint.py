"""Benchmark: /connect/token against node-oidc-provider, under wrk, in one run.

    uv run python bench/token_endpoint.py [--workers 2] [--seconds 15] [--connections 32]
                                          [--runs 3] [--clients 50000] [--portal-only]
                                          [--diagnostics]

Two mixes, each served by the portal and by node-oidc-provider (bench/oidc-provider, npm
`oidc-provider`), each server in `--workers` processes on loopback:

- **one client**: every request the same client_credentials exchange (client_secret_post,
  five schools' scopes);
- **many clients**: `--clients` clients (a real deployment has one per school per
  application), each request from a random one, asking for its school's Leerlingen and
  Voorinschrijvingen scopes (wrk's Lua `request()` builds each body).

Servers: the portal (`portal serve --workers N --no-access-log`) signing ES256 and signing
RS256 (`identity.signing_algorithm`), on a fresh database (the embedded PostgreSQL, or the
server at DATABASE_URL); node-oidc-provider with its clients in memory, and reading them from
the same PostgreSQL on every request. Every server is measured in turn, the mixes interleaved,
`--runs` times; the report gives medians of requests per second, latency percentiles and each
server's worker memory (RSS) after its run, the portal's ratios, and how long
`portal clients import` took for the many clients (twice: the second run changes nothing).
Needs wrk, node and npm; `npm ci` runs in bench/oidc-provider when its packages are missing.

With `--diagnostics`, only the portal (ES256) is measured, with `identity.token_diagnostics` on
and off in turn, and the report gives the ratio of their throughputs (the goal: within 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
PORTAL = str(Path(sys.executable).with_name("portal"))
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
SCHOOLS = 3000
# The many-clients mix: client n, its secret and its school's two scopes, built in wrk.
MANY_LUA = """
local count = %(count)d
local schools = %(schools)d
local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
local counter = 0
function setup(thread)
   counter = counter + 1
   thread:set("seed", counter)
end
function init(args)
   math.randomseed(os.time() * 1000 + seed)
end
function request()
   local n = math.random(0, count - 1)
   local school = 100000 + n %% schools
   local body = "grant_type=client_credentials&client_id=bench_client_" .. n
      .. "&client_secret=bench-secret-" .. n .. "-0123456789"
      .. "&scope=api_informat_sas_leerlingen.leerlingen." .. school
      .. "+api_informat_sas_leerlingen.voorinschrijvingen." .. school
   return wrk.format("POST", nil, headers, body)
end
"""


def many_secret(n: int) -> str:
    return f"bench-secret-{n}-0123456789"


def many_scopes(n: int) -> list[str]:
    school = 100000 + n % SCHOOLS
    return [
        f"api_informat_sas_leerlingen.leerlingen.{school}",
        f"api_informat_sas_leerlingen.voorinschrijvingen.{school}",
    ]


@dataclass(frozen=True)
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    token_path: str
    cwd: Path | None = None


@dataclass(frozen=True)
class Mix:
    name: str
    # The request the start-up check sends, and the scopes it must be granted.
    probe: str
    probe_scopes: list[str]
    lua: str | None = None


@dataclass
class Measured:
    results: list[Result] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    ready_s: list[float] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def prepare_one(url: str) -> None:
    settings = get_settings()
    db.configure(DB, url, settings)
    async with db.connected(DB):
        await import_clients(
            [ClientSpec(CLIENT_ID, [(secret_hash(SECRET), None)], SCOPES, ["client_credentials"])],
            settings,
        )


def import_many(url: str, count: int) -> list[float]:
    """`portal clients import` of the many clients, twice; the seconds each run took."""
    exported = [
        {
            "ClientId": f"bench_client_{n}",
            "ClientSecrets": [{"Type": "SharedSecret", "Value": secret_hash(many_secret(n))}],
            "AllowedGrantTypes": ["client_credentials"],
            "AllowedScopes": many_scopes(n),
        }
        for n in range(count)
    ]
    times = []
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(exported, file)
    try:
        for _ in range(2):
            started = time.monotonic()
            output = subprocess.run(
                [PORTAL, "clients", "import", file.name],
                env={**os.environ, "DATABASE_URL": url},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            times.append(time.monotonic() - started)
            print(f"portal clients import: {times[-1]:.1f} s —", " / ".join(output.splitlines()))
    finally:
        os.unlink(file.name)
    return times


def worker_rss_mb(pid: int) -> float:
    """The largest resident memory of the server's worker processes (its children)."""
    children = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False
    ).stdout.split()
    sizes = []
    for child in children or [str(pid)]:
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except FileNotFoundError:
            continue
        found = re.search(r"VmRSS:\s+(\d+) kB", status)
        if found:
            sizes.append(int(found.group(1)) / 1024)
    return max(sizes, default=0.0)


@contextmanager
def serving(
    server: Server, port: int, mix: Mix
) -> Iterator[tuple[str, subprocess.Popen[bytes], float]]:
    """The server's token endpoint URL, its process and the seconds it took to issue one
    token of the mix."""
    started = time.monotonic()
    process = subprocess.Popen(
        server.command,
        env={**os.environ, **server.env, "PORT": str(port)},
        cwd=server.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}{server.token_path}"
    try:
        for _ in range(1200):
            try:
                answer = httpx.post(
                    url,
                    content=mix.probe,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=2,
                )
                answer.raise_for_status()
                if sorted(answer.json()["scope"].split()) != sorted(mix.probe_scopes):
                    raise SystemExit(f"{server.name} granted {answer.json()['scope']!r}")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{server.name} did not start")
        yield url, process, time.monotonic() - started
    finally:
        process.terminate()
        process.wait(timeout=15)


def servers(url: str, workers: int, port: int, many: int) -> list[Server]:
    portal = [PORTAL, "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"]
    node = {"WORKERS": str(workers), "CLIENT_ID": CLIENT_ID, "CLIENT_SECRET": SECRET}
    node["SCOPES"] = " ".join(SCOPES)
    if many:
        node.update({"MANY": str(many), "SCHOOLS": str(SCHOOLS)})
    env = {"DATABASE_URL": url, "PORTAL_MAIL_WORKER_IN_PROCESS": "false"}
    return [
        Server(
            "portal ES256",
            portal,
            {**env, "PORTAL_IDENTITY_SIGNING_ALGORITHM": "ES256"},
            "/connect/token",
        ),
        Server(
            "portal RS256",
            portal,
            {**env, "PORTAL_IDENTITY_SIGNING_ALGORITHM": "RS256"},
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


def with_and_without_diagnostics(portal: Server) -> list[Server]:
    """The portal as configured, and with the token traffic diagnostics turned off."""
    return [
        Server(
            f"{portal.name}, diagnostics {state}",
            portal.command,
            {**portal.env, "PORTAL_IDENTITY_TOKEN_DIAGNOSTICS": value},
            portal.token_path,
        )
        for state, value in (("on", "true"), ("off", "false"))
    ]


def report(mix: str, measured: dict[str, Measured], arguments: argparse.Namespace) -> None:
    print(
        f"\n### {mix}: {arguments.workers} processes each, {arguments.connections} connections,"
        f" {arguments.seconds} s, median of {arguments.runs} runs\n"
    )
    print("| server | requests/s | p50 | p99 | worker RSS | errors |")
    print("|---|---|---|---|---|---|")
    medians = {}
    for name, each in measured.items():
        runs = each.results
        rate = statistics.median(r.rate for r in runs)
        p99 = statistics.median(r.p99 for r in runs)
        medians[name] = (rate, p99)
        print(
            f"| {name} | {rate:,.0f} | {statistics.median(r.p50 for r in runs):.2f} ms"
            f" | {p99:.2f} ms | {statistics.median(each.rss_mb):.0f} MB"
            f" | {sum(r.errors for r in runs)} |"
        )
    print()
    for portal in (name for name in medians if name.startswith("portal")):
        portal_rate, portal_p99 = medians[portal]
        for name, (rate, p99) in medians.items():
            if not name.startswith("portal"):
                print(
                    f"{portal} / {name}: {portal_rate / rate:.2f}x the throughput,"
                    f" p99 {portal_p99:.2f} ms against {p99:.2f} ms"
                )
    on, off = "portal ES256, diagnostics on", "portal ES256, diagnostics off"
    if on in medians and off in medians:
        print(f"diagnostics on / off: {medians[on][0] / medians[off][0]:.3f}x the throughput")
    if "portal ES256" in medians and "portal RS256" in medians:
        print(
            f"RS256 / ES256: {medians['portal RS256'][0] / medians['portal ES256'][0]:.2f}x"
            " the throughput"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", type=int, default=50_000, help="clients in the many mix")
    parser.add_argument(
        "--portal-only", action="store_true", help="measure the portal alone (no ratios)"
    )
    parser.add_argument(
        "--diagnostics",
        action="store_true",
        help="the portal (ES256) with and without identity.token_diagnostics, nothing else",
    )
    arguments = parser.parse_args()
    for tool in ("wrk", "node", "npm"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (Debian: apt-get install wrk nodejs npm)", file=sys.stderr)
            return 2
    if not (PEER / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEER, check=True)

    count = arguments.clients
    mixes = [
        Mix("one client", BODY, SCOPES),
        Mix(
            f"{count:,} clients, each request from a random one",
            urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": "bench_client_0",
                    "client_secret": many_secret(0),
                    "scope": " ".join(many_scopes(0)),
                }
            ),
            many_scopes(0),
            MANY_LUA % {"count": count, "schools": SCHOOLS},
        ),
    ]
    measured: dict[str, dict[str, Measured]] = {mix.name: {} for mix in mixes}
    with fresh_database(DATABASE) as url:
        asyncio.run(prepare_one(url))
        import_times = import_many(url, count)
        for run in range(arguments.runs):
            for mix in mixes:
                port = free_port()
                chosen = servers(url, arguments.workers, port, count if mix.lua else 0)
                if arguments.diagnostics:
                    chosen = with_and_without_diagnostics(chosen[0])
                elif arguments.portal_only:
                    chosen = chosen[:2]
                for server in chosen:
                    with serving(server, port, mix) as (token_url, process, ready):
                        # Warm up: the processes fill their memories, connections open.
                        run_wrk(token_url, mix.probe, 3, arguments.connections, lua=mix.lua)
                        result = run_wrk(
                            token_url,
                            mix.probe,
                            arguments.seconds,
                            arguments.connections,
                            lua=mix.lua,
                        )
                        rss = worker_rss_mb(process.pid)
                    each = measured[mix.name].setdefault(server.name, Measured())
                    each.results.append(result)
                    each.rss_mb.append(rss)
                    each.ready_s.append(ready)
                    print(
                        f"run {run + 1}, {mix.name}: {server.name}: {result.rate:,.0f} requests/s,"
                        f" p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms,"
                        f" worker RSS {rss:.0f} MB, ready in {ready:.1f} s,"
                        f" errors {result.errors}",
                        flush=True,
                    )

    for mix in mixes:
        report(mix.name, measured[mix.name], arguments)
    print(
        f"\nportal clients import of {count:,} clients: {import_times[0]:.1f} s;"
        f" again (nothing to change): {import_times[1]:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
