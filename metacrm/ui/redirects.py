"""Where a form or link may send the browser next: only a path on this site.

A ``next=`` or ``back=`` value comes from whoever wrote the link. Browsers forgive a lot
in a Location header — they drop tabs and line breaks, read a backslash as a slash and
``//host`` as another site — so anything but a plain local path is refused.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

__all__ = ["local_target"]


def local_target(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site (``/o/<object>?page=2``), else ``default``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if any(c == "\\" or c.isspace() or unicodedata.category(c).startswith("C")
           for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target
