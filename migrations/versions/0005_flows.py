"""flows: data stores, flow inputs, flow runs

Revision ID: 0005_flows
Revises: 0004_first_hour
Create Date: 2026-11-25 11:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0005_flows"
down_revision = "0004_first_hour"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "data_stores",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.Enum("RELATIONAL", "COLUMNAR", "FILE", name="storetype", native_enum=False, length=20), nullable=False),
        sa.Column("engine", sa.Enum("postgresql", "mysql", "sqlite", "duckdb", "csv", name="engine", native_enum=False, length=20), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("user", sa.String(length=200), nullable=True),
        sa.Column("password_encrypted", sa.Text(), nullable=True),
        sa.Column("database", sa.String(length=200), nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_stores")),
    )
    with op.batch_alter_table("data_stores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_stores_created_at"), ["created_at"], unique=False)

    op.create_table(
        "flow_inputs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("target_store_id", sa.String(length=36), nullable=False),
        sa.Column("transforms", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("order", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["target_store_id"], ["data_stores.id"], name=op.f("fk_flow_inputs_target_store_id_data_stores")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_inputs")),
    )
    with op.batch_alter_table("flow_inputs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_inputs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_flow_inputs_target_store_id"), ["target_store_id"], unique=False)

    op.create_table(
        "flow_input_stores",
        sa.Column("flow_input_id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(["flow_input_id"], ["flow_inputs.id"], name=op.f("fk_flow_input_stores_flow_input_id_flow_inputs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("flow_input_id", "store_id", name=op.f("pk_flow_input_stores")),
    )
    with op.batch_alter_table("flow_input_stores", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_input_stores_store_id"), ["store_id"], unique=False)

    op.create_table(
        "flow_runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("flow_input_id", sa.String(length=36), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["id"], ["runs.id"], name=op.f("fk_flow_runs_id_runs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["flow_input_id"], ["flow_inputs.id"], name=op.f("fk_flow_runs_flow_input_id_flow_inputs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_runs")),
    )
    with op.batch_alter_table("flow_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flow_runs_flow_input_id"), ["flow_input_id"], unique=False)


def downgrade():
    op.drop_table("flow_runs")
    op.drop_table("flow_input_stores")
    op.drop_table("flow_inputs")
    op.drop_table("data_stores")
