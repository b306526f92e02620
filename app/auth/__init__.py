"""Application API keys: stored hashed, shown once, one permission each."""
