"""Schema: metadata versions, the registry, tables, schema changes (imports no other area)."""
