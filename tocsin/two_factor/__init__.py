"""Two-factor sign-in (TOTP and recovery codes, on django-otp) and session lifetimes.

docs/security-accounts.md tells the operator's side. The modules:
``devices`` (enrol, confirm, verify, recovery codes, disable), ``policy`` (who must have a second
factor), ``sessions`` (idle and absolute limits), ``middleware``, ``views`` (the login's second
step, the admin login, the account pages) and ``urls``.
"""
