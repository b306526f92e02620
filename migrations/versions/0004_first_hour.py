"""pipeline runs say which parameters their model never reads

Revision ID: 0004_first_hour
Revises: 0003_workflows
Create Date: 2026-11-25 10:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0004_first_hour"
down_revision = "0003_workflows"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unused_parameters", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_column("unused_parameters")
