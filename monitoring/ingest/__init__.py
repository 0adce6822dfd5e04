"""Ingest: where senders post alerts and changes, each in its own wire format.

- ``kinds/``: one module per integration kind (parser, URLs, setup steps, reply) and the
  registry mapping kind → module;
- ``views``: the endpoints (key lookup, body limit, rate limit, parse, pipeline, reply);
- ``urls``: the routes, derived from the kinds, plus a JSON 404 for anything else;
- ``changes``: storing change events (deploys) reported for a service;
- ``stats``: in-process counters for /metrics.

Kept light on imports: ``monitoring.models`` reads the kinds to build ``IntegrationKind``.
"""
