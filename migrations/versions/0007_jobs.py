"""python job kinds: job runs, and which workers run which kinds

Revision ID: 0007_jobs
Revises: 0006_schedules
Create Date: 2026-11-25 11:15:00

"""

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0007_jobs"
down_revision = "0006_schedules"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "job_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("job_kind", sa.String(length=60), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("artifact_inputs", sa.JSON(), nullable=False),
        sa.Column("queue", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["id"], ["runs.id"], name=op.f("fk_job_runs_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_runs_job_kind"), ["job_kind"], unique=False)

    op.create_table(
        "job_kind_workers",
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kind", "worker_id", name=op.f("pk_job_kind_workers")),
    )
    with op.batch_alter_table("job_kind_workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_kind_workers_seen_at"), ["seen_at"], unique=False)


def downgrade():
    with op.batch_alter_table("job_kind_workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_kind_workers_seen_at"))
    op.drop_table("job_kind_workers")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_runs_job_kind"))
    op.drop_table("job_runs")
