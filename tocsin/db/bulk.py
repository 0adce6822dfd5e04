"""One INSERT (or UPDATE) for many rows, without the ORM's per-value compilation.

``QuerySet.bulk_create`` prepares every value of every row through the SQL compiler
(``field_as_sql``, ``pre_save``, ``get_db_prep_save``…): in a profile of a batch of 100 new
alerts, that work took twelve times as long as SQLite executing the statements. ``insert`` does
what ``bulk_create`` does for the rows the alert pipeline writes — one ``INSERT … RETURNING id``,
primary keys set on the instances — converting only the values that need it (dates, JSON) with
the field's own conversion, so the stored values are exactly those ``bulk_create`` would store.
No signals are sent (``bulk_create`` sends none either). Works on SQLite 3.35+, PostgreSQL and
MariaDB 10.5+ (each returns the inserted ids in the order of the rows).
"""

from __future__ import annotations

import functools
import json
import math
import operator
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
from django.db import IntegrityError, connections, models, router, transaction
from django.db.models.query import RawQuerySet
from django.db.models.sql import RawQuery

# Rows per statement: far below every backend's parameter limit for our widest table.
CHUNK = 500


def _converters(
    fields: Sequence[models.Field], connection: Any
) -> list[Callable[[Any], Any] | None]:
    """Per field, how a Python value becomes a database value (None: as it is)."""
    out: list[Callable[[Any], Any] | None] = []
    as_jsonb = _jsonb_converter() if connection.vendor == "postgresql" else None
    for field in fields:
        if isinstance(field, models.JSONField) and field.encoder is None and as_jsonb:
            out.append(as_jsonb)
        elif isinstance(field, models.JSONField):
            # What JSONField.get_db_prep_save does for a plain value (None is SQL NULL), in one
            # call instead of four: eight JSON values per new alert go through here.
            adapt, encoder = connection.ops.adapt_json_value, field.encoder

            def convert(value: Any, adapt: Callable = adapt, encoder: Any = encoder) -> Any:
                return None if value is None else adapt(value, encoder)

            out.append(convert)
        elif isinstance(field, models.DateTimeField | models.DateField):
            # A batch shares a handful of times (its ``now``): convert each once.
            seen: dict[Any, Any] = {}

            def convert_time(value: Any, field: models.Field = field, seen: dict = seen) -> Any:
                if value is None:
                    return None
                if value not in seen:
                    seen[value] = field.get_db_prep_save(value, connection)
                return seen[value]

            out.append(convert_time)
        else:
            out.append(None)
    return out


def _orjson_or_json(value: Any) -> bytes:
    """JSON text of ``value`` as ``json.dumps`` (Django's encoder for JSONField) would accept
    it: orjson for what it writes the same way (several times faster: ~7 values per new alert),
    ``json.dumps`` for the rest (keys that are not strings, integers past 64 bits, and what
    neither encodes, which raises the same TypeError as before). PostgreSQL stores jsonb
    parsed, so the spacing of the text makes no difference to what is stored. Unlike
    ``json.dumps``, orjson also encodes Enum and UUID values; nothing we store holds them."""
    try:
        text = orjson.dumps(value, option=_ORJSON_STRICT)
    except TypeError:
        return json.dumps(value).encode()
    if b"null" in text and _has_non_finite(value):
        # orjson writes NaN and ±Infinity as null; json.dumps writes them as PostgreSQL refuses
        # them, so the row fails as it did, rather than storing a null nobody wrote.
        return json.dumps(value).encode()
    return text


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_has_non_finite(item) for item in value)
    return False


# Datetimes and dataclasses go to json.dumps, which refuses them as before (orjson would write
# them); str and int subclasses (TextChoices) are written as their values by both.
_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _jsonb_converter() -> Callable[[Any], Any]:
    """A JSONField value (no custom encoder) as a jsonb parameter; None is SQL NULL."""
    from psycopg.types.json import Jsonb  # PostgreSQL only: psycopg may be missing elsewhere

    def as_jsonb(value: Any) -> Any:
        return None if value is None else Jsonb(value, dumps=_orjson_or_json)

    return as_jsonb


def _unnest(
    fields: Sequence[models.Field], connection: Any, *, json_documents: bool = False
) -> str | None:
    """``UNNEST(%s::type[], …)`` for these columns on PostgreSQL, else None. With
    ``json_documents``, each plain JSONField's column is one jsonb array (``_json_document``)."""
    if connection.vendor != "postgresql":
        return None
    return _unnest_text(tuple(fields), connection.alias, json_documents)


def _is_plain_json(field: models.Field) -> bool:
    return isinstance(field, models.JSONField) and field.encoder is None


# A column sent as one jsonb array, split back into its values in order; JSON null is SQL NULL,
# as Django stores a JSONField's None.
_JSON_COLUMN = (
    "ARRAY(SELECT NULLIF(j.value, 'null') FROM jsonb_array_elements((%b)::jsonb) "
    "WITH ORDINALITY AS j(value, n) ORDER BY j.n)"
)


@functools.cache
def _unnest_text(fields: tuple[models.Field, ...], alias: str, json_documents: bool) -> str:
    # Written once per table and database: asking every field its type took a tenth of a
    # one-alert batch. Without the type's parameters, as Django does: varchar[], not varchar(50)[].
    connection = connections[alias]
    columns = [
        _JSON_COLUMN
        if json_documents and _is_plain_json(field)
        else f"(%b)::{field.db_type(connection).split('(')[0]}[]"
        for field in fields
    ]
    return "UNNEST(" + ", ".join(columns) + ")"


# A JSON column larger than this goes value by value: one jsonb value holds at most 256 MiB.
MAX_JSON_DOCUMENT = 64 * 1024 * 1024


def _json_document(values: Sequence[Any]) -> Any:
    """A column of JSONField values as one jsonb parameter (a JSON array): one orjson call for
    the column instead of one value object and one encoding per value, which were a tenth of a
    web process's time under batches of new alerts (eight JSON values per new alert). What
    orjson would write differently goes value by value through ``_orjson_or_json``, as before."""
    from psycopg.types.json import Jsonb

    try:
        text = orjson.dumps(values, option=_ORJSON_STRICT)
        if b"null" in text and _has_non_finite(values):
            raise TypeError("NaN or Infinity: encoded value by value")
    except TypeError:
        text = b"[" + b",".join(b"null" if v is None else _orjson_or_json(v) for v in values)
        text += b"]"
    return Jsonb(text, dumps=_encoded)


def _encoded(text: bytes) -> bytes:
    return text


def _cursor(connection: Any, *, binary: bool) -> Any:
    """A cursor for ``insert``: ``server_cursor`` for the arrays, else Django's own."""
    return server_cursor(connection) if binary else connection.cursor()


def server_cursor(connection: Any) -> Any:
    """On PostgreSQL, a cursor that sends parameters apart from the statement (server-side
    binding) rather than quoting every value into the statement's text as Django's cursors do
    (a regular expression per value, in Python). A statement it runs again and again on a
    connection is prepared there (``tocsin.db_pool.prepare_threshold``): PostgreSQL then skips
    parsing and planning it, which took half of its time for a small batch of new alerts.
    Elsewhere, Django's own cursor."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    # Wrapped as Django wraps its own cursors, so the statement is logged and counted alike.
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))


class _ServerBoundRawQuery(RawQuery):
    def _execute_query(self) -> None:
        self.cursor = server_cursor(connections[self.using])
        self.cursor.execute(self.sql, self.params)


def raw(model: type[models.Model], sql: str, params: Sequence[Any]) -> RawQuerySet:
    """``model.objects.raw(sql, params)`` run through ``server_cursor`` (on PostgreSQL bound
    server-side, and prepared once it runs often)."""
    using = router.db_for_read(model)
    query = _ServerBoundRawQuery(sql, using, params=tuple(params))
    return RawQuerySet(sql, model=model, query=query, params=tuple(params), using=using)


def _insert_chunks(
    table: str, fields: Sequence[models.Field], connection: Any, rows: Sequence[Sequence[Any]]
) -> Iterator[tuple[int, str, list[Any], bool]]:
    """The INSERT statements for ``rows`` (values in the order of ``fields``), CHUNK rows each:
    (offset of the chunk, SQL without its ending, parameters, whether to send them binary)."""
    converters = _converters(fields, connection)
    quote = connection.ops.quote_name
    head = f"INSERT INTO {quote(table)} ({', '.join(quote(f.column) for f in fields)})"
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    unnest = _unnest(fields, connection, json_documents=True)
    documents = [_is_plain_json(field) for field in fields]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        if unnest is not None and len(chunk) > 1:
            # One array per column: the statement's text is the same for every batch size, so
            # neither psycopg (which parses the text of every statement it sends) nor
            # PostgreSQL (which plans it) pays per value; the same as bulk_create since 5.2.
            # Converted column by column (map: a C loop, no per-value test of the converter).
            values_by_column = list(zip(*chunk, strict=True))
            columns = [
                _json_document(values)
                if document
                else list(values)
                if convert is None
                else list(map(convert, values))
                for values, convert, document in zip(
                    values_by_column, converters, documents, strict=True
                )
            ]
            sql = f"{head} SELECT * FROM {unnest}"
            oversized = (
                len(column.obj) > MAX_JSON_DOCUMENT
                for column, document in zip(columns, documents, strict=True)
                if document
            )
            if any(oversized):
                # Past what one jsonb value may hold (256 MiB): value by value, in jsonb[].
                columns = [
                    list(values) if convert is None else list(map(convert, values))
                    for values, convert in zip(values_by_column, converters, strict=True)
                ]
                sql = f"{head} SELECT * FROM {_unnest(fields, connection)}"
            yield start, sql, columns, True
        else:
            params: list[Any] = [
                value if convert is None else convert(value)
                for values in chunk
                for value, convert in zip(values, converters, strict=True)
            ]
            # On PostgreSQL bound server-side too: the text is the same for every lone row, so
            # it is prepared like the arrays' (a lone new alert is the usual small batch).
            binary = connection.vendor == "postgresql"
            yield start, f"{head} VALUES " + ", ".join([row] * len(chunk)), params, binary


def insert(objs: Sequence[models.Model], *, skip_conflicts: Sequence[str] = ()) -> list:
    """INSERT ``objs`` (instances of one model with an auto primary key, not saved yet), set
    their primary keys, and return them.

    Without ``skip_conflicts`` it raises IntegrityError like ``bulk_create`` (run it in a
    savepoint when the caller wants to go on). With ``skip_conflicts`` — the attribute names of
    a unique constraint, distinct among ``objs`` — rows that would violate it are left out
    (``ON CONFLICT … DO NOTHING``, which waits for a racing transaction's verdict rather than
    failing) and only the instances stored are returned: the caller learns which rows are its
    own in the same statement, with no savepoint. On backends without ``ON CONFLICT … RETURNING``
    (SQLite before 3.35 has no RETURNING at all; MariaDB only ``INSERT IGNORE``, which ignores
    more than conflicts) a conflict stores nothing and returns [], in a savepoint of its own.
    """
    if not objs:
        return []
    model = type(objs[0])
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    if skip_conflicts and connection.vendor not in ("postgresql", "sqlite"):
        try:
            with transaction.atomic(using=alias):
                return insert(objs)
        except IntegrityError:
            return []
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    attnames = [f.attname for f in fields]
    keys = [meta.get_field(name) for name in skip_conflicts]
    returning = ", ".join(quote(f.column) for f in [meta.pk, *keys])
    if keys:
        conflict = ", ".join(quote(f.column) for f in keys)
        returning = f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {returning}"
    else:
        returning = f"RETURNING {returning}"
    stamped = [
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    for obj in objs:
        for field in stamped:
            field.pre_save(obj, add=True)  # sets the time on the instance, as save() would
    stored: list = []
    row_of = operator.attrgetter(*attnames)  # one C call per object, not one per column
    values = [row_of(obj) if len(attnames) > 1 else (row_of(obj),) for obj in objs]
    for start, sql, params, binary in _insert_chunks(meta.db_table, fields, connection, values):
        chunk = objs[start : start + CHUNK]
        with _cursor(connection, binary=binary) as cursor:
            cursor.execute(f"{sql} {returning}", params)
            rows = cursor.fetchall()
        if keys:  # only the rows stored come back: match them by their key
            key_of = operator.attrgetter(*(f.attname for f in keys))
            by_key = {(key_of(obj) if len(keys) > 1 else (key_of(obj),)): obj for obj in chunk}
            pairs = [(by_key[tuple(r[1:])], r[0]) for r in rows]
        else:
            pairs = list(zip(chunk, (r[0] for r in rows), strict=True))
        for obj, pk in pairs:
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = alias
            stored.append(obj)
    return stored


def insert_rows(
    model: type[models.Model],
    rows: Sequence[dict[str, Any]],
    *,
    skip_conflicts: Sequence[str] = (),
) -> None:
    """INSERT rows given as ``{attname: value}`` (fields left out get their defaults) with no
    instances built and nothing read back: for caches written thousands of rows at a time,
    where even ``instance`` costs more than the statement. Conflicts and errors as ``insert``
    (with ``skip_conflicts``, rows that would violate that unique constraint are left out)."""
    if not rows:
        return
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    if skip_conflicts and connection.vendor not in ("postgresql", "sqlite"):
        try:
            with transaction.atomic(using=alias):
                insert_rows(model, rows)
        except IntegrityError:
            pass
        return
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    defaults = [f.get_default() for f in fields]
    values = [
        [row.get(f.attname, default) for f, default in zip(fields, defaults, strict=True)]
        for row in rows
    ]
    conflict = ""
    if skip_conflicts:
        quote = connection.ops.quote_name
        keys = ", ".join(quote(meta.get_field(name).column) for name in skip_conflicts)
        conflict = f" ON CONFLICT ({keys}) DO NOTHING"
    for _, sql, params, binary in _insert_chunks(meta.db_table, fields, connection, values):
        with _cursor(connection, binary=binary) as cursor:
            cursor.execute(sql + conflict, params)


def update(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of ``objs`` (one model) with one ``UPDATE … FROM`` a list of rows.

    What ``bulk_update`` does, without its ``CASE WHEN pk = … THEN …`` per field and row, whose
    compiling took most of the recording in a profile of the worker; each value goes through
    its field's own conversion, so what is stored is what ``bulk_update`` would store. On
    PostgreSQL the rows go as one array per column (``UNNEST``, sent in binary, as
    ``insert`` does: psycopg's client-side binding parsed the statement's text
    for every value), on SQLite (3.33+) as ``VALUES``; ``bulk_update`` elsewhere.
    """
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    db = connections[router.db_for_write(model)]
    if db.vendor not in ("postgresql", "sqlite") or (
        db.vendor == "sqlite" and sqlite3.sqlite_version_info < (3, 33)
    ):
        model.objects.bulk_update(objs, fields)
        return
    quote = db.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    names = ", ".join(f"c{n}" for n in range(len(columns)))
    table = quote(meta.db_table)
    assignments = ", ".join(
        f"{quote(field.column)} = v.c{n}" for n, field in enumerate(columns) if n
    )
    where = f"WHERE {table}.{quote(meta.pk.column)} = v.c0"
    unnest = _unnest(columns, db)
    for start in range(0, len(objs), CHUNK):
        chunk = objs[start : start + CHUNK]
        rows = [
            [field.get_db_prep_save(getattr(obj, field.attname), db) for field in columns]
            for obj in chunk
        ]
        if unnest is not None:
            params: list[Any] = [list(values) for values in zip(*rows, strict=True)]
            sql = f"UPDATE {table} SET {assignments} FROM {unnest} AS v({names}) {where}"
        else:
            params = [value for row in rows for value in row]
            values = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(chunk))
            sql = f"WITH v({names}) AS (VALUES {values}) "
            sql += f"UPDATE {table} SET {assignments} FROM v {where}"
        with _cursor(db, binary=unnest is not None) as cursor:
            cursor.execute(sql, params)


def instance(model: type[models.Model], values: dict[str, Any]) -> models.Model:
    """A new, unsaved ``model`` from column values (``team_id``, not ``team``), through the
    positional path of ``Model.__init__`` that Django uses for rows read from the database:
    several times cheaper than keyword arguments, which matters at thousands per batch. Columns
    left out get their defaults; related objects are not cached (pass them to the constructor
    when code reads them later)."""
    missing = object()
    row = []
    for field in model._meta.concrete_fields:
        value = values.get(field.attname, missing)
        row.append(field.get_default() if value is missing else value)
    return model(*row)
