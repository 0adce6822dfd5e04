"""Review of the SLOs (#12): OpenSLO documents of the wrong shape are field errors, not 500s;
a change made from a stale copy keeps the alerts that fire (else they never resolve)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitoring.models import Alert, ServiceLevelObjective
from monitoring.slos import services
from monitoring.slos.evaluation import evaluate
from tests.monitoring.test_slo_alerts import BASELINE, MINUTE, T0, firing_at
from tests.monitoring.test_slo_support import DOWN, UP, check, make_slo, runs, service, target

__all__ = ["check", "service", "target"]  # fixtures

HEAD = "apiVersion: openslo/v1\nkind: SLO\n"
SHAPES = {
    "metadata": HEAD + "metadata: [1]\nspec: {}\n",
    "spec": HEAD + "metadata: {name: x}\nspec: [1]\n",
    "metadata.annotations": HEAD + "metadata: {name: x, annotations: [1]}\nspec: {}\n",
    "spec.timeWindow": HEAD
    + "metadata: {name: x}\nspec: {timeWindow: [{duration: [7d], isRolling: true}]}\n",
    "spec.objectives.0.timeSliceWindow": HEAD
    + "metadata: {name: x}\nspec: {budgetingMethod: Timeslices, "
    + "objectives: [{target: 0.99, timeSliceWindow: '\u00b2m'}]}\n",
}


@pytest.mark.parametrize("field", sorted(SHAPES))
def test_an_openslo_document_of_the_wrong_shape_is_a_400(crew, api, service, field):
    response = api(crew.manager).post(
        "/api/v1/slos/import/",
        {"team": crew.team.slug, "service": service.pk, "yaml": SHAPES[field]},
        format="json",
    )
    assert response.status_code == 400, response.content
    fields = response.json()["error"]["fields"]
    assert f"documents.0.{field}" in fields
    assert not ServiceLevelObjective.objects.exists()


def test_a_change_from_a_stale_copy_keeps_the_firing_alerts_known(service, check):
    runs(check, T0 - BASELINE, [(BASELINE // MINUTE, UP), (1, DOWN), (30, UP)])
    slo = make_slo(service, objective="99.9", window="rolling_30d")
    stale = ServiceLevelObjective.objects.get(pk=slo.pk)  # e.g. the admin's or API's copy
    assert firing_at(slo, 1) == ["1h/5m"]
    services.update_slo(stale, name="Checkout availability (web)")
    fresh = ServiceLevelObjective.objects.get(pk=slo.pk)
    assert fresh.alerted == ["1h/5m"]
    assert evaluate(fresh, T0 + 6 * MINUTE + timedelta(seconds=5)).firing == []
    assert Alert.objects.get(service=service).status == "resolved"


def test_time_slices_longer_than_the_short_window_still_page(service, check):
    # Ten-minute slices: a five-minute lookback holds no whole slice, so it must read the last
    # whole slice instead, or the page pairs could never fire.
    runs(check, T0 - BASELINE, [(BASELINE // MINUTE, UP), (10, DOWN), (40, UP)])
    slo = make_slo(
        service,
        objective="99.9",
        window="rolling_30d",
        budgeting="timeslices",
        timeslice_minutes=10,
    )
    # T0 is 03:17; down 03:17-03:27. At 03:29 the last whole slice (03:10-03:20) is bad.
    assert "1h/5m" in firing_at(slo, 12)
    # 03:30-03:40 is the first whole slice without a down minute: the page resolves then.
    assert "1h/5m" in firing_at(slo, 22)
    assert "1h/5m" not in firing_at(slo, 23)


def test_the_current_burn_rate_of_hour_long_time_slices_is_not_always_zero(service, check):
    from monitoring.slos.budget import figures

    runs(check, T0 - BASELINE, [(BASELINE // MINUTE, UP), (60, DOWN), (60, UP)])
    slo = make_slo(
        service,
        objective="99.9",
        window="rolling_30d",
        budgeting="timeslices",
        timeslice_minutes=60,
    )
    # T0 is 03:17, down to 04:17: at 05:30 the last whole hour (04:00-05:00) was bad.
    found = figures(slo, T0 + timedelta(hours=2, minutes=13))
    assert found.burn_rate == pytest.approx(1 / 0.001)
    assert found.time_to_exhaustion is not None
