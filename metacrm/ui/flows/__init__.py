"""Workflow pages: the stage path and kanban, approvals, the todo centre."""
