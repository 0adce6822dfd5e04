"""Notification channels, contact methods, notification rules and deliveries (the outbox)."""
