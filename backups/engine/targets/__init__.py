"""What each kind of target becomes as streams in a snapshot, and how it comes back.

One module per kind (``sqlite``, ``postgresql``, ``mysql``, ``directory``), each a class with
the same three methods: ``backup(repository, stats, progress)`` returns the streams and the
manifest metadata (tables with row counts, sizes, tool versions); ``restore(repository,
snapshot)`` brings a snapshot back into the target; ``inventory()`` reads what the target holds
now, in the manifest's terms, so a restore drill can compare the two.
"""

from __future__ import annotations

from backups.engine.targets.base import Inventory, Progress, Target, TargetError
from backups.engine.targets.directory import DirectoryTarget
from backups.engine.targets.mysql import MySQLTarget
from backups.engine.targets.postgresql import PostgreSQLTarget
from backups.engine.targets.sqlite import SQLiteTarget

__all__ = [
    "DirectoryTarget",
    "Inventory",
    "MySQLTarget",
    "PostgreSQLTarget",
    "Progress",
    "SQLiteTarget",
    "Target",
    "TargetError",
    "compare",
]


def compare(expected: Inventory, actual: Inventory) -> list[str]:
    """What differs between a manifest's inventory and a restored target's (empty: equal)."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"{name}: missing after the restore")
        elif name not in expected:
            problems.append(f"{name}: not in the backup")
        elif expected[name] != actual[name]:
            problems.append(f"{name}: backup {expected[name]}, restored {actual[name]}")
    return problems
