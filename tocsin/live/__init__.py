"""Live relay: new events pushed to subscribed browsers over WebSockets.

The event log is the truth and already ordered. Each web process runs one relay (``hub``) that
reads new events from the log and fans them out to its sockets, filtered by team; a browser that
reconnects replays what it missed from the same table, so nothing is delivered that was not
committed and nothing committed is missed. With Redis, the relay reads only when a commit notice
arrives by pub/sub (``publish``: sent by whichever process committed, web or worker); without
Redis (embedded: no broker between processes) it polls the log.
"""
