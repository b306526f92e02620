"""schedules, their fire times, and what started a run

Revision ID: 0006_schedules
Revises: 0005_flows
Create Date: 2026-11-25 11:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0006_schedules"
down_revision = "0005_flows"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("interval_anchor", sa.DateTime(timezone=True), nullable=True),
        sa.Column("target_type", sa.String(length=40), nullable=False),
        sa.Column("target_id", sa.String(length=36), nullable=False),
        sa.Column("run_body", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "misfire",
            sa.Enum("skip", "run_once", name="misfire", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("next_fire_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedules_enabled_next_fire_at", ["enabled", "next_fire_at"], unique=False
        )
        batch_op.create_index("ix_schedules_target", ["target_type", "target_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_schedules_created_at"), ["created_at"], unique=False)

    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("fire_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "outcome",
            sa.Enum("STARTED", "FAILED", "SKIPPED", name="fireoutcome", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("fire_count", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_schedule_fires_run_id_runs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_fires_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_fires")),
        sa.UniqueConstraint("schedule_id", "fire_time", name=op.f("uq_schedule_fires_schedule_id")),
    )
    with op.batch_alter_table("schedule_fires", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_schedule_fires_run_id"), ["run_id"], unique=False)

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_by", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("started_by")
    op.drop_table("schedule_fires")
    op.drop_table("schedules")
