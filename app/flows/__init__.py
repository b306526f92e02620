"""Flows: data stores, flow inputs (a graph of SQL transforms) and their runs."""
