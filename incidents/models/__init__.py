"""Incident models live in their domain folders; Django finds them all through this module.

Code may import a model from here or from its domain's ``models`` module. One app label
(``incidents``) keeps one migration history and every table where it was.
"""

from incidents.escalation.models import *  # noqa: F403
from incidents.lifecycle.models import *  # noqa: F403
from incidents.notifications.models import *  # noqa: F403
from incidents.oncall.models import *  # noqa: F403
from incidents.postmortems.models import *  # noqa: F403
from incidents.slas.models import *  # noqa: F403
from incidents.statuspages.models import *  # noqa: F403
