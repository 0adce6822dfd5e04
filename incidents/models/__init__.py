"""Incident models, one module per concern; import them from here."""

from incidents.models.escalation import *  # noqa: F403
from incidents.models.incidents import *  # noqa: F403
from incidents.models.notifications import *  # noqa: F403
from incidents.models.postmortems import *  # noqa: F403
from incidents.models.schedules import *  # noqa: F403
from incidents.models.slas import *  # noqa: F403
