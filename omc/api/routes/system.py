"""System routes: `/api/v1/health` (the server up and its database reachable), and outside
the API prefix, where load balancers and orchestrators look, `/health` (alive: the process
answers, nothing else is checked) and `/ready` (the database answers, the broker answers
when one is configured, and the schema is at the head revision this version ships; 503
with the reasons otherwise). No login needed."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from omc.api.auth.deps import state
from omc.api.state import ApiState
from omc.core.masking import mask_text

router = APIRouter(tags=["system"])
probes = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=Health)
def health(st: ApiState = Depends(state)) -> Health:
    """`ok` when the database answers."""
    with st.engine.connect() as conn:
        conn.execute(text("select 1"))
    return Health(status="ok", database=st.engine.dialect.name)


class Alive(BaseModel):
    status: str


@probes.get("/health", response_model=Alive)
def alive() -> Alive:
    """The process answers (liveness: restart it when this fails)."""
    return Alive(status="ok")


class Ready(BaseModel):
    status: str
    checks: dict[str, str]
    reasons: list[str]


def readiness(st: ApiState) -> Ready:
    """Every check's outcome (`ok`, `skipped` or what is wrong)."""
    checks: dict[str, str] = {}
    try:
        with st.engine.connect() as conn:
            conn.execute(text("select 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure to answer means "not ready"
        checks["database"] = mask_text(f"unreachable: {type(exc).__name__}: {exc}", 200)
    if st.broker_url is None:
        checks["broker"] = "skipped (no OMC_BROKER_URL: jobs run in this process)"
    else:
        from omc.ops.queue.app import broker_problem

        problem = broker_problem(st.broker_url)
        checks["broker"] = "ok" if problem is None else f"unreachable: {problem}"
    if st.schema is None:
        checks["migrations"] = "skipped (not wired)"
    elif checks["database"] != "ok":
        checks["migrations"] = "unknown (database unreachable)"
    else:
        try:
            current, head = st.schema(st.engine)
            checks["migrations"] = (
                "ok"
                if current == head
                else f"schema at {current or 'nothing'}, this version needs {head}: "
                "run `omc db upgrade`"
            )
        except Exception as exc:  # an unreadable version table is not ready either
            checks["migrations"] = mask_text(f"unreadable: {type(exc).__name__}: {exc}", 200)
    reasons = [
        f"{name}: {value}"
        for name, value in checks.items()
        if value != "ok" and not value.startswith("skipped")
    ]
    return Ready(status="ready" if not reasons else "not ready", checks=checks, reasons=reasons)


@probes.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(st: ApiState = Depends(state)) -> JSONResponse:
    """Ready for traffic: database, broker (when configured) and schema (503 otherwise)."""
    report = readiness(st)
    return JSONResponse(report.model_dump(), status_code=200 if not report.reasons else 503)
