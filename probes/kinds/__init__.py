"""The registry of check kinds: one module per kind, model choices derive from here.

A caller validates a config once when it is saved, and runs it as often as it is due::

    from probes import kinds

    kind = kinds.get("http")
    config = kind.validate({"url": "https://example.org/health"})  # InvalidConfig if wrong
    observation = await kind.observe(config, timeout=5.0)          # never raises for the target
    conditions = kinds.conditions_for("http", config)              # ["[STATUS] in 200..299"]

Some kinds' default conditions depend on their config (a TLS check's thresholds, a consistency
check's tolerance): such a module also defines ``default_conditions(config)`` and, for the
softer "degraded" level, ``degraded_conditions(config)``; ``conditions_for`` and
``degraded_conditions_for`` ask the module so callers need not know which kinds do.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from probes.kinds import consistency, dns, http, icmp, journey, redis, sql, tcp, tls

MODULES: tuple[ModuleType, ...] = (http, tcp, tls, dns, sql, redis, icmp, consistency, journey)
KINDS: dict[str, ModuleType] = {module.KIND: module for module in MODULES}


def get(kind: str) -> ModuleType:
    """The module of ``kind``; LookupError names the known kinds when it is not one."""
    try:
        return KINDS[kind]
    except KeyError:
        raise LookupError(f"unknown check kind {kind!r} (known: {', '.join(KINDS)})") from None


def choices() -> list[tuple[str, str]]:
    """(kind, label) pairs for a model field's choices and a form's select."""
    return [(module.KIND, module.LABEL) for module in MODULES]


def conditions_for(kind: str, config: dict[str, Any]) -> list[str]:
    """What "up" means for this config when the user wrote no condition."""
    module = get(kind)
    hook = getattr(module, "default_conditions", None)
    return list(hook(config)) if hook else list(module.DEFAULT_CONDITIONS)


def degraded_conditions_for(kind: str, config: dict[str, Any]) -> list[str]:
    """The softer conditions whose failure means "degraded" (empty when the kind has none)."""
    hook = getattr(get(kind), "degraded_conditions", None)
    return list(hook(config)) if hook else []
