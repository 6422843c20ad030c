"""SiteWise's query language, parsed with sqlglot and translated to DuckDB.

What SiteWise's user guide defines and DuckDB does not, or does differently:

- **Implicit joins**: ``FROM asset a, asset_property p, raw_time_series r`` (and a ``JOIN`` without ``ON``)
  joins each view to an earlier one on the keys they share, ``asset_id`` and ``property_id``, "the equivalent
  of performing a JOIN on the asset_id and property_id fields"; DuckDB would cross-join them.
- ``DATE_ADD/DATE_SUB/TIMESTAMP_ADD/TIMESTAMP_SUB(unit, n, ts)`` with the units YEAR, MONTH, DAY, HOUR,
  MINUTE, SECOND; ``NOW()`` (the gateway clock, millisecond precision, UTC); ``STR_REPLACE(s, from, to)``;
  ``SUBSTR(s, 'regexp')`` (the first match); ``CAST(s AS TIMESTAMP FORMAT 'yyyy-MM-dd HH:mm:ss')``
  (Java's pattern letters).
- Refused as SiteWise refuses them, with a ValidationException: anything but one ``SELECT``; ``UNION``,
  ``INTERSECT``, ``EXCEPT``; ``WITH``; joins other than ``JOIN`` / ``INNER JOIN``; a subquery in ``FROM``
  (the grammar takes views there; subqueries belong in ``IN (...)``).

:func:`scan_of` reads the filters a statement puts on its time-series view (the ``event_timestamp`` range,
``property_alias``/``asset_id``/``property_id`` literals, and the conditions on the metadata views joined to
it), so the sandbox loads only those rows instead of the whole view (:mod:`api.sitewise.sql`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlglot
import sqlglot.dialects.duckdb  # loaded with the app, not by the first query (0.9 s)
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from sitewise_edge.errors import ApiError

KEYS = {"asset": ("asset_id",), "asset_property": ("asset_id", "property_id"),
        "raw_time_series": ("asset_id", "property_id"), "latest_value_time_series": ("asset_id", "property_id"),
        "precomputed_aggregates": ("asset_id", "property_id")}
METADATA_VIEWS = ("asset", "asset_property")
SERIES_VIEWS = ("raw_time_series", "precomputed_aggregates")
UNITS = ("YEAR", "MONTH", "DAY", "HOUR", "MINUTE", "SECOND")
_DATE_MATH: dict[type[exp.Expression], int] = {
    exp.DateAdd: 1, exp.TimestampAdd: 1, exp.DateSub: -1, exp.TimestampSub: -1}
_JAVA_PATTERN = re.compile(r"yyyy|yy|MM|dd|HH|hh|mm|ss|SSS|a|'[^']*'")
_JAVA_TO_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "hh": "%I", "mm": "%M",
                     "ss": "%S", "SSS": "%g", "a": "%p"}


class SiteWise(Dialect):
    """The default dialect, with NULLs last in every order (SiteWise's and DuckDB's default)."""

    NULL_ORDERING = "nulls_are_last"


def validation(message: str) -> ApiError:
    return ApiError("ValidationException", message)


@dataclass
class Scan:
    """The rows of a time-series view a statement can read: ``streams`` None is every stream; times in ns,
    (start, end], None unbounded. A superset: the statement's own WHERE still filters them exactly."""

    streams: set[str] | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    metadata_sql: str | None = None  # DuckDB SQL giving (asset_id, property_id) pairs the joins keep
    ids: set[tuple[str | None, str | None]] = field(default_factory=set)  # literal (asset_id, property_id)


def parse(statement: str) -> exp.Select:
    """The one SELECT of ``statement``, checked against SiteWise's grammar."""
    try:
        trees = [t for t in sqlglot.parse(statement, read=SiteWise) if t is not None]
    except (ParseError, TokenError) as e:
        raise validation(f"syntax error: {_first_line(str(e))}") from None
    if len(trees) != 1:
        raise validation(f"expected exactly one SQL statement, got {len(trees)}")
    tree = trees[0]
    if isinstance(tree, exp.SetOperation):
        raise validation(f"{tree.key.upper()} is not supported: SiteWise's query language has one SELECT per "
                         "statement (subqueries go in IN (...))")
    if not isinstance(tree, exp.Select):
        raise validation(f"only SELECT statements can be run, got {tree.key.upper()}")
    for node in tree.walk():
        if isinstance(node, exp.With):
            raise validation("WITH is not supported: SiteWise's query language has no common table expressions")
        if isinstance(node, exp.SetOperation):
            raise validation(f"{node.key.upper()} is not supported in SiteWise's query language")
        if isinstance(node, exp.Join):
            kind = " ".join(str(node.args.get(k) or "").upper() for k in ("method", "side", "kind")).split()
            if any(k not in ("INNER",) for k in kind):
                raise validation(f"{' '.join(kind)} JOIN is not supported: SiteWise supports JOIN and INNER JOIN")
        if isinstance(node, exp.Subquery) and isinstance(node.parent, exp.From | exp.Join):
            raise validation("a subquery in FROM is not supported: FROM takes the views (asset, asset_property, "
                             "raw_time_series, latest_value_time_series, precomputed_aggregates)")
    return tree


def translate(tree: exp.Select, now_ms: int) -> str:
    """The DuckDB SQL of a parsed statement (the tree is rewritten in place)."""
    for select in list(tree.find_all(exp.Select)):
        _implicit_joins(select)
    now = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    rewrites: dict[type[exp.Expression], Callable[[exp.Expression], exp.Expression]] = {
        **dict.fromkeys(_DATE_MATH, _date_math),
        exp.Substring: _substring,
        exp.StrToTime: _str_to_time,
    }

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Anonymous):
            name = str(node.this).upper()
            if name == "NOW" and not node.expressions:
                return exp.cast(exp.Literal.string(now), exp.DataType.Type.TIMESTAMP)
            if name == "STR_REPLACE":
                return exp.Anonymous(this="replace", expressions=node.expressions)
        if isinstance(node, exp.CurrentTimestamp):
            return exp.cast(exp.Literal.string(now), exp.DataType.Type.TIMESTAMP)
        fn = rewrites.get(type(node))
        return fn(node) if fn is not None else node

    for node in reversed(list(tree.dfs())):  # children before parents: NOW() inside DATE_SUB(...) too
        if not isinstance(node, exp.Expression):
            continue
        new = rewrite(node)
        if new is not node:
            node.replace(new)
    return tree.sql("duckdb")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "the statement cannot be parsed"


def _tables(select: exp.Select) -> list[exp.Table]:
    """The views a SELECT's FROM and joins name, in order."""
    out = []
    source = select.args.get("from_") or select.args.get("from")
    if source is not None and isinstance(source.this, exp.Table):
        out.append(source.this)
    out += [j.this for j in select.args.get("joins") or [] if isinstance(j.this, exp.Table)]
    return out


def _ref(table: exp.Table) -> str:
    return table.alias_or_name


def _implicit_joins(select: exp.Select) -> None:
    """A join without ON or USING joins on the keys its view shares with the best earlier view.

    Marks the SELECT ``sw_implicit`` when every join was (the metadata conditions then bound its series).
    """
    seen: list[exp.Table] = _tables(select)[:1]
    select.meta["sw_implicit"] = True
    for join in select.args.get("joins") or []:
        table = join.this
        if not isinstance(table, exp.Table):
            continue
        keys = KEYS.get(table.name.lower(), ())
        if join.args.get("on") or join.args.get("using"):
            select.meta["sw_implicit"] = False
        elif keys:
            best = max(seen, key=lambda t: len(set(KEYS.get(t.name.lower(), ())) & set(keys)), default=None)
            shared = [k for k in keys if best is not None and k in KEYS.get(best.name.lower(), ())]
            if best is not None and shared:
                cond = exp.and_(*[exp.EQ(this=exp.column(k, _ref(table)), expression=exp.column(k, _ref(best)))
                                  for k in shared])
                join.set("on", cond)
                join.set("kind", None)
        seen.append(table)


def _date_math(node: exp.Expression) -> exp.Expression:
    """DATE_ADD(unit, n, ts) -> ts + INTERVAL (n) unit (sqlglot reads the three arguments as this,
    expression, unit)."""
    unit, n, ts = node.this, node.args.get("expression"), node.args.get("unit")
    name = unit.name.upper() if isinstance(unit, exp.Column | exp.Var) and not getattr(unit, "table", "") else ""
    fn = type(node).__name__
    if name not in UNITS or n is None or not isinstance(ts, exp.Expression):
        raise validation(f"{_sql_name(fn)}(unit, n, timestamp): the unit must be one of {', '.join(UNITS)}, got "
                         f"{unit.sql() if isinstance(unit, exp.Expression) else unit}")
    interval = exp.Interval(this=exp.Paren(this=n), unit=exp.Var(this=name))
    return exp.Add(this=ts, expression=interval) if _DATE_MATH[type(node)] > 0 else exp.Sub(this=ts,
                                                                                           expression=interval)


def _sql_name(cls_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls_name).upper()


def _substring(node: exp.Expression) -> exp.Expression:
    """SUBSTR(s, 'regexp') is the first match of the regular expression (SUBSTR(s, start[, length]) as is)."""
    start = node.args.get("start")
    if isinstance(start, exp.Literal) and start.is_string and node.args.get("length") is None:
        return exp.RegexpExtract(this=node.this, expression=start)
    return node


def _str_to_time(node: exp.Expression) -> exp.Expression:
    """CAST(s AS TIMESTAMP FORMAT 'yyyy-MM-dd HH:mm:ss'): Java's pattern letters as strptime's."""
    fmt = node.args.get("format")
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        raise validation("CAST(... AS TIMESTAMP FORMAT pattern): the pattern must be a string literal")
    java = fmt.this

    def one(m: re.Match[str]) -> str:
        token = m.group(0)
        return token[1:-1].replace("%", "%%") if token.startswith("'") else _JAVA_TO_STRFTIME[token]

    pattern = _JAVA_PATTERN.sub(one, java)
    return exp.Anonymous(this="strptime", expressions=[node.this, exp.Literal.string(pattern)])


# --- filter push-down --------------------------------------------------------------------------------


Constant = Callable[[str], "int | None"]  # DuckDB SQL of a constant timestamp -> its ns (None: not one)


def scan_of(tree: exp.Select, view: str, constant: Constant | None = None) -> Scan:
    """What the statement needs of ``view`` (raw_time_series or precomputed_aggregates).

    Only where the view appears once: its SELECT's top-level AND conditions bound the time and the streams;
    conditions on metadata views of the same FROM become ``metadata_sql``. Anything else reads it whole.
    ``constant`` evaluates a time bound that is an expression without columns (``DATE_SUB(HOUR, 1, NOW())``).
    """
    uses = [t for t in tree.find_all(exp.Table) if t.name.lower() == view]
    if len(uses) != 1:
        return Scan()
    table = uses[0]
    select = table.find_ancestor(exp.Select)
    if select is None:
        return Scan()
    tables = _tables(select)
    if table not in tables:
        return Scan()
    ref = _ref(table)
    owners = {_ref(t): t.name.lower() for t in tables}
    scan = Scan()
    where = select.args.get("where")
    conjuncts = list(_conjuncts(where.this)) if where is not None else []
    metadata: list[exp.Expression] = []
    aliases: set[str] = set()
    asset_ids: set[str] | None = None
    property_ids: set[str] | None = None
    for c in conjuncts:
        refs = _column_owners(c, owners, view)
        if refs is None:
            continue
        if refs == {ref}:
            _time_bound(c, scan, constant)
            column, values = _literal_set(c)
            if column == "property_alias":
                aliases = values if not aliases else aliases & values
                scan.streams = aliases
            elif column == "asset_id":
                asset_ids = values if asset_ids is None else asset_ids & values
            elif column == "property_id":
                property_ids = values if property_ids is None else property_ids & values
        elif refs and all(owners[r] in METADATA_VIEWS for r in refs) and not c.find(exp.Select):
            metadata.append(c)
    if asset_ids is not None or property_ids is not None:
        assets: set[str | None] = set(asset_ids) if asset_ids else {None}
        props: set[str | None] = set(property_ids) if property_ids else {None}
        scan.ids = {(a, p) for a in assets for p in props}
    meta_tables = [t for t in tables if t.name.lower() in METADATA_VIEWS]
    if metadata and meta_tables and select.meta.get("sw_implicit"):
        scan.metadata_sql = _metadata_query(select, meta_tables, metadata)
    return scan


def _conjuncts(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _column_owners(node: exp.Expression, owners: dict[str, str], view: str) -> set[str] | None:
    """The table references a condition's columns belong to; None when one is ambiguous."""
    refs: set[str] = set()
    for col in node.find_all(exp.Column):
        if col.find_ancestor(exp.Select) is not node.find_ancestor(exp.Select):
            return None  # inside a subquery
        if col.table:
            if col.table not in owners:
                return None
            refs.add(col.table)
        else:
            holders = [r for r, v in owners.items() if col.name.lower() in _COLUMNS.get(v, ())]
            if len(holders) != 1:
                return None
            refs.add(holders[0])
    return refs


_SERIES_COLUMNS = ("asset_id", "property_id", "property_alias", "event_timestamp", "quality")
_COLUMNS = {
    "asset": ("asset_id", "asset_name", "asset_description", "asset_model_id", "parent_asset_id",
              "asset_external_id", "asset_model_external_id", "hierarchy_id"),
    "asset_property": ("asset_id", "property_id", "property_name", "property_alias", "property_external_id",
                       "asset_composite_model_id", "property_type", "property_data_type", "int_attribute_value",
                       "double_attribute_value", "boolean_attribute_value", "string_attribute_value"),
    "raw_time_series": (*_SERIES_COLUMNS, "boolean_value", "int_value", "double_value", "string_value"),
    "latest_value_time_series": (*_SERIES_COLUMNS, "boolean_value", "int_value", "double_value", "string_value"),
    "precomputed_aggregates": (*_SERIES_COLUMNS, "resolution", "sum_value", "count_value", "average_value",
                               "maximum_value", "minimum_value", "stdev_value"),
}


def _timestamp_ns(node: exp.Expression, constant: Constant | None = None) -> int | None:
    """A constant TIMESTAMP '...' (or a string compared with event_timestamp) in ns, UTC; another expression
    without columns through ``constant``."""
    if constant is not None and not isinstance(node, exp.Literal | exp.Cast) and not node.find(exp.Column):
        return constant(node.sql("duckdb")) if not node.find(exp.Select) else None
    if isinstance(node, exp.Cast) and node.to.is_type(exp.DataType.Type.TIMESTAMP):
        node = node.this
    if not (isinstance(node, exp.Literal) and node.is_string):
        return None
    try:
        t = datetime.fromisoformat(node.this.replace(" ", "T"))
    except ValueError:
        return None
    t = t.replace(tzinfo=UTC) if t.tzinfo is None else t
    return int(t.timestamp()) * 10**9 + t.microsecond * 1000


_US = 1000  # event_timestamp has microseconds: widen every bound by one so the superset holds


def _time_bound(c: exp.Expression, scan: Scan, constant: Constant | None) -> None:
    def lower(ns: int) -> None:
        scan.start_ns = ns if scan.start_ns is None else max(scan.start_ns, ns)

    def upper(ns: int) -> None:
        scan.end_ns = ns if scan.end_ns is None else min(scan.end_ns, ns)

    if isinstance(c, exp.Between) and _is_time(c.this):
        lo, hi = _timestamp_ns(c.args["low"], constant), _timestamp_ns(c.args["high"], constant)
        if lo is not None:
            lower(lo - 2 * _US)
        if hi is not None:
            upper(hi + _US)
        return
    if not isinstance(c, exp.GT | exp.GTE | exp.LT | exp.LTE | exp.EQ):
        return
    left, right = c.this, c.expression
    flip: dict[type[exp.Expression], type[exp.Expression]] = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT,
                                                              exp.LTE: exp.GTE, exp.EQ: exp.EQ}
    op: type[exp.Expression] = type(c)
    if _is_time(right) and not _is_time(left):
        left, right, op = right, left, flip[op]
    ns = _timestamp_ns(right, constant) if _is_time(left) else None
    if ns is None:
        return
    if op in (exp.GT, exp.GTE, exp.EQ):
        lower(ns - 2 * _US)
    if op in (exp.LT, exp.LTE, exp.EQ):
        upper(ns + _US)


def _is_time(node: exp.Expression) -> bool:
    return isinstance(node, exp.Column) and node.name.lower() == "event_timestamp"


def _literal_set(c: exp.Expression) -> tuple[str | None, set[str]]:
    """(column, values) of ``col = 'v'`` or ``col IN ('v', ...)``."""
    if isinstance(c, exp.EQ):
        col, lit = (c.this, c.expression) if isinstance(c.this, exp.Column) else (c.expression, c.this)
        if isinstance(col, exp.Column) and isinstance(lit, exp.Literal) and lit.is_string:
            return col.name.lower(), {lit.this}
    if isinstance(c, exp.In) and isinstance(c.this, exp.Column) and not c.args.get("query"):
        values = c.expressions
        if values and all(isinstance(v, exp.Literal) and v.is_string for v in values):
            return c.this.name.lower(), {v.this for v in values}
    return None, set()


def _metadata_query(select: exp.Select, tables: list[exp.Table], conditions: list[exp.Expression]) -> str:
    """SELECT DISTINCT asset_id, property_id of the metadata views under their conditions (joined as the
    statement joins them)."""
    first, rest = tables[0], tables[1:]
    q = exp.select().from_(first.copy())
    for t in rest:
        q = q.join(t.copy())
    q = q.where(exp.and_(*[c.copy() for c in conditions]))
    prop = next((t for t in tables if t.name.lower() == "asset_property"), None)
    asset_ref = _ref(prop or first)
    cols: list[Any] = [exp.column("asset_id", asset_ref).as_("asset_id")]
    cols.append(exp.column("property_id", _ref(prop)).as_("property_id") if prop is not None
                else exp.cast(exp.null(), exp.DataType.Type.VARCHAR).as_("property_id"))
    q = q.select(*cols).distinct()
    _implicit_joins(q)
    return q.sql("duckdb")
