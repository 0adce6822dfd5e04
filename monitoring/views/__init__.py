"""Pages for alerts and the service catalog: thin views over ``monitoring.services``.

Same rules as ``tocsin.views``: someone who may not view a team gets 404 for everything under
it, a member whose role is too low gets 403, and every check happens here whatever the
templates show.

- ``alerts``: the Alerts page and the one-click silence;
- ``catalog``: services, a service's page, integrations;
- ``common``: helpers shared with incidents' pages (``since_text``, ``team_and_service_filter``).
"""

from monitoring.views.common import since_text, team_and_service_filter

__all__ = ["since_text", "team_and_service_filter"]
