"""Runtime: schema sync, records, queries, audit, metadata store. Never imports Flask."""
