"""Django's SQLite backend, told how many query parameters today's SQLite accepts.

Django 5.2 assumes SQLite's pre-3.32 limit of 999 bound parameters and splits every bulk
INSERT at that: a batch of 100 alerts (26 columns each) became three INSERT statements, 1,000
events (10 columns) eleven. SQLite 3.32+ accepts 32,766 by default (Debian's build allows more);
we use the smaller of that and what the library reports, so a batch stays one statement.
"""

from __future__ import annotations

import sqlite3

from django.db.backends.sqlite3 import base
from django.db.backends.sqlite3.features import DatabaseFeatures as SQLiteFeatures


def _parameter_limit() -> int:
    try:
        connection = sqlite3.connect(":memory:")
        try:
            return min(connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 32766)
        finally:
            connection.close()
    except (AttributeError, sqlite3.Error):  # getlimit is Python 3.11+
        return SQLiteFeatures.max_query_params


class DatabaseFeatures(SQLiteFeatures):
    max_query_params = _parameter_limit()


class DatabaseWrapper(base.DatabaseWrapper):
    features_class = DatabaseFeatures
