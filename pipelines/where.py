"""`--where "clip_score < 0.3 and width >= 256"`: a row filter over the manifest columns.

The text is parsed with Python's `ast` into a pyarrow compute expression; nothing is
evaluated as Python. pyarrow has no parser of its own for expressions, and pandas' `query`
would add a dependency and evaluate through Python for string columns.

Allowed: column names, numbers, strings, True/False/None; comparisons (chained too:
`0.2 < clip_score < 0.3`), `in`/`not in` a list, `is None`/`is not None` (a text column's
empty string counts as None: `dup_of is not None` are the duplicates), `and`/`or`/`not`,
`+ - * /`, and `len(column)` (string length in characters). A column compared with a value
of another kind (`width >= '256'`) is refused, naming the column's type.
"""

from __future__ import annotations

import ast
import operator

import pyarrow as pa
import pyarrow.compute as pc

_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}
_ARITH = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}


class WhereError(ValueError):
    """The expression cannot be used; the message says which part and why."""


def parse(text: str, schema: pa.Schema) -> pc.Expression:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise WhereError(f"--where {text!r}: not an expression ({e.msg})") from None
    return _Builder(text, schema).build(tree.body)


class _Builder:
    def __init__(self, text: str, schema: pa.Schema):
        self.text, self.schema = text, schema

    def fail(self, node, why: str):
        part = ast.get_source_segment(self.text.strip(), node) or ast.dump(node)
        raise WhereError(f"--where {self.text!r}: {why}: {part}")

    def build(self, node):
        if isinstance(node, ast.BoolOp):
            parts = [self.build(v) for v in node.values]
            combine = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            out = parts[0]
            for p in parts[1:]:
                out = combine(out, p)
            return out
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ~self.build(node.operand)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return pc.negate(self.build(node.operand)) if not isinstance(node.operand, ast.Constant) else -self.value(node.operand)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            return getattr(pc, _ARITH[type(node.op)])(self.operand(node.left), self.operand(node.right))
        if isinstance(node, ast.Name):
            return self.column(node)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1:
            return pc.utf8_length(self.column(node.args[0]))
        self.fail(node, "not supported")

    def compare(self, node: ast.Compare):
        out, left = None, node.left
        for op, right in zip(node.ops, node.comparators):
            if isinstance(op, (ast.Is, ast.IsNot)):
                if not (isinstance(right, ast.Constant) and right.value is None):
                    self.fail(node, "`is` compares with None only")
                part = pc.is_null(self.operand(left))
                if self.is_text(left):  # manifests write "" for no value (reason, dup_of...)
                    part = part | (self.operand(left) == pc.scalar(""))
                part = ~part if isinstance(op, ast.IsNot) else part
            elif isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                    self.fail(node, "`in` needs a list of values")
                part = self.operand(left).isin([self.value(v) for v in right.elts])
                part = ~part if isinstance(op, ast.NotIn) else part
            elif type(op) in _COMPARE:
                self.check_kinds(node, left, right)
                part = _COMPARE[type(op)](self.operand(left), self.operand(right))
            else:
                self.fail(node, "unknown comparison")
            out = part if out is None else out & part
            left = right
        return out

    def kind(self, node) -> str:
        """"text", "number" or "" (unknown) of a column or a constant."""
        if isinstance(node, ast.Name) and node.id in self.schema.names:
            t = self.schema.field(node.id).type
            return "text" if pa.types.is_string(t) or pa.types.is_large_string(t) else "number" if pa.types.is_integer(t) or pa.types.is_floating(t) else ""
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value is not None:
            return "text" if isinstance(node.value, str) else "number" if isinstance(node.value, (int, float)) else ""
        if isinstance(node, ast.Call) or isinstance(node, ast.BinOp):
            return "number"
        return ""

    def is_text(self, node) -> bool:
        return isinstance(node, ast.Name) and self.kind(node) == "text"

    def check_kinds(self, node, left, right) -> None:
        a, b = self.kind(left), self.kind(right)
        if a and b and a != b:
            column = left if not isinstance(left, ast.Constant) else right
            other = "number" if self.kind(column) == "text" else "string"
            what = f"{column.id} is a {self.kind(column)} column" if isinstance(column, ast.Name) else \
                f"{ast.get_source_segment(self.text.strip(), column)} is a {self.kind(column)}"
            self.fail(node, f"{what}, compared with a {other}")

    def operand(self, node):
        if isinstance(node, ast.Constant):
            return pc.scalar(self.value(node))
        return self.build(node)

    def value(self, node):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return -self.value(node.operand)
        if not isinstance(node, ast.Constant) or not isinstance(node.value, (int, float, str, bool, type(None))):
            self.fail(node, "expected a number, a string, True, False or None")
        return node.value

    def column(self, node):
        if not isinstance(node, ast.Name):
            self.fail(node, "expected a column name")
        if node.id not in self.schema.names:
            self.fail(node, f"no such column (have: {', '.join(self.schema.names)})")
        return pc.field(node.id)
