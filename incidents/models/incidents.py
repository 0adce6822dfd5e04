"""Where migration 0001 finds the callables it names (landed migrations are never edited).

The models themselves live in their domain folders; see ``incidents.models``.
"""

from incidents.lifecycle.models import _default_priority_map, _default_urgency_map

__all__ = ["_default_priority_map", "_default_urgency_map"]
