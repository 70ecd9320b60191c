"""`omc serve`: the HTTP API and the web dashboard (uvicorn) on 127.0.0.1:8000 by default.

Binding any address other than loopback needs TLS (`OMC_TLS_CERTFILE` and `OMC_TLS_KEYFILE`)
or the explicit `--insecure-public` flag; otherwise one line and exit 2. FastAPI and uvicorn
are imported only here, so `omc --help` stays fast. `omc demo --serve` serves through
`build` and `run` too."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

import typer

from omc.cli.context import engine, err_console, fail, settings

if TYPE_CHECKING:  # SQLAlchemy, FastAPI: imported when serving (omc --help stays light)
    from fastapi import FastAPI
    from sqlalchemy import Engine

    from omc.api.settings import ApiSettings


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _schema(db: Engine) -> tuple[str | None, str | None]:
    """(current, head) migration revisions, for `/ready`."""
    from omc.migrations import current_revision, head_revision

    return current_revision(db), head_revision()


def build(host: str, insecure_public: bool) -> tuple[FastAPI, ApiSettings]:
    """The app on the CLI's (migrated) engine, after the bind and TLS checks (one line and
    exit 2 when they fail)."""
    from omc.api.settings import ApiSettings

    api = ApiSettings()
    if (api.tls_certfile is None) != (api.tls_keyfile is None):
        fail("TLS needs both OMC_TLS_CERTFILE and OMC_TLS_KEYFILE")
    if not is_loopback(host) and not api.tls and not insecure_public:
        fail(
            f"refusing to listen on {host} without TLS: set OMC_TLS_CERTFILE and "
            "OMC_TLS_KEYFILE, or pass --insecure-public"
        )
    for path in (api.tls_certfile, api.tls_keyfile):
        if path is not None and not path.is_file():
            fail(f"TLS file {path} does not exist")
    from omc.api.app import create_app
    from omc.api.auth.secret import SecretKeyError

    try:
        return create_app(settings(), api, engine(), schema=_schema), api
    except SecretKeyError as exc:
        fail(str(exc))


def url(host: str, port: int, api: ApiSettings) -> str:
    return f"{'https' if api.tls else 'http'}://{host}:{port}"


def run(application: FastAPI, host: str, port: int, api: ApiSettings) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import uvicorn

    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=settings().log_level.lower(),
        ssl_certfile=str(api.tls_certfile) if api.tls else None,
        ssl_keyfile=str(api.tls_keyfile) if api.tls else None,
        server_header=False,
    )


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
        insecure_public: bool = typer.Option(
            False,
            "--insecure-public",
            help="Allow a non-loopback address without TLS (tokens travel in clear text).",
        ),
    ) -> None:
        """Serve the HTTP API (docs at /api/v1/docs) and the dashboard (at /); log in with a
        user of `omc users create`."""
        application, api = build(host, insecure_public)
        base = url(host, port, api)
        err_console.print(f"OMC dashboard on {base}/ — API on {base}/api/v1 (docs: /api/v1/docs)")
        run(application, host, port, api)
