"""api: users, the audit log and backtest jobs (the HTTP API)

New tables only: `api_users`, `api_audit`, `api_backtest_jobs` (see `omc.api.models`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 11:29:55.150984
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ts", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_audit")),
    )
    op.create_index("ix_api_audit_ts", "api_audit", ["ts"], unique=False)
    op.create_table(
        "api_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("token_version", sa.Integer(), nullable=False),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_users")),
        sa.UniqueConstraint("name", name=op.f("uq_api_users_name")),
    )
    op.create_table(
        "api_backtest_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("started_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_users.id"],
            name=op.f("fk_api_backtest_jobs_owner_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_backtest_jobs")),
    )
    op.create_index(
        "ix_api_backtest_jobs_owner_created",
        "api_backtest_jobs",
        ["owner_id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_api_backtest_jobs_owner_created", table_name="api_backtest_jobs")
    op.drop_table("api_backtest_jobs")
    op.drop_table("api_users")
    op.drop_index("ix_api_audit_ts", table_name="api_audit")
    op.drop_table("api_audit")
