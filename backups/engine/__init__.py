"""The backup engine: plain Python, no models.

``storage`` (where objects live: a local folder, S3-compatible storage), ``chunking``
(content-defined chunks of a stream), ``repository`` (chunks compressed, optionally encrypted,
checksummed and deduplicated; snapshots that name them), ``retention`` (which snapshots a
``--keep-*`` policy keeps) and ``targets`` (what a database or folder becomes as streams, and
back). The Django side (plans, runs, schedules, leases, pages) calls these; nothing here imports
a model, so the engine is tested on its own against real files, databases and S3.
"""
