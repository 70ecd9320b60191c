"""ledgers: quarantine payload size, run owner, per-coin alerts

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload_size", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("collector_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("owner", sa.String(length=128), nullable=True))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("coin", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.drop_constraint("uq_alerts_source_event_id_kind", type_="unique")
        batch_op.create_unique_constraint(
            "uq_alerts_source_event_id_kind_coin", ["source", "event_id", "kind", "coin"]
        )


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("uq_alerts_source_event_id_kind_coin", type_="unique")
        batch_op.create_unique_constraint(
            "uq_alerts_source_event_id_kind", ["source", "event_id", "kind"]
        )
        batch_op.drop_column("coin")
    with op.batch_alter_table("collector_runs", schema=None) as batch_op:
        batch_op.drop_column("owner")
    with op.batch_alter_table("quarantine", schema=None) as batch_op:
        batch_op.drop_column("payload_size")
