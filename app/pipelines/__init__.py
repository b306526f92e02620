"""Pipelines: GridLAB-D job definitions (model files, default parameters) and their runs."""
