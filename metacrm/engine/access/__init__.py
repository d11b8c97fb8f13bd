"""Access: organisation, users, roles, permissions as SQL, teams, dimensions (imports schema)."""
