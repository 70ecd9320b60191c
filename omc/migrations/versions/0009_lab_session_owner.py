"""lab: the process that runs a study (`lab_sessions.owner`)

A study a `kill -9` left `running` is closed as `interrupted` by the next `omc lab` command
when its owner (`host:pid:token`) is a process of this host that has ended.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 12:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("lab_sessions") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("lab_sessions") as batch:
        batch.drop_column("owner")
