"""Reading: the query compiler, filter operators, saved views, exports (imports access and
schema)."""
