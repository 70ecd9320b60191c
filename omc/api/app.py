"""The FastAPI application: `create_app(settings)` wires the state and the routers under
`/api/v1` (OpenAPI at `/api/v1/openapi.json`, docs at `/api/v1/docs`), and the web dashboard
at `/` (`omc.web.dashboard`).

The app uses one engine (already migrated: `omc serve` passes the CLI's, which
`omc.cli.context.engine` brings up to the latest schema), the token signer (key derived from the
secret, `omc.api.auth.secret`), the login limiter, the backtest job pool and the credential
vault (`omc.api.vault`, its key derived from the same secret); jobs cut off by a previous stop
are recovered at creation and the pool is shut down with the app. With `OMC_BROKER_URL` set,
backtests go to the queue's workers instead (`omc.api.queued`).

Outside `/api/v1`: `/health` (alive), `/ready` (database, broker, schema at head) and
`/metrics` (Prometheus, `omc.ops.metrics`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import Depends, FastAPI
from prometheus_client import make_asgi_app
from sqlalchemy import Engine

from omc.api import errors
from omc.api.auth.ratelimit import LoginLimiter
from omc.api.auth.secret import derive, load_secret
from omc.api.auth.tokens import TokenSigner
from omc.api.jobs import BacktestJobs
from omc.api.owner_llm import owner_settings
from omc.api.routes import (
    accounts,
    alerts,
    auth,
    backtests,
    collectors,
    credentials,
    feeds,
    lab,
    ledgers,
    ops,
    sessions,
    stream,
    system,
    users,
)
from omc.api.services.lab import LabStudies
from omc.api.services.paper import PaperSessions
from omc.api.settings import ApiSettings
from omc.api.state import ApiState, SchemaCheck
from omc.api.vault import Vault
from omc.core.config import Settings
from omc.core.db import make_engine
from omc.floor.trading.reads import Views
from omc.ops.queue.settings import QueueSettings
from omc.web import dashboard

PREFIX = "/api/v1"


def build_state(
    settings: Settings,
    api: ApiSettings | None = None,
    engine: Engine | None = None,
    schema: SchemaCheck | None = None,
) -> ApiState:
    api = api or ApiSettings()
    secret = load_secret(api.secret_key, settings.data_dir)
    if engine is None:  # `omc serve` hands over its engine, migrated (`omc db upgrade`)
        engine = make_engine(settings.effective_database_url)
    queue = QueueSettings()
    send = None
    if queue.broker_url is not None:  # backtests go to the workers
        from omc.api.queued import send_backtest
        from omc.ops.queue.app import configure

        configure(queue)
        send = send_backtest
    jobs = BacktestJobs(engine, settings, api.api_workers, send)
    jobs.recover()
    paper = PaperSessions(engine, settings, api.paper_sessions)
    paper.recover()
    vault = Vault(secret)
    lab = LabStudies(
        engine, settings, owner_settings=lambda uid: owner_settings(settings, engine, vault, uid)
    )
    lab.recover()
    return ApiState(
        settings=settings,
        api=api,
        engine=engine,
        signer=TokenSigner(
            derive(secret, "jwt"),
            timedelta(minutes=api.access_token_minutes),
            timedelta(hours=api.refresh_token_hours),
        ),
        limiter=LoginLimiter(api.login_max_failures, api.login_max_failures_ip, api.login_window_s),
        csrf_key=derive(secret, "csrf"),
        jobs=jobs,
        paper=paper,
        lab=lab,
        views=Views(engine),
        vault=vault,
        broker_url=queue.broker_url,
        schema=schema,
    )


def create_app(
    settings: Settings,
    api: ApiSettings | None = None,
    engine: Engine | None = None,
    schema: SchemaCheck | None = None,
) -> FastAPI:
    state = build_state(settings, api, engine, schema)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.jobs.shutdown(wait=False)
        state.paper.shutdown(wait=False)
        state.lab.shutdown(wait=False)

    app = FastAPI(
        title="Oh My Coins API",
        version="1",
        description="Every OMC capability over HTTP, per user. Log in with "
        "`POST /api/v1/auth/login`, then send `Authorization: Bearer <access_token>`.",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(errors.reject_nul)],
    )
    app.state.omc = state
    errors.install(app)
    for module in (
        system,
        auth,
        backtests,
        ledgers,
        feeds,
        accounts,
        sessions,
        credentials,
        users,
        collectors,
        alerts,
        stream,
        lab,
        ops,
    ):
        app.include_router(module.router, prefix=PREFIX)
    dashboard.install(app)
    app.include_router(system.probes)  # /health and /ready, where orchestrators look
    app.mount("/metrics", make_asgi_app(registry=metrics_registry(state.engine, settings)))
    return app


def metrics_registry(engine: Engine, settings: Settings) -> Any:
    """The Prometheus registry of `omc.ops.metrics` (the one `omc metrics serve` serves)."""
    from omc.floor.trading.guard import GuardSettings
    from omc.ops.metrics import registry

    return registry(engine, settings, GuardSettings())
