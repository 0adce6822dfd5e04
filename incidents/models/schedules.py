"""Where migration 0001 finds the validator it names (landed migrations are never edited).

The models themselves live in their domain folders; see ``incidents.models``.
"""

from incidents.oncall.models import validate_time_zone

__all__ = ["validate_time_zone"]
