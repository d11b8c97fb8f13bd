"""The approval inbox, an approval's page with its timeline and actions, and submitting a
record for approval. Thin handlers over ``engine.approvals``.
"""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("approvals", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""
