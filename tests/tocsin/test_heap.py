"""tocsin.heap: a server process freezes what it loaded at start-up, out of the collector's way."""

from __future__ import annotations

import subprocess
import sys

from django.conf import settings


def frozen_after(statement: str) -> int:
    script = f"import gc, django, os; {statement}; print(gc.get_freeze_count())"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(done.stdout.split()[-1])


def test_the_web_entry_point_freezes_everything_it_loaded():
    # tocsin.asgi is what every web process imports; the views come with the URL configuration.
    frozen = frozen_after("import tocsin.asgi")
    assert frozen > 100_000  # Django, every app and view module: hundreds of thousands


def test_a_plain_django_setup_freezes_nothing():
    frozen = frozen_after(
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tocsin.settings'); django.setup()"
    )
    assert frozen == 0
