"""hardening: repeatable claims, expiring idempotency records

Revision ID: 0002_hardening
Revises: 82fbee0ff6ec
Create Date: 2026-11-25 09:15:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0002_hardening"
down_revision = "82fbee0ff6ec"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=64), nullable=True))
    with op.batch_alter_table("idempotency_records") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_created_at"), ["created_at"], unique=False
        )


def downgrade():
    with op.batch_alter_table("idempotency_records") as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_created_at"))
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("claim_token")
