"""purelmdb: a pure-Python LMDB (placeholder while the engine lands)."""
