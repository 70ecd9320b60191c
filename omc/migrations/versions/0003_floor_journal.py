"""floor: trading journal, kill switch, capital stages

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 00:34:43.277987
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "floor_capital_stages",
        sa.Column("strategy", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("cap", omc.core.db_types.ExactDecimal(), nullable=False),
        sa.Column("stage_started_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("last_breach_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("strategy", name=op.f("pk_floor_capital_stages")),
    )
    op.create_table(
        "floor_journal",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("ts", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("strategy", sa.String(length=64), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=True),
        sa.Column("client_order_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_floor_journal")),
        sa.UniqueConstraint("event_id", name=op.f("uq_floor_journal_event_id")),
    )
    with op.batch_alter_table("floor_journal", schema=None) as batch_op:
        batch_op.create_index("ix_floor_journal_account_seq", ["account", "seq"], unique=False)

    op.create_table(
        "floor_kill_switch",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("flatten", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_floor_kill_switch")),
    )


def downgrade() -> None:
    op.drop_table("floor_kill_switch")
    with op.batch_alter_table("floor_journal", schema=None) as batch_op:
        batch_op.drop_index("ix_floor_journal_account_seq")

    op.drop_table("floor_journal")
    op.drop_table("floor_capital_stages")
