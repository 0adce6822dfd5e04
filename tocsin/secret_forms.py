"""A model form whose connection string is written, never read back.

Backup targets and monitored databases keep a DSN with its password in an encrypted
``secrets`` field. The form offers a password-style field for it that is never filled in:
left empty on a change, the stored DSN stays; the page shows where the database is
(``describe()``), not its password. ``dsn_problem(kind, dsn)`` on the form says what is wrong
with a DSN for a kind (None: nothing), as a field error.
"""

from __future__ import annotations

from typing import Any

from django import forms

KEEP_STORED = "Leave empty to keep the stored one."


class WriteOnlyDSNForm(forms.ModelForm):
    dsn = forms.CharField(
        required=False,
        label="Connection string",
        widget=forms.PasswordInput(render_value=False),
        help_text="postgresql://user:password@host:5432/database, "
        "mysql://user:password@host:3306/database or redis://:password@host:6379/0. " + KEEP_STORED,
    )

    def dsn_problem(self, kind: str, dsn: str) -> str | None:
        raise NotImplementedError

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        dsn = data.get("dsn") or (self.instance.secrets or {}).get("dsn", "")
        problem = self.dsn_problem(data.get("kind", ""), dsn)
        if problem:
            self.add_error("dsn", problem)
        self.instance.secrets = {"dsn": dsn} if dsn else {}
        return data
