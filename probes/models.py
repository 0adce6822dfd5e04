"""The probes app's models, one module per area; imported here so Django finds them."""

from probes.checks.models import Check, RecentMinute, Result, Rollup, Slot  # noqa: F401
from probes.heartbeats.models import Heartbeat, Ping, PingKey  # noqa: F401
