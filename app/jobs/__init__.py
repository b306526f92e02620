"""Python job kinds: the kinds installed here, and their runs (see app/jobkit)."""
