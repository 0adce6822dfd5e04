"""Heartbeats: jobs that check in by pinging a URL, Healthchecks.io-compatible.

- ``models``: Heartbeat (schedule, limits, denormalised state and transitions)
- ``pings``: Ping (the log of requests) and PingKey (a service's key for slug URLs)
- ``choices``: statuses, problems (one alert each), ping kinds, limits
- ``schedule``: period and cron (time zone aware, DST-correct) expectations
- ``services``: record a ping (the hot path), pause, resume, snooze, ping keys, pruning
- ``alerts``: problems → monitoring pipeline (raise/resolve), the only place that talks to it
- ``evaluation``: the due-work loop's claim-and-evaluate of heartbeats past their deadline
- ``views``/``urls``: the ping endpoints; ``admin``: the Django admin
"""
