"""The expression language: what it computes, what its checker refuses, and its SQL form."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from metacrm.engine.writing.expression_sql import to_sql
from metacrm.metadata.expressions import (
    BOOLEAN,
    DATE,
    TEXT,
    ExpressionError,
    check_sql,
    compile_expression,
)

# The names an expression may use here, with their value types.
NAMES = {
    "qty": "number", "price": "number", "rate": "number", "name": "text", "code": "text",
    "start": "date", "end": "date", "stamp": "datetime", "ok": "boolean", "vip": "boolean",
    "tags": "list", "buyer": "id", "buyer.level": "text", "buyer.since": "date",
    "record.buyer": "id", "record.start": "date",
}
RECORD_CONSTANTS = frozenset(n for n in NAMES if n.startswith("record."))


def value(source: str, values: dict | None = None, **more):
    """The value of ``source`` for a record holding ``values``."""
    return compile_expression(source, NAMES).evaluate({**(values or {}), **more})


def refusal(source: str, **kw) -> str:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source, NAMES, **kw)
    return str(caught.value)


# -- arithmetic ----------------------------------------------------------------------------
def test_decimal_literals_stay_decimal():
    assert value("0.1 + 0.2") == Decimal("0.3")
    assert isinstance(value("0.1 + 0.2"), Decimal)


def test_whole_numbers_mix_with_decimals():
    assert value("qty * 0.5", qty=3) == Decimal("1.5")
    assert value("qty + price", qty=2, price=Decimal("0.25")) == Decimal("2.25")


def test_division_gives_a_decimal():
    assert value("7 / 2") == Decimal("3.5")
    assert isinstance(value("qty / price", qty=6, price=3), Decimal)


def test_division_by_zero_gives_a_blank():
    assert value("qty / price", qty=1, price=0) is None
    assert value("qty / price", qty=0, price=0) is None


def test_arithmetic_with_a_blank_gives_a_blank():
    assert value("qty + 1", qty=None) is None
    assert value("qty * price", qty=2, price=None) is None
    assert value("-qty", qty=None) is None


def test_comparisons_with_a_blank_give_a_blank():
    assert value("qty > 1", qty=None) is None
    assert value("qty == price", qty=None, price=None) is None
    assert value("name != 'x'", name=None) is None


def test_text_joined_with_a_blank_treats_it_as_empty():
    assert value("name + '!'", name=None) == "!"
    assert value("'#' + code", code=None) == "#"
    assert value("name + code", name="ab", code="cd") == "abcd"


# -- logic -----------------------------------------------------------------------------------
@pytest.mark.parametrize("left, right, both, either", [
    (True, None, None, True),
    (False, None, False, None),
    (None, None, None, None),
    (None, True, None, True),
    (None, False, False, None),
    (True, False, False, True),
])
def test_and_or_are_three_valued(left, right, both, either):
    assert value("ok and vip", ok=left, vip=right) is both
    assert value("ok or vip", ok=left, vip=right) is either


def test_not_of_a_blank_is_a_blank():
    assert value("not ok", ok=None) is None
    assert value("not ok", ok=False) is True


def test_a_condition_holds_unless_it_is_false():
    condition = compile_expression("qty > 0", NAMES)
    assert condition.holds({"qty": 1})
    assert condition.holds({"qty": None})  # unknown passes, as in a CHECK constraint
    assert not condition.holds({"qty": 0})


# -- IF ---------------------------------------------------------------------------------------
def test_IF_picks_a_branch():
    assert value("IF(qty > 1, 'many', 'one')", qty=2) == "many"
    assert value("IF(qty > 1, 'many', 'one')", qty=1) == "one"


def test_the_conditional_expression_picks_a_branch():
    assert value("'many' if qty > 1 else 'one'", qty=5) == "many"
    assert value("'many' if qty > 1 else 'one'", qty=0) == "one"


def test_if_may_be_spelled_as_a_function_call():
    assert value("if(qty > 1, 'many', 'one')", qty=2) == "many"
    assert value("1 + if(ok, 1, 2)", ok=False) == 3
    assert value("'yes' if(ok) else 'no'", ok=True) == "yes"


def test_spelling_if_as_a_call_keeps_message_columns():
    assert refusal("if(qty > 1, nme, 'x')").endswith("unknown field 'nme' (at column 13)")


def test_a_blank_test_takes_the_else_branch_as_sql_case_does():
    assert value("IF(ok, 1, 2)", ok=None) == 2
    assert value("1 if ok else 2", ok=None) == 2


# -- dates ------------------------------------------------------------------------------------
def test_today_is_the_current_date():
    before = dt.date.today()
    found = value("today()")
    assert before <= found <= dt.date.today()


def test_add_days():
    assert value("add_days(start, 30)", start=dt.date(2024, 1, 15)) == dt.date(2024, 2, 14)
    assert value("add_days(start, -1)", start=dt.date(2024, 3, 1)) == dt.date(2024, 2, 29)
    assert value("add_days(start, 3)", start=None) is None


def test_add_months_keeps_to_the_month_end():
    assert value("add_months(start, 1)", start=dt.date(2024, 1, 31)) == dt.date(2024, 2, 29)
    assert value("add_months(start, 1)", start=dt.date(2023, 1, 31)) == dt.date(2023, 2, 28)
    assert value("add_months(start, -1)", start=dt.date(2024, 3, 31)) == dt.date(2024, 2, 29)
    assert value("add_months(start, 12)", start=dt.date(2024, 5, 6)) == dt.date(2025, 5, 6)


def test_days_between_counts_from_the_first_to_the_second():
    assert value("days_between(start, end)", start=dt.date(2024, 1, 1),
                 end=dt.date(2024, 3, 1)) == 60
    assert value("days_between(end, start)", start=dt.date(2024, 1, 1),
                 end=dt.date(2024, 1, 11)) == -10
    assert value("days_between(start, end)", start=None, end=dt.date(2024, 1, 1)) is None


def test_a_date_minus_a_date_is_a_number_of_days():
    assert value("end - start", start=dt.date(2024, 1, 1), end=dt.date(2024, 3, 1)) == 60
    assert compile_expression("end - start", NAMES).type == "number"


def test_a_date_plus_or_minus_a_number_moves_it_by_days():
    assert value("start + 10", start=dt.date(2024, 1, 1)) == dt.date(2024, 1, 11)
    assert value("start - 1", start=dt.date(2024, 1, 1)) == dt.date(2023, 12, 31)
    assert compile_expression("start + 10", NAMES).type == DATE


# -- text ---------------------------------------------------------------------------------------
def test_contains_starts_with_ends_with():
    assert value("contains(name, 'ell')", name="hello") is True
    assert value("contains(name, 'x')", name="hello") is False
    assert value("starts_with(name, 'he')", name="hello") is True
    assert value("ends_with(name, 'lo')", name="hello") is True
    assert value("ends_with(name, 'he')", name="hello") is False
    assert value("contains(name, 'x')", name=None) is None


@pytest.mark.parametrize("blank", [None, "", []])
def test_is_blank_is_true_for_none_empty_text_and_empty_list(blank):
    assert value("is_blank(tags)", tags=blank) is True


@pytest.mark.parametrize("filled", ["x", 0, ["a"], False])
def test_is_blank_is_false_for_a_value(filled):
    assert value("is_blank(tags)", tags=filled) is False


# -- other functions ----------------------------------------------------------------------------
def test_len_counts_characters():
    assert value("len(name)", name="报价单") == 3
    assert value("len(name)", name=None) is None


def test_round_to_digits():
    assert value("round(price, 2)", price=Decimal("1.236")) == Decimal("1.24")
    assert value("round(price)", price=Decimal("2.6")) == Decimal("3")
    assert value("round(price, 2)", price=None) is None


def test_abs():
    assert value("abs(qty)", qty=-5) == 5
    assert value("abs(price)", price=Decimal("-1.50")) == Decimal("1.50")


def test_min_and_max_of_several_values():
    assert value("min(qty, price, 3)", qty=5, price=4) == 3
    assert value("max(qty, price, 3)", qty=5, price=4) == 5
    assert value("max(start, end)", start=dt.date(2024, 1, 1),
                 end=dt.date(2023, 1, 1)) == dt.date(2024, 1, 1)
    assert value("min(qty, 1)", qty=None) is None


def test_coalesce_gives_the_first_value_that_is_not_blank():
    assert value("coalesce(name, code, 'none')", name=None, code="") == "none"
    assert value("coalesce(name, code, 'none')", name=None, code="c") == "c"
    assert value("coalesce(price, 0)", price=None) == 0


def test_text_spells_values():
    assert value("text(price)", price=Decimal("1.50")) == "1.50"
    assert value("text(start)", start=dt.date(2024, 1, 2)) == "2024-01-02"
    assert value("text(qty)", qty=7) == "7"
    assert value("text(qty)", qty=None) is None


def test_in_a_list_literal():
    assert value("code in ['a', 'b']", code="a") is True
    assert value("code in ['a', 'b']", code="c") is False
    assert value("code not in ['a', 'b']", code="c") is True
    assert value("code in ['a', 'b']", code=None) is None


def test_a_dotted_name_reads_a_field_of_a_lookup():
    assert value("buyer.level == 'gold'", {"buyer.level": "gold"}) is True
    assert compile_expression("buyer.level", NAMES).names == frozenset({"buyer.level"})


# -- the checker ----------------------------------------------------------------------------------
def test_an_unknown_field_is_named():
    assert refusal("nme + 1") == "unknown field 'nme' (at column 1)"


def test_an_unknown_field_of_a_lookup_is_named():
    assert refusal("buyer.nope == 'x'") == "unknown field 'buyer.nope' (at column 1)"


def test_an_unknown_function_lists_the_known_ones():
    message = refusal("qty + foo(1)")
    assert message.startswith("unknown function 'foo' (known: IF, abs, add_days, add_months,")
    assert "today" in message and message.endswith("(at column 7)")


def test_a_function_named_without_a_call_is_refused():
    assert refusal("today") == "'today' is a function; call it as today(…) (at column 1)"


@pytest.mark.parametrize("source, message", [
    ("len(name, code)", "len() takes 1 argument, not 2"),
    ("today(1)", "today() takes 0 arguments, not 1"),
    ("round()", "round() takes 1 to 2 arguments, not 0"),
    ("min(qty)", "min() takes 2 or more arguments, not 1"),
    ("add_days(start)", "add_days() takes 2 arguments, not 1"),
])
def test_the_wrong_number_of_arguments_is_refused(source, message):
    assert refusal(source) == f"{message} (at column 1)"


@pytest.mark.parametrize("source, message", [
    ("len(qty)", "argument 1 of len() needs a text, not a number (at column 5)"),
    ("add_days(start, name)", "argument 2 of add_days() needs a number, not a text (at column 17)"),
    ("days_between(name, start)",
     "argument 1 of days_between() needs a date, not a text (at column 14)"),
    ("IF(qty, 1, 2)", "argument 1 of IF() needs a boolean, not a number (at column 4)"),
])
def test_an_argument_of_the_wrong_type_is_refused(source, message):
    assert refusal(source) == message


def test_comparing_text_with_a_number_is_refused():
    assert refusal("name == 1") == "cannot compare text with number (at column 1)"


def test_comparing_with_none_suggests_is_blank():
    assert "using is_blank(…)" in refusal("qty == None")
    assert "using is_blank(…)" in refusal("None != qty")


@pytest.mark.parametrize("source", ["'x'.upper()", "(qty + 1).real", "len(name).bit_length"])
def test_a_dot_after_something_other_than_a_name_is_refused(source):
    assert "only field names may be followed by '.'" in refusal(source)


@pytest.mark.parametrize("source", [
    "[x for x in tags]",
    "{x: 1 for x in tags}",
    "lambda: 1",
    "name[0]",
    "qty ** 2",
    "qty // 2",
    "qty is None",
    "{'a': 1}",
])
def test_constructs_outside_the_language_are_refused(source):
    message = refusal(source)
    assert "is not allowed in an expression" in message or "to compare" in message


@pytest.mark.parametrize("source", [
    "__import__('os')",
    "import os",
    "name.__class__",
    "__class__",
    "().__class__",
    "open('/etc/passwd')",
])
def test_imports_and_dunders_are_refused(source):
    with pytest.raises(ExpressionError):
        compile_expression(source, NAMES)


def test_keyword_arguments_are_refused():
    assert refusal("round(price, digits=2)") == (
        "round() takes its arguments by position (at column 1)")


def test_a_list_mixing_types_is_refused():
    assert refusal("code in ['a', 1]") == "a list must hold values of one type (at column 9)"


def test_a_syntax_error_names_its_column():
    assert refusal("qty > > 1") == "syntax error: invalid syntax (at column 7)"
    with pytest.raises(ExpressionError) as caught:
        compile_expression("qty + price)", NAMES)
    assert caught.value.column == 11


def test_an_empty_expression_is_refused():
    assert refusal("  ") == "the expression is empty"


def test_the_result_type_is_checked_against_what_is_expected():
    assert refusal("qty + 1", expect=TEXT) == "the expression gives a number, but a text is needed"
    assert refusal("start", expect=BOOLEAN) == "the expression gives a date, but a boolean is needed"
    assert compile_expression("name + '!'", NAMES, expect=TEXT).type == TEXT
    assert compile_expression("qty > 1", NAMES, expect=BOOLEAN).type == BOOLEAN


def test_the_names_read_are_recorded():
    found = compile_expression("qty * price + coalesce(rate, 0)", NAMES)
    assert found.names == frozenset({"qty", "price", "rate"})


# -- the SQL form -------------------------------------------------------------------------------
THING = sa.table("thing", sa.column("qty"), sa.column("price"), sa.column("name"),
                 sa.column("code"), sa.column("start"), sa.column("ok"), sa.column("buyer"))


def sql(source: str, **constants) -> str:
    condition = to_sql(compile_expression(source, NAMES), lambda n: THING.c[n],
                       {f"record.{k}": v for k, v in constants.items()})
    return str(condition.compile(compile_kwargs={"literal_binds": True}))


@pytest.mark.parametrize("source, expected", [
    ("qty > 1", "thing.qty > 1"),
    ("qty != price", "thing.qty != thing.price"),
    ("name == 'x'", "thing.name = 'x'"),
    ("1 < qty <= 3", "thing.qty > 1 AND thing.qty <= 3"),
    ("qty * price >= 10", "thing.qty * thing.price >= 10"),
])
def test_comparisons_become_sql(source, expected):
    assert sql(source) == expected


def test_and_or_not_become_sql():
    assert sql("qty > 1 and not ok or name == 'x'") == (
        "thing.qty > 1 AND NOT thing.ok OR thing.name = 'x'")
    assert sql("qty > 1 and (ok or name == 'x')") == (
        "thing.qty > 1 AND (thing.ok OR thing.name = 'x')")


def test_in_a_list_becomes_sql_in():
    assert sql("code in ['a', 'b']") == "thing.code IN ('a', 'b')"
    assert sql("code not in ['a', 'b']") == "(thing.code NOT IN ('a', 'b'))"


def test_is_blank_becomes_is_null():
    assert sql("is_blank(name)") == "thing.name IS NULL"


def test_contains_escapes_like_wildcards():
    assert sql("contains(name, '50%_off')") == (
        "thing.name LIKE '%' || '50/%/_off' || '%' ESCAPE '/'")
    assert sql("starts_with(name, 'a%')") == "thing.name LIKE 'a/%' || '%' ESCAPE '/'"


def test_parts_without_columns_are_folded_into_values():
    weeks = [(dt.date.today() + dt.timedelta(days=7)).isoformat()]
    found = sql("start < add_days(today(), 7)")
    weeks.append((dt.date.today() + dt.timedelta(days=7)).isoformat())
    assert found in {f"thing.start < '{week}'" for week in weeks}


def test_record_values_are_bound():
    assert sql("buyer == record.buyer", buyer=5) == "thing.buyer = 5"


def test_days_between_on_a_column_cannot_run_in_sql():
    found = compile_expression("days_between(start, today()) > 30", NAMES)
    with pytest.raises(ExpressionError) as caught:
        check_sql(found)
    assert str(caught.value) == (
        "'days_between(start, today())' cannot be used in a database filter (at column 1)")


@pytest.mark.parametrize("source", ["len(name) > 2", "qty % 2 == 0", "IF(ok, qty, price) > 1"])
def test_functions_without_a_database_form_cannot_run_in_sql(source):
    with pytest.raises(ExpressionError, match="cannot be used in a database filter"):
        check_sql(compile_expression(source, NAMES))


def test_functions_of_constants_may_run_in_sql():
    check_sql(compile_expression("days_between(record.start, today()) > 3 and qty > 1", NAMES),
              RECORD_CONSTANTS)
    check_sql(compile_expression("start < add_days(today(), 7)", NAMES))


# -- the rows a condition selects --------------------------------------------------------------
ROWS = [
    {"id": 1, "qty": 5, "name": "50% off", "buyer": 1},
    {"id": 2, "qty": 1, "name": "500 items", "buyer": 2},
    {"id": 3, "qty": None, "name": None, "buyer": None},
]


@pytest.fixture(scope="module")
def things():
    engine = sa.create_engine("sqlite://")
    table = sa.Table("thing", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("qty", sa.Integer), sa.Column("name", sa.String),
                     sa.Column("buyer", sa.Integer))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), ROWS)
    yield engine, table
    engine.dispose()


def selected(things, source: str, **constants) -> list[int]:
    engine, table = things
    condition = to_sql(compile_expression(source, NAMES), lambda n: table.c[n],
                       {f"record.{k}": v for k, v in constants.items()})
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.id).where(condition).order_by(table.c.id))
                    .scalars())


def test_a_blank_column_is_not_selected_by_a_comparison(things):
    assert selected(things, "qty > 0") == [1, 2]
    assert selected(things, "not qty > 1") == [2]


def test_contains_matches_a_percent_sign_literally(things):
    assert selected(things, "contains(name, '50%')") == [1]


def test_a_record_value_selects_the_rows_that_equal_it(things):
    assert selected(things, "buyer == record.buyer", buyer=2) == [2]


def test_a_blank_record_value_selects_nothing(things):
    assert selected(things, "buyer == record.buyer", buyer=None) == []


def test_a_blank_record_value_selects_nothing_with_not_equal(things):
    assert selected(things, "buyer != record.buyer", buyer=None) == []
