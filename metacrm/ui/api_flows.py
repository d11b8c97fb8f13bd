"""The JSON API of stage paths, approvals, todos and notifications under /api/v1.

Same authentication as ``api``: a bearer token, or for reads the web session.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_flows", __name__, url_prefix="/api/v1")
