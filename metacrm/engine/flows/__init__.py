"""Flows: stage processes, approvals, todos, notifications, transfer (imports writing, reading,
access and schema)."""
