"""An uploaded document's content type with CR/LF in it (which would break every
download's header) is stored clean, over HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import base64

import pytest

from conftest import signed_in

RECORDS = "/api/v1/objects/{}/records"


@pytest.fixture
def engine(flows_engine):
    return flows_engine


def customer(api) -> int:
    response = api.post(RECORDS.format("customer"), json={"name": "华为"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_a_document_with_cr_lf_in_its_content_type_is_stored_clean_and_downloads(app, api):
    company = customer(api)
    contact = api.post(RECORDS.format("contact"),
                       json={"name": "李总", "customer": company}).get_json()["id"]
    record = api.post(RECORDS.format("opportunity"), json={
        "name": "ERP 项目", "business_type": "standard", "customer": company,
        "contact": contact,
        "amount": 1000, "close_date": "2027-01-31"}).get_json()
    url = f"{RECORDS.format('opportunity')}/{record['id']}/stage"
    assert api.post(url + "/work", json={"item": "confirm_contact"}).status_code == 200
    assert api.post(url, json={"to": "needs"}).status_code == 200
    assert api.post(url + "/work", json={"item": "needs_survey"}).status_code == 200
    assert api.post(url + "/events", json={"event": "demo"}).status_code == 200
    moved = api.post(url, json={"to": "proposal"})
    assert moved.status_code == 200, moved.get_json()
    state = api.post(url + "/events", json={"event": "proposal_sent", "attachment": {
        "name": "方案.pdf", "content_type": "text/plain\r\nX-Injected: yes",
        "base64": base64.b64encode(b"%PDF-1.7").decode()}})
    assert state.status_code == 200, state.get_json()
    document = state.get_json()["done"]["events"][0]["attachment"]["id"]
    download = signed_in(app, "admin", "admin-password").get(f"/attachments/{document}")
    assert download.status_code == 200 and download.data == b"%PDF-1.7"
    assert download.mimetype == "application/octet-stream"
    assert "X-Injected" not in download.headers
