"""Stage paths on record pages, the kanban board per stage process, key-event documents.

Thin handlers: parse, call ``engine.stages``, render or redirect.
"""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("workflow", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""
