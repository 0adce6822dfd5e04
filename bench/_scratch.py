"""What every benchmark starts with: Django on a scratch database of its own.

SQLite in a fresh temporary folder by default; set DATABASE_URL to measure PostgreSQL (use a
database you can throw away). Import this before anything from Django or Tocsin.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))

sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{SCRATCH / 'bench.sqlite3'}")
os.environ["TOCSIN_VAR_DIR"] = str(SCRATCH)
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tocsin.settings")

import django  # noqa: E402

django.setup()
