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
