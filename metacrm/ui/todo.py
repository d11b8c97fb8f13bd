"""The todo centre (待办) and the notifications, with their counts in the navigation."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

bp = Blueprint("todo", __name__)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every page here needs a signed-in user."""
