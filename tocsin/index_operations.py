"""Migration operations for indexes on tables that are already large (alerts, incidents).

``CREATE INDEX`` blocks writes to the table while it builds — seconds at a million alerts, and
ingest would answer late meanwhile. On PostgreSQL these build ``CONCURRENTLY`` instead (the
migration declares ``atomic = False``); on SQLite, a single-writer embedded database, they build
the plain way.

They change the database only, not Django's model state: the models' ``Meta`` belongs to the
modules that define them, and these indexes serve the list pages' queries (``tocsin.keyset``),
named after them. ``makemigrations`` neither sees nor drops them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations


class AddListIndex(AddIndexConcurrently):
    """Add ``index`` to ``model_name``'s table: concurrently on PostgreSQL, database only."""

    reduces_to_sql = False

    def state_forwards(self, app_label: str, state: Any) -> None:
        """The model state keeps its declared indexes; this one lives in the database only."""

    # Creating or dropping an index needs the model's table, not the index in the model state.
    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
        else:
            migrations.AddIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )

    def describe(self) -> str:
        return f"Create list index {self.index.name} on {self.model_name} (database only)"


class DropForeignKeyIndex(migrations.operations.base.Operation):
    """Drop the index Django made for a foreign key that another index now covers (one that
    begins with the same column), in the database only: pair it with the ``AlterField`` to
    ``db_index=False`` in ``SeparateDatabaseAndState``.

    Why not the ``AlterField`` alone: on SQLite Django rebuilds the whole table to change a
    field (a copy of every alert), where dropping the index is all that changes; on PostgreSQL
    the drop runs ``CONCURRENTLY`` (the migration declares ``atomic = False``) so ingest does
    not wait behind it. MySQL/MariaDB have no such index to drop: InnoDB keeps its own for each
    foreign key.
    """

    reduces_to_sql = False
    reversible = True

    def __init__(self, model_name: str, field_name: str) -> None:
        self.model_name = model_name
        self.field_name = field_name

    def state_forwards(self, app_label: str, state: Any) -> None:
        """Database only."""

    def _execute(self, app_label: str, schema_editor: Any, state: Any, *, drop: bool) -> None:
        vendor = schema_editor.connection.vendor
        if vendor not in ("postgresql", "sqlite"):
            return
        model = state.apps.get_model(app_label, self.model_name)
        column = model._meta.get_field(self.field_name).column
        table = model._meta.db_table
        name = schema_editor._create_index_name(table, [column], suffix="")
        concurrently = "CONCURRENTLY " if vendor == "postgresql" else ""
        quote = schema_editor.quote_name
        if drop:
            schema_editor.execute(f"DROP INDEX {concurrently}IF EXISTS {quote(name)}")
        else:
            schema_editor.execute(
                f"CREATE INDEX {concurrently}IF NOT EXISTS {quote(name)} ON {quote(table)} "
                f"({quote(column)})"
            )

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._execute(app_label, schema_editor, from_state, drop=True)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        self._execute(app_label, schema_editor, to_state, drop=False)

    def describe(self) -> str:
        return f"Drop the index of {self.model_name}.{self.field_name} (covered by another)"
