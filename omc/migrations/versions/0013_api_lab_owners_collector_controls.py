"""api + ledgers: who owns each Lab session, collectors paused by an admin

New tables only: `api_lab_owners` (see `omc.api.models`) and `collector_controls` (see
`omc.ledgers.models`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 13:42:20.730857
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types


revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "collector_controls",
        sa.Column("collector", sa.String(length=64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("collector", name=op.f("pk_collector_controls")),
    )
    op.create_table(
        "api_lab_owners",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", omc.core.db_types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_users.id"],
            name=op.f("fk_api_lab_owners_owner_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_api_lab_owners")),
    )
    with op.batch_alter_table("api_lab_owners", schema=None) as batch_op:
        batch_op.create_index("ix_api_lab_owners_owner", ["owner_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_lab_owners", schema=None) as batch_op:
        batch_op.drop_index("ix_api_lab_owners_owner")

    op.drop_table("api_lab_owners")
    op.drop_table("collector_controls")
