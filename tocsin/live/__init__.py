"""Live relay: every web process tails the event log and pushes new events to subscribed browsers.

Why tail the database rather than publish through the channel layer? The event log is the truth
and already ordered: tailing it works the same in the embedded default (web and worker are separate
processes with no shared broker) and with Redis and many web processes, and a browser that
reconnects replays from the same table, so nothing is ever delivered that was not committed, and
nothing committed is missed.
"""
