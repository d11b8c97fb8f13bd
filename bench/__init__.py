"""Benchmarks: the engine against hand-written SQLAlchemy Core on the same schema and SQL.

Not tests: nothing here is collected by pytest. Run ``python -m bench --help``.
"""
