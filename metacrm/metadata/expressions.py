"""The expression language of conditions, validation rules, formulas, defaults and filters.

Expressions are written in a small, Python-like syntax and evaluated by simpleeval (no
``eval``). Why simpleeval rather than CEL: it keeps ``Decimal`` arithmetic for money
(CEL has no decimal type and refuses ``int * double``), it is the fastest of the
three we measured, and its syntax is the one admins already read in spreadsheets.
What simpleeval does not do, this module adds:

- a checker that runs when metadata is validated: unknown names, unknown functions,
  constructs outside the language and type errors are reported with their column;
- SQL's rules for blanks: arithmetic and comparisons with a blank give a blank
  (unknown), ``and``/``or``/``not`` use three-valued logic, so a rule like
  ``discount <= 30`` holds for a record without a discount, as a CHECK constraint would;
- a compiler from the same tree to an SQLAlchemy condition, for roll-up filters and
  lookup filters that must run in the database.

Dotted names (``customer.level``) read a field of a lookup's record; in lookup filters
``record.<field>`` is the record being edited. ``IF(test, then, else)`` and the
``then if test else other`` form are both accepted.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import operator as op
import threading
import tokenize
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, DivisionByZero, InvalidOperation
from typing import Any, cast

from dateutil.relativedelta import relativedelta
from simpleeval import SimpleEval

from metacrm import clock
from metacrm.metadata.messages import Message

# The value types of the language; "any" is a blank literal or a value of unknown type.
NUMBER, TEXT, DATE, DATETIME, BOOLEAN, LIST, ID, ANY = (
    "number", "text", "date", "datetime", "boolean", "list", "id", "any")
STORAGE_TYPES = {"string": TEXT, "integer": NUMBER, "decimal": NUMBER, "date": DATE,
                 "datetime": DATETIME, "boolean": BOOLEAN, "json": LIST, "reference": ID}
MAX_LENGTH = 2000


class ExpressionError(ValueError):
    """An expression that cannot be parsed or checked; says where."""

    def __init__(self, message: Message, column: int | None = None):
        self.column = column
        self.message = message if column is None else Message(
            "%(problem)s (at column %(column)s)", problem=message, column=column + 1)
        super().__init__(self.message)


# -- functions ---------------------------------------------------------------------------
def _blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def _nulls(fn: Callable) -> Callable:
    """A function of values that gives a blank when any argument is blank."""
    def call(*args: Any) -> Any:
        return None if any(a is None for a in args) else fn(*args)
    return call


def _days(n: Any) -> dt.timedelta:
    return dt.timedelta(days=int(n))


def _days_between(a: dt.date, b: dt.date) -> int:
    return (_as_date(b) - _as_date(a)).days


def _as_date(value: dt.date) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def _round(value: Any, digits: Any = 0) -> Decimal:
    """Halves round up, as in spreadsheets and on invoices."""
    return Decimal(value).quantize(Decimal(1).scaleb(-int(digits)), rounding=ROUND_HALF_UP)


def _coalesce(*values: Any) -> Any:
    return next((v for v in values if not _blank(v)), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Function:
    """One entry of the function catalogue: argument types, result type, implementation.

    ``result`` is a type, or "same" for the type of the value arguments (IF, min, max).
    ``variadic`` repeats the last argument type. ``sql`` builds the database form of a
    call whose arguments involve columns; without it, only constant calls fold.
    """

    args: tuple[str, ...]
    result: str
    impl: Callable[..., Any]
    variadic: bool = False
    optional: int = 0
    sql: str | None = None  # the engine's name for its database form


FUNCTIONS: dict[str, Function] = {
    "today": Function((), DATE, lambda: clock.today()),
    "now": Function((), DATETIME, lambda: clock.now()),
    "add_days": Function((DATE, NUMBER), DATE, _nulls(lambda d, n: d + _days(n))),
    "add_months": Function((DATE, NUMBER), DATE,
                           _nulls(lambda d, n: d + relativedelta(months=int(n)))),
    "days_between": Function((DATE, DATE), NUMBER, _nulls(_days_between)),
    "year": Function((DATE,), NUMBER, _nulls(lambda d: d.year)),
    "month": Function((DATE,), NUMBER, _nulls(lambda d: d.month)),
    "day": Function((DATE,), NUMBER, _nulls(lambda d: d.day)),
    "contains": Function((TEXT, TEXT), BOOLEAN, _nulls(lambda t, p: p in t),
                         sql="contains"),
    "starts_with": Function((TEXT, TEXT), BOOLEAN, _nulls(lambda t, p: t.startswith(p)),
                            sql="starts_with"),
    "ends_with": Function((TEXT, TEXT), BOOLEAN, _nulls(lambda t, p: t.endswith(p)),
                          sql="ends_with"),
    "is_blank": Function((ANY,), BOOLEAN, _blank, sql="is_blank"),
    "len": Function((TEXT,), NUMBER, _nulls(len)),
    "text": Function((ANY,), TEXT, _text),
    "round": Function((NUMBER, NUMBER), NUMBER, _nulls(_round), optional=1),
    "abs": Function((NUMBER,), NUMBER, _nulls(abs)),
    "min": Function((ANY, ANY), "same", _nulls(min), variadic=True),
    "max": Function((ANY, ANY), "same", _nulls(max), variadic=True),
    "coalesce": Function((ANY, ANY), "same", _coalesce, variadic=True),
    "IF": Function((BOOLEAN, ANY, ANY), "same", lambda test, a, b: a if test else b),
}
FUNCTION_NAMES = tuple(sorted([*FUNCTIONS, "setting"]))


# -- operators with blanks ----------------------------------------------------------------
def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        return (a or "") + (b or "")  # text joins treat a blank as empty text
    if a is None or b is None:
        return None
    if isinstance(a, dt.date) and not isinstance(b, dt.date):
        return a + _days(b)
    return a + b


def _sub(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return Decimal((a - b).total_seconds() / 86400).quantize(Decimal("0.0001"))
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        return (a - b).days
    if isinstance(a, dt.date):
        return a - _days(b)
    return a - b


def _div(a: Any, b: Any) -> Decimal | None:
    if a is None or b is None:
        return None
    try:
        return Decimal(a) / Decimal(b)
    except (DivisionByZero, InvalidOperation):
        return None  # a blank, not an error: a record with zero quantity still saves


def _mod(a: Any, b: Any) -> Decimal | None:
    if a is None or b is None or b == 0:
        return None
    return a % b


def _in(a: Any, b: Any) -> bool | None:
    return None if a is None or b is None else a in b


OPERATORS: dict[type, Callable] = {
    ast.Add: _add, ast.Sub: _sub, ast.Mult: _nulls(op.mul), ast.Div: _div,
    ast.Mod: _mod, ast.USub: _nulls(op.neg), ast.UAdd: _nulls(op.pos),
    ast.Eq: _nulls(op.eq), ast.NotEq: _nulls(op.ne), ast.Lt: _nulls(op.lt),
    ast.LtE: _nulls(op.le), ast.Gt: _nulls(op.gt), ast.GtE: _nulls(op.ge),
    ast.In: _in, ast.NotIn: lambda a, b: None if _in(a, b) is None else not _in(a, b),
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%",
            ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
            ast.GtE: ">=", ast.In: "in", ast.NotIn: "not in", ast.USub: "-", ast.UAdd: "+"}


class _Evaluator(SimpleEval):
    """simpleeval with three-valued and/or/not and blank-aware IF."""

    def __init__(self):
        super().__init__(operators=OPERATORS,
                         functions={n: f.impl for n, f in FUNCTIONS.items()})
        self.nodes[ast.List] = self.nodes[ast.Tuple] = self._eval_sequence
        self.nodes[ast.BoolOp] = self._eval_logic
        self.nodes[ast.UnaryOp] = self._eval_unary

    def _eval_sequence(self, node):
        return [self._eval(x) for x in node.elts]

    def _eval_logic(self, node):
        stop = not isinstance(node.op, ast.And)  # the value that decides: False for and
        unknown = False
        for value in node.values:
            result = self._eval(value)
            if result is None:
                unknown = True
            elif bool(result) is stop:
                return stop
        return None if unknown else not stop

    def _eval_unary(self, node):
        if isinstance(node.op, ast.Not):
            value = self._eval(node.operand)
            return None if value is None else not value
        return super()._eval_unaryop(node)

    def _eval_ifexp(self, node):
        return self._eval(node.body) if self._eval(node.test) else self._eval(node.orelse)


_local = threading.local()


def _evaluator() -> _Evaluator:
    found = getattr(_local, "evaluator", None)
    if found is None:
        found = _local.evaluator = _Evaluator()
    return found


# -- parsing -------------------------------------------------------------------------------
_OPERAND_END = {tokenize.NAME, tokenize.NUMBER, tokenize.STRING}


def _spell_if(source: str) -> str:
    """``if(a, b, c)`` is a Python keyword call; spell it ``IF(`` (same length, so columns
    in messages stay right), except after an operand, where ``x if (t) else y`` is meant."""
    out = list(source)
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
                  if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError):
        return source
    for i, tok in enumerate(tokens):
        if tok.string != "if" or i + 1 >= len(tokens) or tokens[i + 1].string != "(":
            continue
        prev = tokens[i - 1] if i else None
        after_operand = prev is not None and (
            (prev.type in _OPERAND_END and prev.string not in ("and", "or", "not", "else"))
            or prev.string in (")", "]"))
        if not after_operand and tok.start[0] == 1:
            out[tok.start[1]:tok.end[1]] = "IF"
    return "".join(out)


class _Normalise(ast.NodeTransformer):
    """Dotted names become one name ("customer.level"); decimals stay decimal."""

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        parts = []
        current: ast.AST = node
        while isinstance(current, ast.Attribute):
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name):
            raise ExpressionError(Message("only field names may be followed by '.'"),
                                  node.col_offset)
        parts.append(current.id)
        return ast.copy_location(ast.Name(id=".".join(reversed(parts)), ctx=ast.Load()), node)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, float):
            text = ast.get_source_segment(self.source, node) or repr(node.value)
            # The tree carries Decimal literals (exact money); typeshed lists only the
            # literal types Python's own parser produces.
            decimal = Decimal(text.replace("_", ""))
            return ast.copy_location(ast.Constant(decimal), node)  # type: ignore[arg-type]
        return node

    source = ""


def parse(source: str) -> ast.expr:
    """The normalised tree of one expression, or ExpressionError."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionError(Message("the expression is empty"))
    if len(source) > MAX_LENGTH:
        raise ExpressionError(Message("the expression is longer than %(limit)s characters",
                                      limit=MAX_LENGTH))
    if "\n" in source.strip():
        source = " ".join(source.split())
    text = _spell_if(source.strip())
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(Message("syntax error: %(msg)s", msg=exc.msg),
                              (exc.offset or 1) - 1) from None
    normaliser = _Normalise()
    normaliser.source = text
    return normaliser.visit(tree)


# -- checking ------------------------------------------------------------------------------
_NUMERIC_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _same(a: str, b: str) -> str | None:
    if a == ANY:
        return b
    if b == ANY or a == b:
        return a
    if {a, b} == {ID, NUMBER}:
        return ID
    return None


class _Checker:
    """Infers the type of every node; refuses what the language does not have."""

    def __init__(self, names: Mapping[str, str]):
        self.names = names
        self.used: set[str] = set()

    def fail(self, message: Message, node: ast.AST) -> ExpressionError:
        return ExpressionError(message, getattr(node, "col_offset", None))

    def check(self, node: ast.AST) -> str:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise self.fail(Message("'%(code)s' is not allowed in an expression",
                                    code=ast.unparse(node)), node)
        return method(node)

    def _Constant(self, node: ast.Constant) -> str:
        value = node.value
        if value is None:
            return ANY
        if isinstance(value, bool):
            return BOOLEAN
        if isinstance(value, (int, Decimal)):
            return NUMBER
        if isinstance(value, str):
            return TEXT
        raise self.fail(Message("'%(code)s' is not allowed in an expression",
                                code=ast.unparse(node)), node)

    def _Name(self, node: ast.Name) -> str:
        kind = self.names.get(node.id)
        if kind is None:
            if node.id in FUNCTIONS:
                raise self.fail(Message("'%(name)s' is a function; call it as %(name)s(…)",
                                        name=node.id), node)
            raise self.fail(Message("unknown field '%(name)s'", name=node.id), node)
        self.used.add(node.id)
        return kind

    def _List(self, node: ast.List | ast.Tuple) -> str:
        kinds = {self.check(x) for x in node.elts} - {ANY}
        if len(kinds) > 1:
            raise self.fail(Message("a list must hold values of one type"), node)
        return LIST

    _Tuple = _List

    def _UnaryOp(self, node: ast.UnaryOp) -> str:
        kind = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            return self._expect(kind, BOOLEAN, node.operand, "'not'")
        if isinstance(node.op, (ast.USub, ast.UAdd)):
            return self._expect(kind, NUMBER, node.operand, "a sign")
        raise self.fail(Message("'%(code)s' is not allowed in an expression",
                                code=ast.unparse(node)), node)

    def _BoolOp(self, node: ast.BoolOp) -> str:
        word = "'and'" if isinstance(node.op, ast.And) else "'or'"
        for value in node.values:
            self._expect(self.check(value), BOOLEAN, value, word)
        return BOOLEAN

    def _BinOp(self, node: ast.BinOp) -> str:
        if type(node.op) not in _NUMERIC_OPS:
            raise self.fail(Message("'%(code)s' is not allowed in an expression",
                                    code=ast.unparse(node)), node)
        left, right = self.check(node.left), self.check(node.right)
        pair, symbol = {left, right} - {ANY}, _SYMBOLS[type(node.op)]
        if pair <= {NUMBER}:
            return NUMBER
        if isinstance(node.op, ast.Add) and pair == {TEXT}:
            return TEXT
        if isinstance(node.op, (ast.Add, ast.Sub)) and left in (DATE, DATETIME) and right in (
                NUMBER, ANY):
            return left
        if isinstance(node.op, ast.Sub) and left == right and left in (DATE, DATETIME):
            return NUMBER
        raise self.fail(Message("cannot use '%(symbol)s' on %(left)s and %(right)s",
                                symbol=symbol, left=left, right=right), node)

    def _Compare(self, node: ast.Compare) -> str:
        left = self.check(node.left)
        for operation, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.check(right_node)
            symbol = _SYMBOLS.get(type(operation))
            if symbol is None:
                raise self.fail(Message("use ==, !=, <, <=, >, >=, in or not in to compare"), node)
            if isinstance(right_node, ast.Constant) and right_node.value is None or (
                    isinstance(node.left, ast.Constant) and node.left.value is None):
                raise self.fail(Message("compare with a blank using is_blank(…)"), node)
            if isinstance(operation, (ast.In, ast.NotIn)):
                if right != LIST:
                    raise self.fail(Message("'%(symbol)s' needs a list on its right",
                                            symbol=symbol), right_node)
            elif _same(left, right) is None:
                raise self.fail(Message("cannot compare %(left)s with %(right)s",
                                        left=left, right=right), node)
            elif isinstance(operation, _ORDERING) and left in (BOOLEAN, LIST, ID):
                raise self.fail(Message("a %(left)s cannot be ordered with '%(symbol)s'",
                                        left=left, symbol=symbol), node)
            left = right
        return BOOLEAN

    def _IfExp(self, node: ast.IfExp) -> str:
        self._expect(self.check(node.test), BOOLEAN, node.test, "the test of 'if'")
        return self._alike([node.body, node.orelse], node)

    def _Call(self, node: ast.Call) -> str:
        name = getattr(node.func, "id", None)
        fn = FUNCTIONS.get(name or "")
        if fn is None:
            known = ", ".join(FUNCTION_NAMES)
            raise self.fail(Message("unknown function '%(name)s' (known: %(known)s)",
                                    name=name or ast.unparse(node.func), known=known), node)
        if node.keywords:
            raise self.fail(Message("%(name)s() takes its arguments by position", name=name), node)
        low, high = len(fn.args) - fn.optional, None if fn.variadic else len(fn.args)
        if len(node.args) < low or (high is not None and len(node.args) > high):
            raise self.fail(_arity(function_name(node), low, high, len(node.args)), node)
        values = []
        for i, arg in enumerate(node.args):
            wanted_type = fn.args[min(i, len(fn.args) - 1)]
            kind = self.check(arg)
            if wanted_type == ANY:
                values.append(arg)
            else:
                self._expect(kind, wanted_type, arg, f"argument {i + 1} of {name}()")
        if fn.result != "same":
            return fn.result
        return self._alike(values, node)

    def _alike(self, nodes: Sequence[ast.AST], where: ast.AST) -> str:
        kind = ANY
        for n in nodes:
            found = _same(kind, self.check(n))
            if found is None:
                raise self.fail(Message("the values must all be of one type"), where)
            kind = found
        return kind

    def _expect(self, kind: str, wanted: str, node: ast.AST, what: str) -> str:
        if kind == ANY or kind == wanted or (wanted == DATE and kind == DATETIME) or (
                wanted == NUMBER and kind == ID):
            return wanted
        raise self.fail(Message("%(what)s needs a %(wanted)s, not a %(kind)s",
                                what=what, wanted=wanted, kind=kind), node)


# -- the compiled expression -------------------------------------------------------------
def _arity(name: str, low: int, high: int | None, given: int) -> Message:
    """How many arguments a function takes, in words."""
    if high is None:
        return Message("%(name)s() takes %(low)s or more arguments, not %(given)s",
                       name=name, low=low, given=given)
    if high != low:
        return Message("%(name)s() takes %(low)s to %(high)s arguments, not %(given)s",
                       name=name, low=low, high=high, given=given)
    if low == 1:
        return Message("%(name)s() takes 1 argument, not %(given)s", name=name, given=given)
    return Message("%(name)s() takes %(low)s arguments, not %(given)s", name=name, low=low,
                   given=given)


@dataclass(frozen=True)
class Expression:
    """A parsed and checked expression: evaluate it per record, or turn it into SQL."""

    source: str
    tree: ast.expr
    type: str
    names: frozenset[str]

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        return self.constant(self.tree, values)

    def holds(self, values: Mapping[str, Any]) -> bool:
        """A condition holds unless it is false: unknown passes, as in a CHECK constraint."""
        return self.evaluate(values) is not False

    def constant(self, node: ast.AST, values: Mapping[str, Any]) -> Any:
        """The value of the tree, or of a part of it, given the names it reads."""
        evaluator = _evaluator()
        evaluator.names = values
        return evaluator.eval(self.source, previously_parsed=node)


def compile_expression(source: str, names: Mapping[str, str], *,
                       expect: str | None = None,
                       settings: Mapping[str, tuple[str, Any]] | None = None) -> Expression:
    """Parse and check; ``names`` maps each name the expression may use to its type.
    ``setting("x")`` takes the value of the business setting ``x`` from ``settings``
    (name -> (type, value); see metacrm.metadata.settings.expression_settings)."""
    tree = _bind_settings(parse(source), settings or {})
    checker = _Checker(names)
    kind = checker.check(tree)
    if expect is not None and _same(kind, expect) is None and not (
            expect == NUMBER and kind == ID):
        raise ExpressionError(Message("the expression gives a %(kind)s, but a %(expect)s is needed",
                                      kind=kind, expect=expect))
    return Expression(source=source, tree=tree, type=kind, names=frozenset(checker.used))


class _BindSettings(ast.NodeTransformer):
    """``setting("name")`` becomes the setting's value: bound once per registry version,
    so it costs nothing per record and reaches the database as a parameter."""

    def __init__(self, settings: Mapping[str, tuple[str, Any]]):
        self.settings = settings

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if getattr(node.func, "id", None) != "setting":
            return node
        argument = node.args[0] if len(node.args) == 1 and not node.keywords else None
        if not isinstance(argument, ast.Constant) or not isinstance(argument.value, str):
            raise ExpressionError(Message("setting() takes the name of a setting in quotes, "
                                          "as in setting(\"contract_expiry_days\")"),
                                  node.col_offset)
        found = self.settings.get(argument.value)
        if found is None:
            known = ", ".join(sorted(self.settings)) or "-"
            raise ExpressionError(Message("unknown setting '%(name)s' (known: %(known)s)",
                                          name=argument.value, known=known), node.col_offset)
        value = found[1]
        if isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        return ast.copy_location(ast.Constant(value), node)


def _bind_settings(tree: ast.expr, settings: Mapping[str, tuple[str, Any]]) -> ast.expr:
    return cast(ast.expr, ast.fix_missing_locations(_BindSettings(settings).visit(tree)))


# -- the database form ------------------------------------------------------------------
SQL_NODES = (ast.Name, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.Compare, ast.IfExp, ast.Call)
SQL_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div)


def reads_columns(node: ast.AST, constants: frozenset[str] | Mapping[str, Any]) -> bool:
    """Whether a part of the tree reads a column (a name not among the constants)."""
    if isinstance(node, ast.Name):
        return node.id not in constants
    children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
    return any(reads_columns(child, constants) for child in children)


def function_name(call: ast.Call) -> str:
    """The function a checked call names (the checker admits only plain names)."""
    return cast(ast.Name, call.func).id


def check_sql(expression: Expression, constants: frozenset[str] = frozenset()) -> None:
    """Raise ExpressionError if the expression cannot become a database condition: the
    engine compiles what reads columns, and evaluates the rest once, here."""
    def visit(node: ast.AST) -> None:
        if not reads_columns(node, constants):
            return
        fits = isinstance(node, SQL_NODES) and not (
            isinstance(node, ast.BinOp) and not isinstance(node.op, SQL_BINARY)) and not (
            isinstance(node, ast.Call) and FUNCTIONS[function_name(node)].sql is None)
        if not fits:
            raise ExpressionError(Message("'%(code)s' cannot be used in a database filter",
                                          code=ast.unparse(node)),
                                  getattr(node, "col_offset", None))
        for child in (node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)):
            visit(child)

    visit(expression.tree)
