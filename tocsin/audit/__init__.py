"""The tamper-evident audit trail: the event log sealed into hash chains (``chain``), checked
by ``manage.py audit verify`` and a scheduled check (``verify``), read on the audit page
(``views``). See docs/security-audit.md."""
