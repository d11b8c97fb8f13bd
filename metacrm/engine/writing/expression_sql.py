"""Expressions as SQL conditions, for roll-up filters and lookup filters.

The metadata layer has checked that the expression fits (``expressions.check_sql``);
parts that read no column (``today()``, ``record.<field>``) are evaluated once and
bound as parameters.
"""

from __future__ import annotations

import ast
import operator as op
from collections.abc import Callable, Mapping
from typing import Any, cast

from sqlalchemy import and_, bindparam, case, literal, not_, or_
from sqlalchemy.sql.elements import ColumnElement

from metacrm.metadata.expressions import Expression, function_name, reads_columns

__all__ = ["to_sql"]

BINARY: dict[type, Callable] = {
    ast.Add: op.add, ast.Sub: op.sub, ast.Mult: op.mul, ast.Div: op.truediv,
    ast.Eq: op.eq, ast.NotEq: op.ne, ast.Lt: op.lt, ast.LtE: op.le, ast.Gt: op.gt,
    ast.GtE: op.ge, ast.In: lambda a, b: a.in_(b), ast.NotIn: lambda a, b: a.not_in(b),
}
UNARY: dict[type, Callable] = {ast.Not: not_, ast.USub: op.neg, ast.UAdd: op.pos}
FUNCTIONS: dict[str, Callable] = {
    "contains": lambda text, part: text.contains(part, autoescape=True),
    "starts_with": lambda text, part: text.startswith(part, autoescape=True),
    "ends_with": lambda text, part: text.endswith(part, autoescape=True),
    "is_blank": lambda value: value.is_(None),
}


def to_sql(expression: Expression, column: Callable[[str], Any],
           constants: Mapping[str, Any] | None = None) -> ColumnElement:
    """``column(name)`` gives the column of a field; ``constants`` are bound as values."""
    constants = constants or {}

    def value(node: ast.AST) -> Any:
        return expression.constant(node, constants)

    def build(node: ast.AST, beside_column: bool = False):
        if not reads_columns(node, constants):
            found = value(node)
            if found is None:  # "= NULL" is unknown, as in Python; "== None" would be IS NULL
                return bindparam(None, None)
            # Beside a column, a plain value takes the column's type (scaled decimals).
            return found if beside_column or isinstance(found, list) else literal(found)
        if isinstance(node, ast.Name):
            return column(node.id)
        if isinstance(node, ast.BoolOp):
            parts = [build(v) for v in node.values]
            return and_(*parts) if isinstance(node.op, ast.And) else or_(*parts)
        if isinstance(node, ast.UnaryOp):
            return UNARY[type(node.op)](build(node.operand))
        if isinstance(node, ast.BinOp):
            return BINARY[type(node.op)](build(node.left, True), build(node.right, True))
        if isinstance(node, ast.Compare):
            parts, left = [], build(node.left, True)
            for operation, comparator in zip(node.ops, node.comparators, strict=True):
                right = build(comparator, True)
                parts.append(BINARY[type(operation)](left, right))
                left = right
            return and_(*parts)
        if isinstance(node, ast.IfExp):
            return case((build(node.test), build(node.body)), else_=build(node.orelse))
        # A call (check_sql admits no other node): raw values for its constant arguments
        # (LIKE escaping needs the text).
        call = cast(ast.Call, node)
        args = [build(a) if reads_columns(a, constants) else value(a) for a in call.args]
        return FUNCTIONS[function_name(call)](*args)

    return build(expression.tree)
