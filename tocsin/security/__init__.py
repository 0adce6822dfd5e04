"""Security helpers shared by the sign-in protection, the audit trail and the security page."""
