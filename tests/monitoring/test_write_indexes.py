"""The tables every new alert writes carry no index that another already covers.

A new alert writes an alert row, two events and an incident link; each index on those tables is
one more write per alert. Django gives every foreign key an index of its own, and these four
were covered by an index (or unique constraint) beginning with the same column, so their
migrations drop them. Each foreign key still leads some index, for the lookups and the
PROTECT/CASCADE checks that go through it.
"""

from __future__ import annotations

import pytest
from django.db import connection

from incidents.models import IncidentAlert
from monitoring.models import Alert
from tocsin.models import Event

COVERED = [(Alert, "team"), (Alert, "service"), (IncidentAlert, "alert"), (Event, "team")]


def first_columns(model) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {name: c["columns"] for name, c in constraints.items() if c["index"] or c["unique"]}


@pytest.mark.django_db
@pytest.mark.parametrize(("model", "field_name"), COVERED, ids=lambda v: getattr(v, "__name__", v))
def test_a_covered_foreign_key_has_no_index_of_its_own_but_still_leads_one(model, field_name):
    column = model._meta.get_field(field_name).column
    indexes = first_columns(model)
    leading = [name for name, columns in indexes.items() if columns and columns[0] == column]
    if connection.vendor == "mysql":
        assert leading  # InnoDB keeps one per foreign key; Django makes none of its own there
        return
    own = connection.schema_editor()._create_index_name(model._meta.db_table, [column], suffix="")
    assert own not in indexes, f"{own} should have been dropped"
    assert leading, f"{model.__name__}.{field_name}: no index begins with {column}"
