"""Journeys: ordered HTTP steps that carry values forward (log in, take the token, call the API).

Each step is an HTTP request with the HTTP kind's options (``http.validate`` checks them and
``http.request`` sends it), its own conditions (default ``[STATUS] in 200..299``) and
extractions that put values into variables::

    {"steps": [
        {"name": "log in", "method": "POST", "url": "https://shop.example/login",
         "body": "{\\"user\\": \\"probe\\", \\"password\\": \\"{{password}}\\"}",
         "conditions": ["[STATUS] == 200"],
         "extract": {"token": {"from": "body", "path": "token"}}},
        {"name": "get orders", "url": "https://shop.example/api/orders",
         "headers": {"Authorization": "Bearer {{token}}"},
         "conditions": ["len([BODY].orders) > 0"]}],
     "variables": {"password": "…"}, "cookies": true}

``{{var}}`` may appear in a step's url, headers and body; a variable must come from
``variables`` or an earlier step's extraction, which ``validate`` checks at save time.
Extractions read the body by JSON path (``probes.conditions.json_path``: the same paths as
conditions), a response header by name, or the body by regex (the first group, or the whole
match; the condition language's safe regex compiler refuses patterns that backtrack
exponentially). A step's conditions see its response and ``[CONTEXT].var``, this step's
extractions included.

How a failed step fails the check. A step whose conditions (or extractions) fail stops the
journey, but its target *did* answer, so the Observation stays ``reached=True`` (unreached is
kept for "could not talk to it": refused, timed out, TLS; its error names the step). The
verdict travels as a variable: CONTEXT always holds ``journey_passed`` (a reserved name no step
may extract), and ``DEFAULT_CONDITIONS`` is ``[CONTEXT].journey_passed == true``, so the
check's result is the condition language's like every kind's, and the explanation is the
ordinary ``[CONTEXT].journey_passed (false) == true``. We chose this over a new placeholder
(the language's set is fixed and shared) and over ``reached=False`` (which would count a 401
on login as the site being unreachable). The values are the failed step's (or, on success,
the last step's) STATUS/BODY/HEADERS, so a user's own ``[STATUS] == 200`` fails too; callers
that let users replace the default conditions should keep this one (see ``default_conditions``).
RESPONSE_TIME is the total of every step that ran.

Cookies: the pooled HTTP clients keep none (one check's session must not leak into another's),
so with ``cookies: true`` (the default) the journey keeps its own jar per host: each step's
Set-Cookie values go back as a Cookie header to later steps on the same host. (A cookie set
on a redirect response is not seen: ``http.request`` reports the final response only; turn
``follow_redirects`` off on a form-login step to keep it.)

Secrets: variables whose name suggests one (token, password, secret, key, auth, session,
cookie, …) and every cookie value are masked wherever the run is shown — the excerpt, the
step details and their condition explanations, error texts — but stay real in CONTEXT so
conditions can use them.
"""

from __future__ import annotations

import json
import re
import time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from probes.conditions import (
    Condition,
    ConditionError,
    PathNotFound,
    compile_path,
    evaluate_all,
    json_path,
    parse,
)
from probes.conditions.lexer import Token
from probes.conditions.regexes import compile_regex
from probes.kinds import http
from probes.kinds._support import Fields
from probes.kinds.base import InvalidConfig, Observation, excerpt

KIND = "journey"
LABEL = "Journey (HTTP steps)"
PLACEHOLDERS = (
    "STATUS",
    "RESPONSE_TIME",
    "BODY",
    "HEADERS",
    "IP",
    "CONNECTED",
    "CERT_EXPIRY",
    "CONTEXT",
)
PASSED = "journey_passed"
DEFAULT_CONDITIONS = [f"[CONTEXT].{PASSED} == true"]
STEP_DEFAULT_CONDITIONS = ["[STATUS] in 200..299"]
MAX_STEPS = 20
SOURCES = {"body": "path", "header": "name", "regex": "pattern"}
MASK = "••••••"
# Masking a very short value would garble every text it happens to occur in.
MASK_MIN_LENGTH = 4
REGEX_SUBJECT_LIMIT = 100_000

VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TEMPLATE_RE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
SECRET_RE = re.compile(
    r"token|passw|pwd|secret|key|auth|session|sid|cookie|credential|jwt|bearer|csrf|otp", re.I
)
_STEP_KEYS = ("name", "conditions", "extract")
# a Set-Cookie list merged with ", ": split where the next cookie's name=value starts
# (never inside "Expires=Wed, 21 Oct 2026 …", where a date follows the comma)
_COOKIE_SPLIT_RE = re.compile(r",\s*(?=[^;,=\s]+=)")


# ---- validation --------------------------------------------------------------------------


def validate(config: dict[str, Any]) -> dict[str, Any]:
    """The config normalised, or InvalidConfig naming each wrong field (``steps.2.url``, …)."""
    f = Fields(config)
    f.boolean("cookies", True)
    variables = f.string_map("variables")
    for name in variables:
        if not VAR_RE.fullmatch(name) or name == PASSED:
            f.error("variables", f"{name!r} is not a usable variable name")
    steps = f.config.get("steps")
    if not isinstance(steps, list) or not steps:
        f.error("steps", "must be a list of at least one step")
    elif len(steps) > MAX_STEPS:
        f.error("steps", f"at most {MAX_STEPS} steps")
    else:
        known = set(variables)
        f.clean["steps"] = [
            _validate_step(number, step, known, f) for number, step in enumerate(steps, 1)
        ]
    return f.done()


def default_conditions(config: dict[str, Any]) -> list[str]:
    """Always the journey's own verdict; a caller adding user conditions should keep it."""
    return list(DEFAULT_CONDITIONS)


def label(number: int, name: str) -> str:
    """How messages name a step: ``step 2 "get orders"``."""
    return f'step {number} "{name}"' if name else f"step {number}"


def _validate_step(number: int, step: Any, known: set[str], f: Fields) -> dict[str, Any]:
    if not isinstance(step, dict):
        f.error(f"steps.{number}", f"step {number} must be an object")
        return {}
    name = step.get("name") or ""
    if not isinstance(name, str):
        f.error(f"steps.{number}.name", f"step {number}: name must be a string")
        name = ""
    name = name.strip()
    where = label(number, name)

    def error(field: str, message: str) -> None:
        f.error(f"steps.{number}.{field}", f"{where}: {message}")

    request = {k: v for k, v in step.items() if k not in _STEP_KEYS}
    url = request.get("url")
    if isinstance(url, str):
        request["url"] = _stand_in_url(url)
    clean: dict[str, Any] = {}
    try:
        clean = http.validate(request)
    except InvalidConfig as exc:
        for field, message in exc.fields.items():
            error(field, message)
    if isinstance(url, str):
        clean["url"] = url.strip()
    for field, text in _templates(clean):
        for var in TEMPLATE_RE.findall(text):
            if not VAR_RE.fullmatch(var):
                error(field, f"{{{{{var}}}}} is not a variable name")
            elif var not in known:
                error(
                    field,
                    f"uses {{{{{var}}}}} but no earlier step extracts it "
                    "and it is not one of the journey's variables",
                )
    clean["name"] = name
    clean["conditions"] = _validate_conditions(step.get("conditions"), error)
    clean["extract"] = _validate_extract(step.get("extract"), error)
    known.update(clean["extract"])
    return clean


def _stand_in_url(url: str) -> str:
    """The URL with ``{{var}}`` stood in for, so its shape is checked before the values exist."""
    filled = TEMPLATE_RE.sub("x", url.strip())
    # "{{base}}/api": the scheme and host come from a variable, checked when the step runs
    return "http://" + filled if url.strip().startswith("{{") else filled


def _templates(step: dict[str, Any]) -> list[tuple[str, str]]:
    found = [("url", step.get("url", "")), ("body", step.get("body", ""))]
    for header, value in (step.get("headers") or {}).items():
        found += [("headers", header), ("headers", value)]
    return found


def _validate_conditions(conditions: Any, error: Any) -> list[str]:
    if conditions is None:
        return []
    if not isinstance(conditions, list) or not all(isinstance(c, str) for c in conditions):
        error("conditions", "must be a list of condition strings")
        return []
    for index, text in enumerate(conditions, 1):
        try:
            parse(text)
        except ConditionError as exc:
            error(
                f"conditions.{index}",
                f'condition {index} "{text}": {exc.message} at position {exc.position}',
            )
    return list(conditions)


def _validate_extract(extract: Any, error: Any) -> dict[str, dict[str, str]]:
    if extract is None:
        return {}
    if not isinstance(extract, dict):
        error("extract", 'must map variable names to {"from": "body", "path": …}')
        return {}
    clean: dict[str, dict[str, str]] = {}
    for var, rule in extract.items():
        field = f"extract.{var}"
        if not isinstance(var, str) or not VAR_RE.fullmatch(var):
            error(field, f"{var!r} is not a variable name (letters, digits, _)")
            continue
        if var == PASSED:
            error(field, f"{PASSED} is reserved for the journey's own verdict")
            continue
        source = rule.get("from") if isinstance(rule, dict) else None
        if source not in SOURCES:
            error(field, 'must be {"from": "body"|"header"|"regex", "path"|"name"|"pattern": …}')
            continue
        key = SOURCES[source]
        value = rule.get(key)
        if not isinstance(value, str) or not value.strip():
            error(field, f'extracting from {source} needs "{key}"')
            continue
        problem = _check_source(source, value)
        if problem:
            error(field, problem)
            continue
        clean[var] = {"from": source, key: value if source == "regex" else value.strip()}
    return clean


def _check_source(source: str, value: str) -> str:
    try:
        if source == "body":
            compile_path(value.strip())
        elif source == "regex":
            _regex(value)
    except ConditionError as exc:
        return f"{exc.message} at position {exc.position}"
    return ""


# ---- a run -------------------------------------------------------------------------------


class _StepFailed(Exception):
    """A step that answered but cannot go on: the reason, shown as the step's failure."""


@lru_cache(maxsize=1024)
def _parsed(text: str) -> Condition:
    return parse(text)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern:
    return compile_regex(Token("WORD", pattern, 0), pattern)


async def observe(config: dict[str, Any], timeout: float) -> Observation:
    """Run the steps in order within ``timeout`` seconds for the whole journey."""
    run = _Run(config)
    deadline = time.perf_counter() + timeout
    for number, step in enumerate(config["steps"], 1):
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            spent = f"timed out: the journey's {timeout:g} s were spent before this step"
            return run.unreached(number, step, spent)
        try:
            url, headers, body = _render(step, run.context)
        except _StepFailed as exc:
            run.fail(number, step, {"name": step["name"], "passed": False}, str(exc))
            break
        if config.get("cookies", True):
            headers = run.with_cookies(url, headers)
        seen = await http.request(
            step.get("method", "GET"),
            url,
            headers=headers,
            body=body,
            options=http.HttpOptions.from_config(step),
            timeout=remaining,
        )
        run.total += seen.values.get("RESPONSE_TIME", 0.0)
        entry: dict[str, Any] = {
            "name": step["name"],
            "method": step.get("method", "GET"),
            "url": url,
            "status": seen.values.get("STATUS"),
            "response_time": seen.values.get("RESPONSE_TIME"),
            "timings": seen.timings,
        }
        run.last = seen  # the check's values are this step's, whatever happens next
        if not seen.reached:
            run.steps.append({**entry, "passed": False, "error": seen.error})
            return run.unreached(number, step, seen.error)
        if config.get("cookies", True):
            run.keep_cookies(seen, url)
        if not run.check(number, step, seen, entry):
            break
    return run.observation()


class _Run:
    """One journey run's state: variables, cookie jar, per-step details, the verdict."""

    def __init__(self, config: dict[str, Any]):
        self.context: dict[str, Any] = dict(config.get("variables") or {})
        self.jar: dict[str, dict[str, str]] = {}
        self.steps: list[dict[str, Any]] = []
        self.total = 0.0
        self.last: Observation | None = None
        self.failed: dict[str, Any] | None = None

    def check(self, number: int, step: dict[str, Any], seen: Observation, entry: dict) -> bool:
        """Extract, then judge the step; False when the journey stops here."""
        extracted: dict[str, Any] = {}
        problems: list[str] = []
        for var, rule in step.get("extract", {}).items():
            try:
                extracted[var] = _extract(rule, seen.values)
            except _StepFailed as exc:
                problems.append(f"extract {var}: {exc}")
        context = {**self.context, **extracted}
        texts = step.get("conditions") or STEP_DEFAULT_CONDITIONS
        verdicts = evaluate_all([_parsed(t) for t in texts], {**seen.values, "CONTEXT": context})
        entry["conditions"] = [
            {"condition": text, "passed": v.passed, "explanation": v.explanation}
            for text, v in zip(texts, verdicts, strict=True)
        ]
        self.context = context
        failing = next((v for v in verdicts if not v.passed), None)
        if failing is not None:
            entry["failed_condition"] = failing.explanation
            self.fail(number, step, entry, failing.explanation)
            return False
        if problems:
            self.fail(number, step, entry, "; ".join(problems))
            return False
        entry.update(passed=True, extracted=sorted(extracted))
        self.steps.append(entry)
        return True

    def fail(self, number: int, step: dict[str, Any], entry: dict, reason: str) -> None:
        self.steps.append({**entry, "passed": False, "error": reason})
        self.failed = {"number": number, "name": step["name"], "reason": reason}

    def unreached(self, number: int, step: dict[str, Any], error: str) -> Observation:
        self.failed = {"number": number, "name": step["name"], "reason": error}
        message = f"{label(number, step['name'])}: {error}"
        observation = self.observation()
        observation.reached = False
        observation.error = self.mask(message)
        return observation

    def observation(self) -> Observation:
        values: dict[str, Any] = {}
        if self.last is not None:
            values.update(self.last.values)
        total = round(self.total, 3)
        values["RESPONSE_TIME"] = total
        values["CONTEXT"] = {**self.context, PASSED: self.failed is None}
        details: dict[str, Any] = {
            "steps": self.mask(self.steps),
            "context": {
                name: MASK if SECRET_RE.search(name) else value
                for name, value in self.context.items()
            },
        }
        if self.failed is not None:
            details["failed_step"] = self.mask(self.failed)
        shown = self.mask(self.last.excerpt) if self.last is not None else ""
        return Observation(True, "", values, {"total": total}, excerpt(shown), details)

    # -- cookies

    def with_cookies(self, url: str, headers: dict[str, str]) -> dict[str, str]:
        cookies = self.jar.get(urlsplit(url).hostname or "")
        if not cookies:
            return headers
        pairs = "; ".join(f"{name}={value}" for name, value in cookies.items())
        merged = dict(headers)
        for name in list(merged):
            if name.lower() == "cookie":
                pairs = f"{merged.pop(name)}; {pairs}"
        merged["Cookie"] = pairs
        return merged

    def keep_cookies(self, seen: Observation, url: str) -> None:
        raw = seen.values.get("HEADERS", {}).get("set-cookie")
        if not raw:
            return
        host = urlsplit(seen.details.get("final_url") or url).hostname or ""
        cookies = self.jar.setdefault(host, {})
        for cookie in _COOKIE_SPLIT_RE.split(raw):
            first, *attributes = cookie.split(";")
            name, sep, value = first.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name:
                continue
            expired = any(a.strip().lower().replace(" ", "") == "max-age=0" for a in attributes)
            if expired or not value:
                cookies.pop(name, None)
            else:
                cookies[name] = value

    # -- masking

    def secrets(self) -> list[str]:
        found = {
            _as_text(value)
            for name, value in self.context.items()
            if SECRET_RE.search(name) and value is not None
        }
        found.update(value for cookies in self.jar.values() for value in cookies.values())
        return sorted((s for s in found if len(s) >= MASK_MIN_LENGTH), key=len, reverse=True)

    def mask(self, value: Any, secrets: list[str] | None = None) -> Any:
        secrets = self.secrets() if secrets is None else secrets
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self.mask(v, secrets) for k, v in value.items()}
        if isinstance(value, list):
            return [self.mask(v, secrets) for v in value]
        return value


def _render(step: dict[str, Any], context: dict[str, Any]) -> tuple[str, dict[str, str], str]:
    """The step's url, headers and body with its variables filled in."""
    url = _fill(step["url"], context)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _StepFailed(f"the url is not an http:// or https:// URL with a host: {url}")
    headers = {
        _fill(name, context): _fill(value, context)
        for name, value in (step.get("headers") or {}).items()
    }
    return url, headers, _fill(step.get("body", ""), context)


def _fill(text: str, context: dict[str, Any]) -> str:
    def value(match: re.Match) -> str:
        name = match.group(1)
        if name not in context:
            raise _StepFailed(f"uses {{{{{name}}}}} but no step has set it")
        return _as_text(context[name])

    return TEMPLATE_RE.sub(value, text) if "{{" in text else text


def _as_text(value: Any) -> str:
    """How a variable reads inside a URL, header or body: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _extract(rule: dict[str, str], values: dict[str, Any]) -> Any:
    source = rule["from"]
    if source == "body":
        try:
            return json_path(values.get("BODY", ""), rule["path"])
        except PathNotFound as exc:
            raise _StepFailed(str(exc)) from None
    if source == "header":
        name = rule["name"].lower()
        headers = values.get("HEADERS") or {}
        if name not in headers:
            raise _StepFailed(f"the response has no {rule['name']} header")
        return headers[name]
    pattern = _regex(rule["pattern"])
    match = pattern.search(values.get("BODY", "")[:REGEX_SUBJECT_LIMIT])
    if match is None:
        raise _StepFailed(f"the body does not match /{rule['pattern']}/")
    return match.group(1) if pattern.groups else match.group(0)
