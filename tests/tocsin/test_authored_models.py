"""The abstract authored/timestamped bases: the columns come from one place, without migrations."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import models

from incidents.models import ResponseTarget
from monitoring.models import InhibitionRule
from tests.conftest import make_user
from tocsin.models import Authored, Timestamped


def test_the_bases_are_abstract() -> None:
    assert Authored._meta.abstract and Timestamped._meta.abstract


@pytest.mark.parametrize(
    ("model", "columns"),
    [
        (InhibitionRule, {"created_at", "updated_at", "created_by"}),
        (ResponseTarget, {"created_at", "updated_at"}),
    ],
)
def test_models_built_on_them_get_the_columns(model: Any, columns: set[str]) -> None:
    own = {field.name for field in model._meta.concrete_fields}
    assert columns <= own
    for name in columns:
        assert not model._meta.get_field(name).editable  # never typed into a form


def test_the_author_is_kept_out_of_the_row_when_the_account_goes(crew: Any) -> None:
    author = make_user("author")
    rule = InhibitionRule.objects.create(
        team=crew.team, name="DB down mutes API errors", created_by=author
    )
    author.delete()
    rule.refresh_from_db()
    assert rule.created_by is None
    field = InhibitionRule._meta.get_field("created_by")
    assert field.remote_field.on_delete is models.SET_NULL


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    """Moving columns into the bases must not ask for a migration (no churn)."""
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()
