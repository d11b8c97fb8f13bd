"""Writing: the records service, its hook catalogue, computed values, lines, roll-ups, numbers
(imports access and schema)."""
