"""floor: account leases (one writer per journal account)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "floor_account_leases",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=160), nullable=False),
        sa.Column("token", sa.Integer(), nullable=False),
        sa.Column("acquired_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_floor_account_leases")),
    )


def downgrade() -> None:
    op.drop_table("floor_account_leases")
