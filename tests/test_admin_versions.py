"""The version history pages: who changed what, a rollback that keeps data, the export."""

from __future__ import annotations

import io
import zipfile

import sqlalchemy as sa
from sqlalchemy.orm import Session

from metacrm.engine import customise
from metacrm.engine.schema import metastore
from metacrm.engine.writing import records
from metacrm.metadata import edits


def relabel(engine, en: str) -> int:
    return customise.change(engine, "alice", f"relabel customer name to {en}", lambda d:
                            edits.update_field(d, "customer", "name",
                                               {"label": {"en": en, "zh": en}})).version


def test_the_history_lists_each_version_with_its_author(engine, english):
    version = relabel(engine, "Company")
    html = english.text("/admin/versions/")
    assert f'data-version="{version}"' in html and "alice" in html


def test_a_version_shows_what_it_changed(engine, english):
    version = relabel(engine, "Company")
    html = english.text(f"/admin/versions/{version}")
    assert "object customer › fields › name › label › en" in html and "Company" in html


def test_a_rollback_is_previewed_then_applied(engine, english):
    before = customise.history(engine, limit=1)[0].version
    relabel(engine, "Company")
    preview = english.text(f"/admin/versions/{before}/rollback")
    assert "Company" in preview
    assert customise.history(engine, limit=1)[0].summary.startswith("relabel")
    english.post(f"/admin/versions/{before}/rollback")
    assert customise.history(engine, limit=1)[0].summary == f"roll back to version {before}"
    assert "Company" not in english.text("/o/customer")


def test_a_rollback_archives_an_added_field_and_keeps_its_values(engine, english, admin):
    before = customise.history(engine, limit=1)[0].version
    customise.change(engine, "alice", "add a field", lambda d: edits.add_field(
        d, "customer", {"name": "vat_no", "type": "text", "label": {"en": "VAT", "zh": "税号"}}))
    with Session(engine) as session, session.begin():
        row = records.create(session, metastore.load_registry(session), "customer",
                             {"name": "ACME", "vat_no": "X-1"}, actor=admin)
    english.text(f"/admin/versions/{before}/rollback")
    english.post(f"/admin/versions/{before}/rollback")
    with engine.connect() as conn:
        kept = conn.execute(sa.text("SELECT vat_no FROM o_customer WHERE id = :id"),
                            {"id": row["id"]}).scalar()
    assert kept == "X-1"
    assert 'name="vat_no"' not in english.text(f"/o/customer/{row['id']}/edit")


def test_the_export_button_downloads_the_template_as_a_zip(english):
    response = english.client.get("/admin/versions/export")
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert "template/customer.yaml" in names and "template/template.yaml" in names


def test_a_rollback_needs_the_csrf_token(engine, english):
    before = customise.history(engine, limit=1)[0].version
    relabel(engine, "Company")
    assert english.client.post(f"/admin/versions/{before}/rollback").status_code == 400
    assert customise.history(engine, limit=1)[0].summary.startswith("relabel")


def test_a_version_says_in_chinese_what_was_added(engine, web):
    version = customise.change(engine, "alice", "add a field", lambda d: edits.add_field(
        d, "customer", {"name": "vat_no", "type": "text",
                        "label": {"en": "VAT", "zh": "税号"}})).version
    html = web.text(f"/admin/versions/{version}")
    assert "object customer › fields › vat_no: 新增" in html
    assert ": added" not in html
