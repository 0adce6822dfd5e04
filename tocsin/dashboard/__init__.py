"""The operations dashboard: a registry of tiles the apps fill in from their ``AppConfig.ready``.

tocsin may not import monitoring, incidents, probes or backups, so each app registers its own
tiles here (``register(Tile(...))`` in its ``dashboard.py``) and the view in
``tocsin.dashboard.views`` renders whatever is registered, scoped to the user's teams.
"""

from tocsin.dashboard.registry import Tile, get, in_teams, register, setup, tiles

__all__ = ["Tile", "get", "in_teams", "register", "setup", "tiles"]
