"""ops: the job journal of the queue (`ops_jobs`): one row per job, a unique slot key per
scheduled slot, attempts and the dead letters

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 13:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ops_jobs",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("slot_key", sa.String(length=200), nullable=True),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=160), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("started_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", omc.core.db_types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ops_jobs")),
        sa.UniqueConstraint("slot_key", name=op.f("uq_ops_jobs_slot_key")),
    )
    op.create_index("ix_ops_jobs_status", "ops_jobs", ["status", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ops_jobs_status", table_name="ops_jobs")
    op.drop_table("ops_jobs")
