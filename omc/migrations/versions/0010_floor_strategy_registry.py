"""floor: the strategy registry (`floor_strategies`) and its history (`floor_strategy_changes`)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "floor_strategies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("expectations", sa.Text(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("stage_since", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("stage_mark", sa.BigInteger(), nullable=False),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_floor_strategies")),
    )
    op.create_index("ix_floor_strategies_account", "floor_strategies", ["account"])
    op.create_table(
        "floor_strategy_changes",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("strategy_id", sa.String(length=32), nullable=False),
        sa.Column("ts", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("from_stage", sa.String(length=16), nullable=True),
        sa.Column("to_stage", sa.String(length=16), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_floor_strategy_changes")),
    )
    op.create_index(
        "ix_floor_strategy_changes_strategy", "floor_strategy_changes", ["strategy_id", "seq"]
    )


def downgrade() -> None:
    op.drop_index("ix_floor_strategy_changes_strategy", table_name="floor_strategy_changes")
    op.drop_table("floor_strategy_changes")
    op.drop_index("ix_floor_strategies_account", table_name="floor_strategies")
    op.drop_table("floor_strategies")
