"""Admin pages of the stage processes and approval flows, each with its diagram (SVG)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("flows", __name__, url_prefix="/flows")
