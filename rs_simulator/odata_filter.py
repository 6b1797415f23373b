"""OData `$filter` parser: a tokenizer and a recursive descent to an AST (evaluated by `odata_eval`).

Grammar (precedence from loosest to tightest)::

    expr     := and_expr ("or" and_expr)*
    and_expr := not_expr ("and" not_expr)*
    not_expr := "not" not_expr | compare
    compare  := operand (("eq"|"ne"|"gt"|"ge"|"gte"|"lt"|"le"|"lte") operand | "in" "(" operand ("," operand)* ")")?
    operand  := "(" expr ")" | literal | function "(" args ")" | path "/any(" var ":" expr ")" | path

Literals are 'strings' (with '' escapes), numbers, true/false/null, unquoted ISO datetimes
(`2024-01-01T00:00:00.000Z`) and `geography'SRID=4326;POLYGON((...))'`. Paths use `/` (`ContentDate/Start`);
`OData.CSC.*` type-cast segments select attributes by type (`Attributes/OData.CSC.StringAttribute/any(...)`).
"""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rs_simulator.dates import parse_datetime


class ODataFilterError(ValueError):
    """A `$filter` the simulator cannot accept (syntax error, unknown field or function): HTTP 400."""


# ---------------------------------------------------------------------------------------------- tokens

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<geo>geography'[^']*')
  | (?P<string>'(?:[^']|'')*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*(?:/[A-Za-z_][A-Za-z0-9_.]*)*)
  | (?P<punct>[(),:=])
    """,
    re.VERBOSE,
)

COMPARISONS = {"eq": "eq", "ne": "ne", "gt": "gt", "ge": "ge", "gte": "ge", "lt": "lt", "le": "le", "lte": "le"}
FUNCTIONS = {"contains", "startswith", "endswith", "tolower", "toupper"}
GEO_FUNCTION = "OData.CSC.Intersects"
_TYPE_CAST = "OData.CSC."


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    position: int


def tokenize(text: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ODataFilterError(f"unexpected character {text[position]!r} at {position} in $filter")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


# ------------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]
    variable: str | None = None
    """Set when the path starts with a lambda variable (`att/Name`): resolved against the bound item."""


@dataclass(frozen=True)
class Compare:
    op: str
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class In:
    left: "Node"
    values: tuple["Node", ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Not:
    operand: "Node"


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Lambda:
    quantifier: str  # "any" | "all"
    collection: tuple[str, ...]
    item_type: str | None  # "#OData.CSC.StringAttribute" when the path casts
    variable: str
    body: "Node"


@dataclass(frozen=True)
class Intersects:
    area: tuple[float, float, float, float]  # lon/lat bounding box of the literal polygon


Node = Literal | Field | Compare | In | BoolOp | Not | Call | Lambda | Intersects


# ---------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, fields: Collection[str], aliases: Mapping[str, str]) -> None:
        self.tokens = tokenize(text)
        self.index = 0
        self.fields = fields
        self.aliases = aliases
        self.variables: list[str] = []

    def peek(self, offset: int = 0) -> Token | None:
        i = self.index + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def next(self) -> Token:
        token = self.peek()
        if token is None:
            raise ODataFilterError("unexpected end of $filter")
        self.index += 1
        return token

    def at(self, text: str) -> bool:
        token = self.peek()
        return token is not None and token.text == text

    def expect(self, text: str) -> None:
        token = self.next()
        if token.text != text:
            raise ODataFilterError(f"expected {text!r} at {token.position}, got {token.text!r}")

    def keyword(self, *words: str) -> str | None:
        token = self.peek()
        if token is not None and token.kind == "name" and token.text.lower() in words:
            self.index += 1
            return token.text.lower()
        return None

    def parse(self) -> Node:
        node = self.expr()
        token = self.peek()
        if token is not None:
            raise ODataFilterError(f"unexpected {token.text!r} at {token.position} in $filter")
        return node

    def expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = BoolOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.keyword("and"):
            node = BoolOp("and", node, self.not_expr())
        return node

    def not_expr(self) -> Node:
        if self.keyword("not"):
            return Not(self.not_expr())
        return self.compare()

    def compare(self) -> Node:
        left = self.operand()
        op = self.keyword(*COMPARISONS)
        if op is not None:
            return Compare(COMPARISONS[op], left, self.operand())
        if self.keyword("in"):
            self.expect("(")
            values = [self.operand(bare_strings=True)]
            while self.at(","):
                self.next()
                values.append(self.operand(bare_strings=True))
            self.expect(")")
            return In(left, tuple(values))
        return left

    def operand(self, bare_strings: bool = False) -> Node:
        token = self.next()
        if token.text == "(":
            node = self.expr()
            self.expect(")")
            return node
        if token.kind == "string":
            return Literal(token.text[1:-1].replace("''", "'"))
        if token.kind == "datetime":
            return Literal(parse_datetime(token.text))
        if token.kind == "number":
            return Literal(float(token.text) if re.search(r"[.eE]", token.text) else int(token.text))
        if token.kind == "geo":
            raise ODataFilterError(f"a geography literal is only allowed in {GEO_FUNCTION}(area=...)")
        if token.kind != "name":
            raise ODataFilterError(f"unexpected {token.text!r} at {token.position} in $filter")
        lowered = token.text.lower()
        if lowered in ("true", "false"):
            return Literal(lowered == "true")
        if lowered == "null":
            return Literal(None)
        following = self.peek()
        if following is not None and following.text == "(":
            return self.call_or_lambda(token)
        # RS clients sometimes write `Satellite in (S1A, S1C)`: bare words in an `in` list are strings.
        if bare_strings and "/" not in token.text and token.text not in self.fields:
            return Literal(token.text)
        return self.field(token)

    def field(self, token: Token) -> Field:
        segments = tuple(s for s in token.text.split("/") if not s.startswith(_TYPE_CAST))
        if segments and segments[0] in self.variables:
            return Field(segments[1:], variable=segments[0])
        name = "/".join(segments)
        name = self.aliases.get(name, name)
        if name not in self.fields:
            raise ODataFilterError(f"unknown field {token.text!r} in $filter")
        return Field(tuple(name.split("/")))

    def call_or_lambda(self, token: Token) -> Node:
        segments = token.text.split("/")
        if segments[-1].lower() in ("any", "all") and len(segments) > 1:
            return self.lambda_(token, segments)
        if token.text == GEO_FUNCTION:
            return self.intersects()
        name = token.text.lower()
        if name not in FUNCTIONS:
            raise ODataFilterError(f"unsupported function {token.text!r} in $filter")
        self.expect("(")
        args = [self.expr()]
        while self.at(","):
            self.next()
            args.append(self.expr())
        self.expect(")")
        return Call(name, tuple(args))

    def lambda_(self, token: Token, segments: list[str]) -> Lambda:
        casts = [s for s in segments[:-1] if s.startswith(_TYPE_CAST)]
        collection = tuple(s for s in segments[:-1] if not s.startswith(_TYPE_CAST))
        if "/".join(collection) not in self.fields:
            raise ODataFilterError(f"unknown collection {token.text!r} in $filter")
        self.expect("(")
        variable = self.next()
        if variable.kind != "name" or "/" in variable.text:
            raise ODataFilterError(f"expected a lambda variable at {variable.position}")
        self.expect(":")
        self.variables.append(variable.text)
        try:
            body = self.expr()
        finally:
            self.variables.pop()
        self.expect(")")
        item_type = f"#{casts[-1]}" if casts else None
        return Lambda(segments[-1].lower(), collection, item_type, variable.text, body)

    def intersects(self) -> Intersects:
        if "GeoFootprint" not in self.fields:
            raise ODataFilterError(f"{GEO_FUNCTION} is not supported on this entity set")
        self.expect("(")
        name = self.next()
        if name.text != "area":
            raise ODataFilterError(f"expected area= in {GEO_FUNCTION}")
        self.expect("=")
        literal = self.next()
        if literal.kind != "geo":
            raise ODataFilterError(f"expected a geography literal in {GEO_FUNCTION}")
        self.expect(")")
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", literal.text.split(";", 1)[-1])]
        if len(numbers) < 2 or len(numbers) % 2:
            raise ODataFilterError(f"cannot read the polygon of {literal.text!r}")
        return Intersects(bounding_box(list(zip(numbers[::2], numbers[1::2], strict=True))))


def parse_filter(text: str, fields: Collection[str], aliases: Mapping[str, str] | None = None) -> Node:
    """Parse `text` for an entity set whose filterable paths are `fields` (e.g. `ContentDate/Start`).

    Raises:
        ODataFilterError: on a syntax error, an unknown field, collection or function.
    """
    return _Parser(text, fields, aliases or {}).parse()


def bounding_box(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)
