"""Database health: collectors for PostgreSQL, MySQL/MariaDB and Redis, the collection loop,
and ready-made rule packs (see ``monitoring.models.databases``)."""
