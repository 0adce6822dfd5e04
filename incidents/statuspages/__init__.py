"""Public status pages: components mapped to services and probe checks, public incidents with
their updates, scheduled maintenance, subscribers, feeds, badges and a Statuspage-shaped JSON.

Nothing internal reaches a public response unless someone wrote it for the public: a component's
name and description, a public incident's title and updates, a maintenance notice. Statuses and
uptime are derived (from incidents, probes and maintenance windows) but never quote them.
"""
