"""What keeps a firing alert from paging: silences, inhibition rules, maintenance windows.

- ``evaluate``: is this alert muted now (``find_suppression``), and re-checking a team's firing
  alerts when silences, rules, windows or inhibiting alerts change (``reevaluate_team``, and the
  periodic ``reevaluate_suppressions``);
- ``silences``, ``inhibition``, ``maintenance``: the one way to create and change each (API,
  admin, UI): validate, write and record an event in the same transaction, then re-evaluate.
"""

from monitoring.matchers import format_matchers
from monitoring.suppression.evaluate import (
    BatchSuppressor,
    Found,
    batch_suppressor,
    find_suppression,
    reevaluate_suppressions,
    reevaluate_team,
)
from monitoring.suppression.inhibition import (
    clean_equal_labels,
    create_inhibition_rule,
    delete_inhibition_rule,
    update_inhibition_rule,
)
from monitoring.suppression.maintenance import (
    create_maintenance_window,
    delete_maintenance_window,
    parse_duration,
    time_zone_names,
    update_maintenance_window,
)
from monitoring.suppression.silences import (
    create_silence,
    expire_silence,
    preview_silence,
    silence_alert,
)

__all__ = [
    "BatchSuppressor",
    "Found",
    "batch_suppressor",
    "clean_equal_labels",
    "create_inhibition_rule",
    "create_maintenance_window",
    "create_silence",
    "delete_inhibition_rule",
    "delete_maintenance_window",
    "expire_silence",
    "find_suppression",
    "format_matchers",
    "parse_duration",
    "preview_silence",
    "reevaluate_suppressions",
    "reevaluate_team",
    "silence_alert",
    "time_zone_names",
    "update_inhibition_rule",
    "update_maintenance_window",
]
