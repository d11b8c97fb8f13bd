"""The JSON API under /api/v1: records, flows, administration, the OpenAPI document."""
