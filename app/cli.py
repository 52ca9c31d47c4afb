"""The `portal` command: serve, worker, migrate.

Every command that needs the database starts the embedded PostgreSQL when no database URL
is configured, and stops it again on exit (Ctrl-C included).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from app.config import ConfigError, Settings, get_settings, public_url


def _fail(message: str) -> None:
    click.echo(f"portal: {message}", err=True)
    sys.exit(2)


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Settings with a usable database URL; runs the embedded server when none is configured."""
    if not settings.embedded_database:
        yield settings
        return
    from app.db import EmbeddedPostgres

    click.echo(f"Starting the embedded PostgreSQL in {settings.data_dir} …")
    embedded = EmbeddedPostgres(settings.data_dir)
    url = embedded.start()
    try:
        yield dataclasses.replace(
            settings, database=dataclasses.replace(settings.database, url=url)
        )
    finally:
        click.echo("Stopping the embedded PostgreSQL …")
        embedded.stop()


async def _migrate(settings: Settings) -> list[str]:
    from app import db
    from app.piccolo_conf import DB

    db.configure(DB, settings.database.url, settings)
    async with db.connected(DB):
        return await db.migrate()


def _load() -> Settings:
    try:
        return get_settings()
    except ConfigError as error:
        _fail(str(error))
        raise  # unreachable; keeps type checkers content


@click.group()
def main() -> None:
    """Partnerportaal: partner portal and identity server."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, help="Worker processes.")
@click.option(
    "--access-log/--no-access-log", default=True, show_default=True, help="Log every request."
)
def serve(host: str, port: int, workers: int, access_log: bool) -> None:
    """Migrate the database and serve the portal (and deliver mail)."""
    import uvicorn

    from app import create_app

    settings = _load()
    announce = not settings.base_url_given
    if announce:
        # The issuer and mailed links follow the address served; worker processes inherit it.
        os.environ["PORTAL_PORTAL_BASE_URL"] = _served_url(host, port)
        get_settings.cache_clear()
        settings = _load()
    with database(settings) as settings, _announced(settings, announce):
        applied = asyncio.run(_migrate(settings))
        if applied:
            click.echo(f"Applied {len(applied)} migration(s).")
        options = {
            "host": host,
            "port": port,
            # Forwarding headers only from the proxies the settings name.
            "proxy_headers": bool(settings.portal.trusted_proxies.strip()),
            "forwarded_allow_ips": settings.portal.trusted_proxies.strip() or None,
            "access_log": access_log,
            "timeout_graceful_shutdown": 5,
            "log_level": "info",
        }
        click.echo(f"Serving the portal on {_served_url(host, port)} with {workers} process(es)")
        # uvicorn re-raises Ctrl-C after its graceful shutdown; that is the normal way out.
        with contextlib.suppress(KeyboardInterrupt):
            from app import serving

            if workers > 1:
                # Worker processes build the app from the environment (app.asgi); they share
                # this process's database, embedded or not.
                os.environ["DATABASE_URL"] = settings.database.url
                serving.serve(workers, options)
            else:
                application = create_app(settings)
                serving.freeze_startup_objects()
                uvicorn.Server(uvicorn.Config(application, **options)).run()  # type: ignore[arg-type]


def _served_url(host: str, port: int) -> str:
    """The address to reach `portal serve --host H --port P` at, from this machine."""
    if host in {"", "0.0.0.0", "::"}:  # noqa: S104 - a comparison, not a binding
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def _announced(settings: Settings, announce: bool) -> Iterator[None]:
    """Without a configured base URL, tell the other commands where the portal is served."""
    if not announce:
        yield
        return
    from app.config import served_url_file

    path = served_url_file(settings)
    url = settings.portal.base_url.rstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url + "\n")
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if path.read_text().strip() == url:
                path.unlink()


@main.command()
def migrate() -> None:
    """Apply pending database migrations."""
    settings = _load()
    with database(settings) as settings:
        applied = asyncio.run(_migrate(settings))
    click.echo(f"Applied {len(applied)} migration(s)." if applied else "Nothing to migrate.")


@main.command()
def worker() -> None:
    """Deliver the mail outbox until stopped (several may run at once)."""
    from app import db
    from app.housekeeping import Housekeeper
    from app.mail.senders import make_sender
    from app.mail.worker import Worker
    from app.piccolo_conf import DB

    settings = _load()

    async def run(settings: Settings) -> None:
        db.configure(DB, settings.database.url, settings)
        async with db.connected(DB):
            sender = make_sender(settings)
            running = Worker(sender, settings, settings.database.url)
            housekeeper = Housekeeper(sender, settings)
            loop = asyncio.get_running_loop()

            def stop() -> None:
                running.stop()
                housekeeper.stop()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop)
            click.echo(f"Delivering mail with the {settings.mail.backend} backend; Ctrl-C stops.")
            await asyncio.gather(running.run(), housekeeper.run())

    with database(settings) as settings:
        asyncio.run(run(settings))


@main.command()
def translations() -> None:
    """Add new message ids to the catalogs and report what is untranslated."""
    from app.web.catalogs import update

    for language, missing in update().items():
        click.echo(f"{language}: {missing} untranslated")


def _run_with_database(work: Any) -> Any:
    """Run `work(settings)` (a coroutine function) against the configured database."""
    from app import db
    from app.piccolo_conf import DB

    settings = _load()
    with database(settings) as ready:

        async def run() -> Any:
            db.configure(DB, ready.database.url, ready)
            async with db.connected(DB):
                await db.migrate()
                return await work(ready)

        return asyncio.run(run())


@main.group()
def keys() -> None:
    """Signing keys of the identity server."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Start signing with a new key; the previous one stays published for a while."""
    from app.identity import keys as signing

    kid = _run_with_database(signing.rotate)
    click.echo(f"New signing key {kid}; tokens signed with the previous key keep verifying.")


@main.group()
def clients() -> None:
    """Clients of the identity server."""


@clients.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def clients_import(path: str) -> None:
    """Import clients from IdentityServer's client JSON or a CSV (idempotent)."""
    import gc
    from pathlib import Path

    # A short run that builds hundreds of thousands of objects without cycles: the collector
    # would only walk them again and again (half the time of reading 50,000 clients).
    gc.disable()

    from app.identity.importer import import_clients, read_file

    text = Path(path).read_text(encoding="utf-8")
    specs = read_file(path, text)
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            click.echo(
                f"  {done:,} of {total:,} clients ({time.monotonic() - started:.1f} s)", err=True
            )

    async def work(settings: Settings) -> Any:
        return await import_clients(specs, settings, progress=progress)

    report = _run_with_database(work)
    click.echo(f"imported in {time.monotonic() - started:.1f} s (one transaction)")
    for line in report.lines():
        click.echo(line)


@clients.command("add")
@click.argument("client_id")
@click.option("--scope", "scopes", multiple=True, help="A scope to grant; repeat for more.")
def clients_add(client_id: str, scopes: tuple[str, ...]) -> None:
    """Add a client; its secret is read from standard input (never from the command line)."""
    from app.identity.importer import ClientSpec, import_clients
    from app.identity.service import secret_hash

    if sys.stdin.isatty():
        secret = click.prompt("Client secret", hide_input=True, confirmation_prompt=True)
    else:
        secret = sys.stdin.readline().rstrip("\n")
    if len(secret) < 16:
        _fail("a client secret needs at least 16 characters")
    spec = ClientSpec(
        client_id, [(secret_hash(secret), None)], list(scopes), ["client_credentials"]
    )

    async def work(settings: Settings) -> Any:
        return await import_clients([spec], settings, granted_by="portal clients add")

    for line in _run_with_database(work).lines():
        click.echo(line)


@main.group()
def staff() -> None:
    """Back-office staff: the helpdesk and school administrators."""


@staff.command("add")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["helpdesk", "school-admin"]), help="Their role."
)
@click.option(
    "--school",
    "schools",
    multiple=True,
    metavar="NR[:api,api…]",
    help="A school the administrator manages, for every API or the ones listed; repeat for more.",
)
def staff_add(username: str, role: str, schools: tuple[str, ...]) -> None:
    """Add a staff member; the password is read from standard input when it is not a terminal."""
    from app.staff import service as backoffice

    settings = _load()
    try:
        rights = [backoffice.parse_right(school, settings) for school in schools]
    except backoffice.StaffError as error:
        _fail(str(error))
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")

    async def work(_settings: Settings) -> int:
        return await backoffice.add_staff(username, password, role, rights)

    try:
        _run_with_database(work)
    except backoffice.StaffError as error:
        _fail(str(error))
    click.echo(f"Added {username.strip().lower()} ({role}); they sign in at /backoffice/aanmelden.")


@staff.command("reset-code")
@click.argument("username")
def staff_reset_code(username: str) -> None:
    """Turn two-step verification off for a staff member who lost their authenticator."""
    from app.staff import service as backoffice

    async def work(_settings: Settings) -> bool:
        return await backoffice.reset_second_factor(username)

    if not _run_with_database(work):
        _fail(f"no staff member {username.strip().lower()}")
    click.echo(
        f"Two-step verification is off for {username.strip().lower()}; they can enrol again."
    )


@main.group()
def schools() -> None:
    """The schools (institution numbers) school administrators manage."""


@schools.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def schools_import(path: str) -> None:
    """Import schools from a CSV: institution_number,name (idempotent)."""
    from pathlib import Path

    from app.staff import service as backoffice

    text = Path(path).read_text(encoding="utf-8")

    async def work(_settings: Settings) -> tuple[int, int]:
        return await backoffice.import_schools(text)

    try:
        added, renamed = _run_with_database(work)
    except backoffice.StaffError as error:
        _fail(str(error))
    click.echo(f"{added} school(s) added, {renamed} renamed.")


@main.command()
def demo() -> None:
    """Load a small demo (partners, an account, a linkable client) and say how to use it."""
    from app import demo as demo_data

    if _load().production:
        _fail("the demo's accounts have published passwords; it is refused in production")
    info = _run_with_database(demo_data.load)
    click.echo("Demo data loaded." if info.created else "Demo data was already there.")
    click.echo(f"Sign in at /aanmelden as {demo_data.DEMO_EMAIL} with {demo_data.DEMO_PASSWORD}")
    click.echo(
        f"Back-office at /backoffice/aanmelden, password {demo_data.STAFF_PASSWORD}:"
        f" {demo_data.HELPDESK} (helpdesk, one application waits in the queue) and"
        f" {demo_data.SCHOOL_ADMIN} (administrator of schools 123456 and 654321)"
    )
    click.echo("Link an existing client under Applicaties → Ik koppel mijn client ID & secret:")
    click.echo(f"  client ID {demo_data.LINKABLE_CLIENT}, secret {demo_data.LINKABLE_SECRET}")
    base = public_url(_load())
    click.echo(f"Open the portal at {base}")
    click.echo("Get a token for the demo's own client:")
    click.echo(
        "  curl -d grant_type=client_credentials -d client_id=plantyn_demo"
        f" -d client_secret=plantyn-demo-secret-000000 {base}/connect/token"
    )
