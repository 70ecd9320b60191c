"""`/api/v1/health`: is the server up and its database reachable (no login needed)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import text

from omc.api.auth.deps import state
from omc.api.state import ApiState

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/health", response_model=Health)
def health(st: ApiState = Depends(state)) -> Health:
    """`ok` when the database answers."""
    with st.engine.connect() as conn:
        conn.execute(text("select 1"))
    return Health(status="ok", database=st.engine.dialect.name)
