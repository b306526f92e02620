"""Example job kinds for the GridLAB-D job service (see the service's README)."""
