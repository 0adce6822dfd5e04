"""OpenSLO (``apiVersion: openslo/v1``, ``kind: SLO`` with an inline indicator) in and out.

Export writes each SLO as one YAML document: metric ratios as ``ratioMetric`` (good and total
queries in Prometheus notation, ``counter`` when they are counters), probe latency as
``thresholdMetric``, the others as ``ratioMetric`` over Tocsin's own source. The Tocsin kind
and its settings travel in annotations (``tocsin.io/indicator``, ``tocsin.io/config``), so an
export imports back unchanged; a document written elsewhere needs them only where the
indicator cannot be read from the spec (probes and incidents are Tocsin's own).

Import validates every document and reports errors by document and OpenSLO field
(``documents.0.spec.objectives``), creating or updating nothing unless all of them hold. An
SLO is matched by its service and ``metadata.name`` (our slug): found, it is updated. Names,
descriptions and our annotations must be strings; targets have at most 4 decimal places in
percent (as stored); YAML anchors and aliases are refused, and so is more than 256 KB.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from django.db import transaction

from monitoring.models import Service, ServiceLevelObjective
from monitoring.slos import registry, services
from monitoring.slos.windows import Budgeting, Window

ANNOTATION_KIND = "tocsin.io/indicator"
ANNOTATION_CONFIG = "tocsin.io/config"
SOURCE_TYPE = "tocsin"
DURATIONS = {
    Window.ROLLING_7D: ("7d", True),
    Window.ROLLING_28D: ("28d", True),
    Window.ROLLING_30D: ("30d", True),
    Window.ROLLING_90D: ("90d", True),
    Window.CALENDAR_WEEK: ("1w", False),
    Window.CALENDAR_MONTH: ("1M", False),
    Window.CALENDAR_QUARTER: ("1Q", False),
}
WINDOWS = {value: window for window, value in DURATIONS.items()}
# The largest document the import reads (the API serializer and the admin form refuse more).
MAX_BYTES = 256 * 1024
# Percentages are stored with this many decimal places (the model's DecimalField).
PLACES = 4
# Where each of our fields lives in an OpenSLO document, for error messages.
PATHS = {
    "name": "metadata.displayName",
    "slug": "metadata.name",
    "description": "spec.description",
    "sli_kind": f"metadata.annotations.{ANNOTATION_KIND}",
    "sli_config": "spec.indicator",
    "objective": "spec.objectives.0.target",
    "window": "spec.timeWindow",
    "time_zone": "spec.timeWindow.0.calendar.timeZone",
    "budgeting": "spec.budgetingMethod",
    "timeslice_target": "spec.objectives.0.timeSliceTarget",
    "timeslice_minutes": "spec.objectives.0.timeSliceWindow",
    "service": "spec.service",
}


# --- export -------------------------------------------------------------------------------------


def _share(percent: Decimal) -> float:
    return float(Decimal(percent) / 100)


def document(slo: ServiceLevelObjective) -> dict[str, Any]:
    indicator = slo.indicator
    config = slo.sli_config or {}
    source = {"type": SOURCE_TYPE, "spec": {"indicator": slo.sli_kind, **config}}
    if slo.sli_kind == "metric_ratio":
        counter = _is_counter(slo)
        metric: dict[str, Any] = {
            "ratioMetric": {
                "counter": counter,
                "good": {"metricSource": {"type": SOURCE_TYPE, "spec": {"query": config["good"]}}},
                "total": {
                    "metricSource": {"type": SOURCE_TYPE, "spec": {"query": config["total"]}}
                },
            }
        }
    elif indicator is not None and indicator.openslo_shape == "thresholdMetric":
        metric = {"thresholdMetric": {"metricSource": source}}
    else:
        metric = {"ratioMetric": {"counter": False, "raw": {"metricSource": source}}}
    duration, rolling = DURATIONS[Window(slo.window)]
    window: dict[str, Any] = {"duration": duration, "isRolling": rolling}
    if not rolling:
        window["calendar"] = {"startTime": "2020-01-06 00:00:00", "timeZone": slo.time_zone}
    objective: dict[str, Any] = {"displayName": slo.name, "target": _share(slo.objective)}
    if slo.budgeting == Budgeting.TIMESLICES:
        objective["timeSliceTarget"] = slo.slice_target
        objective["timeSliceWindow"] = f"{slo.timeslice_minutes}m"
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {
            "name": slo.slug,
            "displayName": slo.name,
            "annotations": {
                ANNOTATION_KIND: slo.sli_kind,
                ANNOTATION_CONFIG: json.dumps(config, sort_keys=True),
                "tocsin.io/alerting": "true" if slo.alerting else "false",
            },
        },
        "spec": {
            "description": slo.description,
            "service": slo.service.slug,
            "indicator": {"metadata": {"name": f"{slo.slug}-sli"}, "spec": metric},
            "timeWindow": [window],
            "budgetingMethod": "Timeslices"
            if slo.budgeting == Budgeting.TIMESLICES
            else "Occurrences",
            "objectives": [objective],
        },
    }


def _is_counter(slo: ServiceLevelObjective) -> bool:
    from monitoring.models import MetricKind, MetricSeries

    try:
        name = slo.config(validate=False).total.metric
    except registry.ConfigError:
        return False
    return MetricSeries.objects.filter(
        team_id=slo.team_id, name=name, kind=MetricKind.COUNTER
    ).exists()


def export(slos: list[ServiceLevelObjective]) -> str:
    return yaml.safe_dump_all([document(slo) for slo in slos], sort_keys=False, allow_unicode=True)


# --- import -------------------------------------------------------------------------------------


class ImportFailed(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class Parsed:
    service: Service | None
    fields: dict[str, Any] = field(default_factory=dict)


def _get(data: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and len(data) > key else None
        else:
            data = data.get(key) if isinstance(data, dict) else None
    return data


def _minutes(text: Any) -> int | None:
    if not isinstance(text, str) or not text.isascii():
        return None
    if text.endswith("m") and text[:-1].isdecimal():
        return int(text[:-1])
    if text.endswith("h") and text[:-1].isdecimal():
        return 60 * int(text[:-1])
    return None


def _percent(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        share = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return (share * 100).normalize() if share.is_finite() else None


def percent_error(value: Decimal | None) -> str | None:
    """Why a percentage cannot be stored as it is read, or None: the column keeps ``PLACES``
    decimals, so 99.999999 would be saved as 100.0000 (no error budget: every page and the
    evaluation would divide by zero). The same rule as the API serializer and the admin form
    (``max_digits=7, decimal_places=4``); with at most 4 decimals nothing is rounded, so the
    range (above 0, below 100) is then the model's ``problems()`` to check, as for them."""
    if value is None or not value.is_finite():
        return "a share between 0 and 1, e.g. 0.999"
    exponent = value.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PLACES:
        return f"at most {PLACES} decimal places in percent (e.g. 0.999999 is 99.9999 %)"
    return None


def parse_document(doc: Any, team_services: dict[str, Service], service: Service | None) -> Parsed:
    """Our fields from one document; ``ImportFailed`` with errors by OpenSLO field."""
    errors: dict[str, str] = {}
    if not isinstance(doc, dict):
        raise ImportFailed({"": "a document is a mapping (apiVersion, kind, metadata, spec)"})
    if doc.get("apiVersion") != "openslo/v1":
        errors["apiVersion"] = 'must be "openslo/v1"'
    if doc.get("kind") != "SLO":
        errors["kind"] = 'must be "SLO" (with an inline indicator)'
    meta, spec = doc.get("metadata") or {}, doc.get("spec") or {}
    annotations = _get(meta, "annotations") or {}
    for name, part in (("metadata", meta), ("spec", spec), ("metadata.annotations", annotations)):
        if not isinstance(part, dict):
            raise ImportFailed({name: "must be a mapping"})
    texts = {
        "metadata.name": meta.get("name"),
        "metadata.displayName": meta.get("displayName"),
        "spec.description": spec.get("description"),
        f"metadata.annotations.{ANNOTATION_KIND}": annotations.get(ANNOTATION_KIND),
        f"metadata.annotations.{ANNOTATION_CONFIG}": annotations.get(ANNOTATION_CONFIG),
    }
    wrong = {
        path: "must be a string"
        + (" (the indicator's settings as JSON)" if path.endswith(ANNOTATION_CONFIG) else "")
        for path, value in texts.items()
        if value is not None and not isinstance(value, str)
    }
    if wrong:
        raise ImportFailed(errors | wrong)
    fields: dict[str, Any] = {
        "slug": meta.get("name") or "",
        "name": meta.get("displayName") or meta.get("name") or "",
        "description": spec.get("description") or "",
    }
    if service is None:
        service = team_services.get(str(spec.get("service") or ""))
        if service is None:
            errors["spec.service"] = "the slug of one of the team's services"
    # The indicator: our annotations first, else what the spec says.
    kind = annotations.get(ANNOTATION_KIND)
    config: Any = {}
    if annotations.get(ANNOTATION_CONFIG):
        try:
            config = json.loads(annotations[ANNOTATION_CONFIG])
        except ValueError:
            errors[f"metadata.annotations.{ANNOTATION_CONFIG}"] = "not valid JSON"
        else:
            if not isinstance(config, dict):
                errors[f"metadata.annotations.{ANNOTATION_CONFIG}"] = "a JSON object"
                config = {}
    ratio = _get(spec, "indicator", "spec", "ratioMetric")
    if kind is None and isinstance(ratio, dict) and "good" in ratio and "total" in ratio:
        kind = "metric_ratio"
        config = {
            "good": _get(ratio, "good", "metricSource", "spec", "query"),
            "total": _get(ratio, "total", "metricSource", "spec", "query"),
        }
    if kind is None:
        source = _get(spec, "indicator", "spec", "thresholdMetric", "metricSource", "spec") or _get(
            ratio, "raw", "metricSource", "spec"
        )
        if isinstance(source, dict) and isinstance(source.get("indicator"), str):
            kind = source["indicator"] or None
            config = {k: v for k, v in source.items() if k != "indicator"}
    if kind is None:
        errors["spec.indicator"] = (
            "a ratioMetric with good and total queries, or a Tocsin indicator "
            f"({ANNOTATION_KIND} annotation)"
        )
    fields["sli_kind"], fields["sli_config"] = kind or "", config
    windows = spec.get("timeWindow")
    window = windows[0] if isinstance(windows, list) and windows else None
    key = (str(_get(window, "duration")), bool(_get(window, "isRolling")))
    if key not in WINDOWS:
        errors["spec.timeWindow"] = (
            "one window: 7d, 28d, 30d or 90d rolling, or 1w, 1M or 1Q calendar"
        )
    else:
        fields["window"] = WINDOWS[key].value
        fields["time_zone"] = str(_get(window, "calendar", "timeZone") or "UTC")
    method = spec.get("budgetingMethod")
    if method not in ("Occurrences", "Timeslices"):
        errors["spec.budgetingMethod"] = "Occurrences or Timeslices"
    else:
        fields["budgeting"] = method.lower()
    objectives = spec.get("objectives")
    objective = objectives[0] if isinstance(objectives, list) and len(objectives) == 1 else None
    if not isinstance(objective, dict):
        errors["spec.objectives"] = "exactly one objective"
    else:
        target = _percent(objective.get("target"))
        problem = percent_error(target)
        if problem:
            errors["spec.objectives.0.target"] = problem
        fields["objective"] = target
        if method == "Timeslices":
            slice_target = _percent(objective.get("timeSliceTarget", 1))
            problem = percent_error(slice_target)
            if problem:
                errors["spec.objectives.0.timeSliceTarget"] = problem
            fields["timeslice_target"] = slice_target
            minutes = _minutes(objective.get("timeSliceWindow", "1m"))
            if minutes is None:
                errors["spec.objectives.0.timeSliceWindow"] = "minutes, e.g. 1m or 5m"
            fields["timeslice_minutes"] = minutes or 1
    alerting = annotations.get("tocsin.io/alerting")
    if alerting is not None:
        fields["alerting"] = str(alerting).lower() != "false"
    if errors:
        raise ImportFailed(errors)
    return Parsed(service, fields)


def _check(parsed: Parsed) -> dict[str, str]:
    """The model's own invariants, reported under the OpenSLO fields."""
    slo = ServiceLevelObjective(service=parsed.service, **parsed.fields)
    errors = {}
    for name, message in slo.problems().items():
        top, _, rest = name.partition(".")
        errors[PATHS.get(top, top) + (f".{rest}" if rest else "")] = message
    return errors


class AliasRefused(yaml.YAMLError):
    pass


class NoAliasLoader(yaml.SafeLoader):
    """``SafeLoader`` refusing anchors and aliases: a few lines of them expand to gigabytes
    ("billion laughs") when the values are read or turned into strings."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise AliasRefused("aliases are not accepted")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise AliasRefused("anchors are not accepted")
        return super().compose_node(parent, index)


def import_documents(
    text: str, team: Any, *, service: Service | None = None, actor: Any = None
) -> list[ServiceLevelObjective]:
    """Create or update the SLOs of every document, or none (``ImportFailed``)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise ImportFailed({"yaml": f"at most {MAX_BYTES // 1024} KB"})
    try:
        docs = [d for d in yaml.load_all(text, Loader=NoAliasLoader) if d is not None]
    except AliasRefused:
        raise ImportFailed(
            {"yaml": "anchors and aliases (&name, *name) are not accepted"}
        ) from None
    except yaml.YAMLError as exc:
        raise ImportFailed({"yaml": f"not valid YAML: {exc}"}) from None
    if not docs:
        raise ImportFailed({"yaml": "no document"})
    team_services = {s.slug: s for s in Service.objects.filter(team=team)}
    errors: dict[str, str] = {}
    parsed: list[Parsed] = []
    for index, doc in enumerate(docs):
        try:
            one = parse_document(doc, team_services, service)
            problems = _check(one)
        except ImportFailed as exc:
            problems = exc.errors
        errors.update({f"documents.{index}.{k}".rstrip("."): v for k, v in problems.items()})
        if not problems:
            parsed.append(one)
    if errors:
        raise ImportFailed(errors)
    saved = []
    with transaction.atomic():
        for one in parsed:
            existing = ServiceLevelObjective.objects.filter(
                service=one.service, slug=one.fields["slug"] or None
            ).first()
            if existing is not None:
                saved.append(services.update_slo(existing, actor=actor, **one.fields))
            else:
                saved.append(services.create_slo(one.service, actor=actor, **one.fields))
    return saved
