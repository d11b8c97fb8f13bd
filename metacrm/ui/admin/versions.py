"""Metadata versions (who changed what, when, as a readable diff), rollback, and the
export of the customisations as a template folder."""

from __future__ import annotations

import io
import zipfile

from flask import (
    Blueprint,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _

from metacrm.engine import customise
from metacrm.engine.schema.template_export import export_files
from metacrm.ui.admin import customising
from metacrm.ui.admin.forms import arg_int
from metacrm.ui.context import actor
from metacrm.ui.runtime import runtime

bp = Blueprint("versions", __name__, url_prefix="/versions")
PAGE = 50


@bp.get("/")
def index():
    versions = customise.history(runtime().engine, limit=PAGE, before=arg_int("before"))
    older = versions[-1].version if len(versions) == PAGE else None
    return render_template("admin/versions.html", versions=versions, older=older)


def version_or_404(version: int) -> customise.VersionInfo:
    found = customise.history(runtime().engine, limit=1, before=version + 1)
    if not found or found[0].version != version:
        abort(404)
    return found[0]


@bp.get("/<int:version>")
def detail(version: int):
    info = version_or_404(version)
    return render_template("admin/version.html", info=info,
                           diff=customise.version_diff(runtime().engine, version))


@bp.route("/<int:version>/rollback", methods=["GET", "POST"])
def rollback(version: int):
    """GET shows what rolling back would change; POST does it."""
    info = version_or_404(version)
    try:
        outcome = customising.rollback(actor().username, version,
                                       preview=request.method == "GET")
    except customising.REFUSALS as exc:
        return render_template("admin/rollback.html", info=info, outcome=None,
                               problems=customising.problems(exc)), 409
    if request.method == "GET":
        return render_template("admin/rollback.html", info=info, outcome=outcome, problems=[])
    flash(_("Rolled back to version %(version)s.", version=version), "success")
    return redirect(url_for("admin.versions.index"))


@bp.get("/export")
def export():
    """The current customisations as a zip of the template folder's YAML files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in export_files(runtime().engine).items():
            archive.writestr(f"template/{name}", text)
    buffer.seek(0)
    return send_file(buffer, mimetype="application/zip", as_attachment=True,
                     download_name="template.zip")
