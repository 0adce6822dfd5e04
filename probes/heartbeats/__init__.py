"""Heartbeats: jobs that check in by pinging a URL, Healthchecks.io-compatible.

- ``models``: Heartbeat (schedule, limits, denormalised state and transitions), Ping, PingKey
- ``schedule``: period and cron (time zone aware, DST-correct) expectations
- ``services``: record a ping (the hot path), pause, resume, snooze, ping keys, pruning
- ``alerts``: problems → monitoring pipeline (raise/resolve), the only place that talks to it
- ``evaluation``: the due-work loop's claim-and-evaluate of heartbeats past their deadline
- ``views``/``urls``: the ping endpoints; ``admin``: the Django admin
"""
