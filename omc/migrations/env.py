"""Alembic environment: runs migrations on the engine handed over by `omc.migrations.upgrade`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import omc.api.models
import omc.floor.models
import omc.lab.models
import omc.ledgers.models
import omc.ops.models  # noqa: F401  (registers the tables)
from omc.core.db import make_engine
from omc.core.db_types import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
