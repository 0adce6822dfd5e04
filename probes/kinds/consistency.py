"""Consistency checks: the same number from two places must agree, within a tolerance.

Each source is a read-only SQL query (its first value, as the SQL kind runs it) or an HTTP
request and a JSON path into its body (the HTTP kind's ``request``, the condition language's
``json_path``): row counts in a primary store and its sync target, an API's total against the
ledger. Both run at once. [VALUE] is the difference: absolute (|a - b|) or, with
``tolerance_mode: "relative"``, in percent of the larger magnitude; the default condition is
``[VALUE] <= tolerance``. Details keep both values and the signed difference. If either side
cannot be read, the run is unreached and the error names the side and why.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from probes.conditions import ConditionError, PathNotFound, compile_path, json_path
from probes.kinds import http, sql
from probes.kinds._support import Fields, elapsed_ms
from probes.kinds.base import InvalidConfig, Observation

KIND = "consistency"
LABEL = "Consistency (two sources)"
PLACEHOLDERS = ("VALUE", "RESPONSE_TIME")
DEFAULT_CONDITIONS = ["[VALUE] == 0"]

SIDES = ("a", "b")
SOURCE_KINDS = ("sql", "http")
TOLERANCE_MODES = ("absolute", "relative")


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field (``a.dsn``, …)."""
    f = Fields(config)
    for side in SIDES:
        source = f.config.get(side)
        if not isinstance(source, dict):
            f.error(side, 'must be a source: {"kind": "sql", …} or {"kind": "http", …}')
            continue
        try:
            f.clean[side] = _validate_source(source)
        except InvalidConfig as exc:
            for name, message in exc.fields.items():
                f.error(f"{side}.{name}", message)
    f.number("tolerance", 0, minimum=0)
    f.choice("tolerance_mode", TOLERANCE_MODES, "absolute")
    return f.done()


def _validate_source(source: dict[str, Any]) -> dict[str, Any]:
    kind = source.get("kind")
    if kind == "sql":
        return {"kind": "sql", **sql.validate({k: v for k, v in source.items() if k != "kind"})}
    if kind != "http":
        raise InvalidConfig({"kind": "must be sql or http"})
    errors: dict[str, str] = {}
    rest = {k: v for k, v in source.items() if k not in ("kind", "json_path")}
    clean: dict[str, Any] = {}
    try:
        clean = http.validate(rest)
    except InvalidConfig as exc:
        errors.update(exc.fields)
    path = source.get("json_path")
    if not isinstance(path, str) or not path.strip():
        errors["json_path"] = "is required (the number's place in the JSON body, e.g. data.count)"
    else:
        try:
            compile_path(path.strip())
        except ConditionError as exc:
            errors["json_path"] = f"{exc.message} at position {exc.position}"
    if errors:
        raise InvalidConfig(errors)
    return {"kind": "http", **clean, "json_path": path.strip()}


def default_conditions(config: dict[str, Any]) -> list[str]:
    return [f"[VALUE] <= {config.get('tolerance', 0):g}"]


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    started = time.perf_counter()
    results = await asyncio.gather(*(_read(config[side], timeout) for side in SIDES))
    took = elapsed_ms(started)
    details: dict[str, Any] = {}
    errors = []
    for side, (value, error) in zip(SIDES, results, strict=True):
        details[side] = value
        if error:
            errors.append(f"{side} ({config[side]['kind']}): {error}")
    values: dict[str, Any] = {"RESPONSE_TIME": took}
    if errors:
        details["errors"] = errors
        return Observation(False, "; ".join(errors), values, {"total": took}, details=details)
    a, b = details["a"], details["b"]
    difference = a - b
    larger = max(abs(a), abs(b))
    relative = abs(difference) / larger * 100 if larger else 0.0
    mode = config.get("tolerance_mode", "absolute")
    tolerance = config.get("tolerance", 0)
    value = round(relative, 6) if mode == "relative" else abs(difference)
    values["VALUE"] = value
    details.update(
        difference=difference,
        relative_percent=round(relative, 6),
        tolerance=tolerance,
        tolerance_mode=mode,
        within_tolerance=value <= tolerance,
    )
    summary = f"a={a:g} b={b:g} difference={difference:g}"
    return Observation(True, "", values, {"total": took}, summary, details)


async def _read(source: dict[str, Any], timeout: float) -> tuple[Any, str]:
    """(the source's number, "") or (what it gave if anything, why it cannot be used)."""
    if source["kind"] == "sql":
        result = await sql.run_query(source["dsn"], source["query"], timeout)
        if result.error:
            return None, result.error
        raw = result.value
    else:
        seen = await http.request(
            source.get("method", "GET"),
            source["url"],
            headers=source.get("headers") or {},
            body=source.get("body", ""),
            options=http.HttpOptions.from_config(source),
            timeout=timeout,
        )
        if not seen.reached:
            return None, seen.error
        status = seen.values["STATUS"]
        if not 200 <= status < 300:
            return None, f"HTTP {status} from {source['url']}"
        try:
            raw = json_path(seen.values["BODY"], source["json_path"])
        except PathNotFound as exc:
            return None, str(exc)
    number = _number(raw)
    if number is None:
        return raw, f"{raw!r} is not a number"
    return number, ""


def _number(raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            try:
                return float(raw)
            except ValueError:
                return None
    return None
