"""Incidents admin: each domain registers its own ModelAdmins; importing them registers them."""

from incidents.escalation import admin as escalation_admin  # noqa: F401
from incidents.lifecycle import admin as lifecycle_admin  # noqa: F401
from incidents.notifications import admin as notifications_admin  # noqa: F401
from incidents.oncall import admin as oncall_admin  # noqa: F401
from incidents.postmortems import admin as postmortems_admin  # noqa: F401
from incidents.slas import admin as slas_admin  # noqa: F401
from incidents.statuspages import admin as statuspages_admin  # noqa: F401
