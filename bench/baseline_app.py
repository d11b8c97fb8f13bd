"""The HTTP baseline: a minimal hand-written Flask app, served by gunicorn like metacrm.

It answers the two requests the HTTP benchmark sends (list opportunities, create one) with
the same SQL the engine runs: the token lookup, the list SELECT and its capped count; or
the customer check, the auto-number upsert, the INSERT and the audit row. No metadata.
Like the engine, on SQLite its create begins IMMEDIATE (see make_engine), so concurrent
writers wait for the lock instead of failing.

Run: ``python -m bench.baseline_app --port 8001`` with METACRM_DATABASE_URL set.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
from decimal import Decimal

from flask import Flask, abort, jsonify, request
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from metacrm.engine.reading import query
from metacrm.engine.sqltypes import ID, JSON_TYPE, ScaledDecimal, UTCDateTime
from metacrm.engine.systables import sys_api_token, sys_audit, sys_sequence, sys_user
from metacrm.ui.server import serve

COUNT_CAP = query.COUNT_CAP  # the engine's: the same SQL, the same cap
STAGES = ("qualify", "needs", "proposal", "negotiation", "won", "lost")
LIST_COLUMNS = ("id", "version", "code", "name", "customer", "amount", "stage", "close_date",
                "owner")

metadata = MetaData()
MONEY = Numeric(18, 2).with_variant(ScaledDecimal(2), "sqlite")
opportunity = Table(
    "o_opportunity", metadata,
    Column("id", ID, primary_key=True), Column("owner", ID), Column("created_at", UTCDateTime()),
    Column("created_by", ID), Column("updated_at", UTCDateTime()), Column("updated_by", ID),
    Column("version", Integer), Column("deleted", Boolean), Column("code", String),
    Column("name", String), Column("customer", ID), Column("contact", ID),
    Column("amount", MONEY), Column("close_date", Date), Column("stage", String),
    Column("win_rate", MONEY), Column("source", String), Column("products", JSON_TYPE),
    Column("remark", String),
)
customer = Table("o_customer", metadata, Column("id", ID, primary_key=True),
                 Column("deleted", Boolean))


def sequence_upsert(dialect):
    """metacrm's auto-number counter: one upsert the database serialises."""
    stmt = dialect.insert(sys_sequence).values(name=bindparam("name"), value=bindparam("count"))
    return stmt.on_conflict_do_update(
        index_elements=["name"], set_={"value": sys_sequence.c.value + bindparam("count")}
    ).returning(sys_sequence.c.value)


def make_engine(url: str) -> Engine:
    """metacrm's connection settings, except that a write on SQLite begins IMMEDIATE.

    A deferred transaction that reads first cannot take the write lock once another
    writer has committed (SQLITE_BUSY_SNAPSHOT; busy_timeout does not help).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    engine = create_engine(url)
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       "busy_timeout=10000", "cache_size=-65536",
                       "mmap_size=1073741824"):
            dbapi_connection.execute(f"PRAGMA {pragma}")
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        write = conn.get_execution_options().get("write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def to_json(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


def create_app(url: str) -> Flask:
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    engine = make_engine(url)
    upsert = sequence_upsert(postgresql if engine.dialect.name == "postgresql" else sqlite)

    def actor(conn) -> int:
        header = request.headers.get("Authorization", "")
        digest = hashlib.sha256(header[7:].strip().encode()).hexdigest()
        row = conn.execute(
            select(sys_user.c.id, sys_user.c.username, sys_user.c.language,
                   sys_user.c.department_id)
            .join(sys_api_token, sys_api_token.c.user_id == sys_user.c.id)
            .where(sys_api_token.c.token_hash == digest,
                   sys_api_token.c.expires_at > dt.datetime.now(dt.UTC),
                   sys_user.c.active.is_(True))).first()
        if row is None:
            abort(401)
        return row.id

    @app.get("/")
    def service():
        return jsonify({"name": "baseline"})

    @app.get("/api/v1/objects/opportunity/records")
    def list_records():
        (_, _, stages), (_, _, minimum) = json.loads(request.args["filter"])
        page_size = int(request.args.get("page_size", 20))
        t = opportunity
        where = (t.c.deleted.is_(False), t.c.stage.in_(stages),
                 t.c.amount > Decimal(str(minimum)).quantize(Decimal("0.01")))
        with engine.connect() as conn:
            actor(conn)
            rows = conn.execute(select(*(t.c[c] for c in LIST_COLUMNS)).where(*where)
                                .order_by(t.c.amount.desc(), t.c.id.desc())
                                .limit(page_size + 1)).all()
            capped = select(t.c.id).where(*where).limit(COUNT_CAP + 1).subquery()
            total = conn.execute(select(func.count()).select_from(capped)).scalar_one()
        items = [{c: to_json(v) for c, v in zip(LIST_COLUMNS, r, strict=True)}
                 for r in rows[:page_size]]
        cursor = None
        if len(rows) > page_size:
            last = items[-1]
            cursor = base64.urlsafe_b64encode(json.dumps([last["amount"], last["id"]])
                                              .encode()).decode().rstrip("=")
        return jsonify({"items": items, "total": min(total, COUNT_CAP),
                        "total_exact": total <= COUNT_CAP, "page": 1, "page_size": page_size,
                        "next_cursor": cursor})

    @app.post("/api/v1/objects/opportunity/records")
    def create_record():
        body = request.get_json()
        now = dt.datetime.now(dt.UTC)
        stage = body.get("stage", "qualify")
        if stage not in STAGES or not isinstance(body.get("name"), str):
            abort(422)
        with engine.connect().execution_options(write=True) as conn, conn.begin():
            user_id = actor(conn)
            values = {"owner": user_id, "name": body["name"], "customer": int(body["customer"]),
                      "amount": Decimal(str(body["amount"])).quantize(Decimal("0.01")),
                      "close_date": dt.date.fromisoformat(body["close_date"]), "stage": stage,
                      "products": list(body.get("products", []))}
            found = conn.execute(select(customer.c.id).where(
                customer.c.id.in_([values["customer"]]), customer.c.deleted.is_(False))).first()
            if found is None:
                abort(422)
            scope = f"SJ-{now.astimezone():%Y%m}-{{seq:4}}"
            number = conn.execute(upsert, {"name": f"opportunity.code:{scope}", "count": 1}) \
                .scalar_one()
            values.update(code=scope.replace("{seq:4}", str(number).zfill(4)), created_at=now,
                          updated_at=now, created_by=user_id, updated_by=user_id, version=1,
                          deleted=False)
            values["id"] = conn.execute(insert(opportunity).returning(opportunity.c.id),
                                        values).scalar_one()
            row = {k: to_json(v) for k, v in values.items()}
            conn.execute(insert(sys_audit), [{
                "object": "opportunity", "record_id": values["id"], "action": "create",
                "actor_id": user_id, "at": now,
                "changes": {k: [None, v] for k, v in row.items() if k not in (
                    "id", "version", "created_at", "updated_at", "created_by", "updated_by")}}])
        response = jsonify(row)
        response.status_code = 201
        return response

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    url = os.environ["METACRM_DATABASE_URL"]
    serve("127.0.0.1", args.port, args.workers, args.threads, factory=lambda: create_app(url))


if __name__ == "__main__":
    main()
