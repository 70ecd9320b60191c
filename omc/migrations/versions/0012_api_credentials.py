"""api: per-user credentials, encrypted (`api_credentials`)

New table only: exchange and LLM keys of each user as Fernet tokens, with a masked hint and
their created / rotated / checked / last-used times (see `omc.api.models.Credential`).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 13:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import omc.core.db_types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = omc.core.db_types.UTCDateTime
    op.create_table(
        "api_credentials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("hint", sa.String(length=16), nullable=False),
        sa.Column("created_at", when(), nullable=False),
        sa.Column("rotated_at", when(), nullable=True),
        sa.Column("checked_at", when(), nullable=True),
        sa.Column("last_used_at", when(), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["api_users.id"],
            name=op.f("fk_api_credentials_owner_id_api_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_credentials")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_api_credentials_owner_id_name")),
    )


def downgrade() -> None:
    op.drop_table("api_credentials")
