"""The "test this configuration" form: an unsaved check run once through
``services.test_config`` (which validates as saving would); errors land on their fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from probes import kinds
from probes.checks import services
from probes.checks.choices import MAX_TIMEOUT
from probes.checks.models import Check
from probes.checks.runner import RunOutcome
from probes.kinds.base import InvalidConfig


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class CheckTestForm(forms.Form):
    kind = forms.ChoiceField(choices=kinds.choices)
    config = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="The kind's settings, as JSON.",
    )
    conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="One per line; empty: the kind's default.",
    )
    degraded_conditions = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="One per line: softer conditions whose failure means “degraded”.",
    )
    timeout = forms.FloatField(min_value=0.1, max_value=MAX_TIMEOUT, initial=10.0)

    @classmethod
    def for_check(cls, check: Check) -> CheckTestForm:
        """Filled with the check's saved configuration, to change and try."""
        return cls(
            initial={
                "kind": check.kind,
                "config": check.config,
                "conditions": "\n".join(check.conditions or []),
                "degraded_conditions": "\n".join(check.degraded_conditions or []),
                "timeout": check.timeout,
            }
        )

    def clean_config(self) -> dict[str, Any]:
        config = self.cleaned_data["config"]
        if not isinstance(config, dict):
            raise ValidationError('Give a JSON object, such as {"url": "https://…"}.')
        return config

    def run(self) -> RunOutcome | None:
        """The outcome, or None with the errors added to their fields."""
        data = self.cleaned_data
        try:
            return services.test_config(
                data["kind"],
                data["config"],
                _lines(data.get("conditions", "")),
                _lines(data.get("degraded_conditions", "")),
                timeout=data["timeout"],
            )
        except InvalidConfig as exc:
            for name, message in exc.fields.items():
                self.add_error("config", f"{name}: {message}")
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                for message in errors:
                    self.add_error(name if name in self.fields else None, message)
        except LookupError as exc:
            self.add_error("kind", str(exc))
        return None
