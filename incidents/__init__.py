"""Incidents, escalation, schedules and notifications (see the incidents issue)."""
