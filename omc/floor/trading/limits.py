"""Per-account Guard limits: the configured limits (`OMC_GUARD_*`, `GuardSettings`) with the
account's overrides on top (`floor_guard_limits`).

`effective(engine, account, base)` is what a session's Guard uses — `omc trade paper` and
paper sessions started over the API alike; `set_overrides` validates a change against
`GuardLimits` (ValueError, one line, otherwise) and stores only the fields that differ from
`base`, so clearing an override is setting it back to the configured value. Decimals are
stored as text (exact)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from omc.core.time import utcnow
from omc.core.upsert import upsert
from omc.floor.models import GuardLimitOverride
from omc.floor.trading.guard import GuardLimits

TABLE = GuardLimitOverride.__table__


def _text(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value


def overrides(engine: Engine, account: str) -> dict[str, Any]:
    """The account's stored overrides (field -> JSON value), {} when there are none."""
    with engine.connect() as conn:
        raw = conn.execute(select(TABLE.c.limits).where(TABLE.c.account == account)).scalar()
    found = json.loads(raw) if raw else {}
    return {k: v for k, v in found.items() if k in GuardLimits.model_fields}


def effective(engine: Engine, account: str, base: GuardLimits) -> GuardLimits:
    """`base` with the account's overrides applied."""
    found = overrides(engine, account)
    if not found:
        return base
    return GuardLimits(**{**base.model_dump(), **found})


def set_overrides(
    engine: Engine, account: str, changes: dict[str, Any], base: GuardLimits
) -> tuple[GuardLimits, GuardLimits]:
    """Apply `changes` (field -> value) to the account's limits; returns (before, after).
    ValueError (naming the field) for an unknown field or a value `GuardLimits` refuses."""
    unknown = sorted(set(changes) - set(GuardLimits.model_fields))
    if unknown:
        raise ValueError(f"{unknown[0]}: not a Guard limit")
    before = effective(engine, account, base)
    try:
        after = GuardLimits(**{**before.model_dump(), **changes})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "limits"
        raise ValueError(f"{field}: {err.get('msg', 'invalid')}") from None
    base_values, after_values = base.model_dump(), after.model_dump()
    stored = {k: _text(v) for k, v in after_values.items() if v != base_values.get(k)}
    upsert(
        engine,
        TABLE,  # type: ignore[arg-type]
        [
            {
                "account": account,
                "limits": json.dumps(stored, sort_keys=True),
                "updated_at": utcnow(),
            }
        ],
        update=("limits", "updated_at"),
    )
    return before, after
