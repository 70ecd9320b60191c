"""api + floor: account owners, paper sessions run by the server, per-account Guard limits

New tables only: `api_accounts`, `api_paper_sessions` (see `omc.api.models`) and
`floor_guard_limits` (see `omc.floor.models`).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 13:20:17.651469
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "floor_guard_limits",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("limits", sa.Text(), nullable=False),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_floor_guard_limits")),
    )
    op.create_table(
        "api_accounts",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("cash", omc.core.db_types.ExactDecimal(), nullable=False),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_users.id"],
            name=op.f("fk_api_accounts_owner_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_api_accounts")),
    )
    with op.batch_alter_table("api_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_api_accounts_owner", ["owner_id"], unique=False)

    op.create_table(
        "api_paper_sessions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("bars_done", sa.Integer(), nullable=False),
        sa.Column("bars_total", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("started_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_users.id"],
            name=op.f("fk_api_paper_sessions_owner_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_paper_sessions")),
    )
    with op.batch_alter_table("api_paper_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_api_paper_sessions_account", ["account"], unique=False)
        batch_op.create_index(
            "ix_api_paper_sessions_owner_created", ["owner_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("api_paper_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_api_paper_sessions_owner_created")
        batch_op.drop_index("ix_api_paper_sessions_account")

    op.drop_table("api_paper_sessions")
    with op.batch_alter_table("api_accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_api_accounts_owner")

    op.drop_table("api_accounts")
    op.drop_table("floor_guard_limits")
