"""`GET /api/v1/stream`: Server-Sent Events (`text/event-stream`) — `tick`, `alert`, `order`,
`fill`, `pnl`, `session` and `lab` events, only the caller's own accounts and sessions
(`omc.api.services.stream`), Bearer or cookie auth (a browser's EventSource sends the cookie).
Each event's `data` is one JSON object (decimals as strings, times ISO-8601); a comment line
keeps the connection alive every 15 s. `timeout_s` ends the stream (the client reconnects)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from omc.api.auth.deps import current_user, state
from omc.api.auth.users import UserInfo
from omc.api.schemas.common import ERRORS
from omc.api.services.stream import StreamCursor
from omc.api.state import ApiState

router = APIRouter(tags=["stream"])
KEEPALIVE_S = 15.0


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def frame(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, default=_default)}\n\n"


@router.get(
    "/stream",
    responses={
        **ERRORS,
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
    },
    response_class=StreamingResponse,
)
async def stream(
    request: Request,
    timeout_s: float = Query(3600.0, gt=0, le=86400, description="End the stream after this."),
    user: UserInfo = Depends(current_user),
    st: ApiState = Depends(state),
) -> StreamingResponse:
    """Live updates: ticks, alerts, Lab sessions, orders, fills, P&L, paper sessions."""
    cursor = await run_in_threadpool(StreamCursor, st.engine, st.views, user.id)
    poll_s = st.api.stream_poll_s

    async def events() -> AsyncIterator[str]:
        end = time.monotonic() + timeout_s
        quiet = time.monotonic()
        yield ": connected\n\n"
        while time.monotonic() < end:
            if await request.is_disconnected():
                return
            found = await run_in_threadpool(cursor.poll)
            for event, data in found:
                yield frame(event, data)
            now = time.monotonic()
            if found:
                quiet = now
            elif now - quiet >= KEEPALIVE_S:
                quiet = now
                yield ": keep-alive\n\n"
            await asyncio.sleep(min(poll_s, max(end - time.monotonic(), 0)))

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
