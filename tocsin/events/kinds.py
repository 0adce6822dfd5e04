"""Every kind of event Tocsin writes, in one place, with the payload keys it promises.

An event kind is ``<area>.<what happened>``. Pages, timelines, the live relay and subscribers
(``on_event``) read these payloads; the keys listed for a kind are checked by ``record()`` on
every write, so an emitter cannot silently drop what a subscriber relies on. Configuration
kinds carry a snapshot of the object (its editable fields) and declare no fixed keys.
"""

from __future__ import annotations

from tocsin.events.registry import declare, declare_config

# --- Teams, people, tokens (tocsin) -------------------------------------------------------
declare_config("team", "team")
declare("team.member_added", "a member joined the team", ["user_id", "role"])
declare("team.member_removed", "a member left the team", ["user_id"])
declare("team.member_role_changed", "a member's role changed", ["user_id", "role"])
declare("team.test", "a test event sent through a worker", ["requested_at"])
declare("user.logged_in", "a user signed in", ["ip"])
declare("user.logged_out", "a user signed out")
declare("user.login_failed", "a sign-in failed", ["ip"])
declare("user.token_created", "an API token was created")
declare("user.token_revoked", "an API token was revoked")
declare(
    "sso_identity.removed",
    "a single sign-on binding was removed (the next sign-in binds again)",
    ["issuer", "subject", "user_id"],
)
# Sign-in protection (issue #14, tocsin.security): monitoring.security raises alerts from these.
declare(
    "security.signin_locked",
    "sign-ins locked after repeated failures",
    ["username", "ip", "failures", "locked_until"],
)
declare("security.admin_granted", "a user became an administrator", ["user_id", "granted"])

# --- Alerts (monitoring pipeline) ---------------------------------------------------------
# Every alert event carries the same payload, built in one place by the pipeline.
ALERT_PAYLOAD = (
    "alert_id",
    "service_id",
    "service",
    "fingerprint",
    "status",
    "severity",
    "summary",
    "labels",
    "suppression",
    "suppressed_by",
    "flapping",
)
declare("alert.firing", "a new alert fires", ALERT_PAYLOAD)
declare("alert.refired", "a resolved alert fires again", ALERT_PAYLOAD)
declare("alert.updated", "a firing alert's content changed", ALERT_PAYLOAD)
declare("alert.resolved", "an alert resolved", ALERT_PAYLOAD)
declare("alert.acknowledged", "the sender acknowledged an alert", ALERT_PAYLOAD)
declare("alert.flapping", "an alert started flapping", ALERT_PAYLOAD)
declare("alert.suppressed", "a silence, inhibition or maintenance muted an alert", ALERT_PAYLOAD)
declare("alert.unsuppressed", "an alert's suppression ended while it fires", ALERT_PAYLOAD)
declare("change.received", "a change (deploy, config change) was reported for a service")

# --- Monitoring configuration -------------------------------------------------------------
declare_config("service", "service")
declare_config("integration", "integration", "created", "updated", "key_rotated", "revoked")
declare("integration.test_sent", "a test alert was sent through an integration", ["alert_id"])
declare_config("silence", "silence", "created", "updated", "expired", "deleted")
declare_config("inhibition", "inhibition rule")
declare_config("maintenance", "maintenance window")
declare_config("alert_rule", "metric threshold rule")
declare_config("slo", "service level objective")

# --- Probes -------------------------------------------------------------------------------
declare_config(
    "heartbeat", "heartbeat", "created", "updated", "deleted", "paused", "resumed", "snoozed"
)
declare_config("check", "synthetic check", "created", "updated", "deleted", "paused", "resumed")
declare("check.state_changed", "a synthetic check's state changed", ["check_id", "state"])

# --- Backups ------------------------------------------------------------------------------
declare_config("backup_storage", "backup storage")
declare_config("backup_target", "backup target")
declare_config("backup_plan", "backup plan")
BACKUP_RUN = ("run_id", "plan_id", "kind")
declare("backup.run_started", "a backup, verify, drill or restore started", BACKUP_RUN)
declare(
    "backup.run_finished",
    "a backup, verify, drill or restore finished",
    [*BACKUP_RUN, "status", "error"],
)
declare("backup.run_downloaded", "a backup's data was downloaded", [*BACKUP_RUN, "stream"])

# --- Incidents ----------------------------------------------------------------------------
INCIDENT = ("incident_id",)
declare(
    "incident.triggered",
    "an alert opened an incident",
    [*INCIDENT, "service_id", "alert_id", "priority", "urgency"],
)
declare(
    "incident.alert_added",
    "alerts joined an incident (one event per incident per batch: alert_ids, count)",
    [*INCIDENT, "alert_id", "alert_ids", "count"],
)
declare("incident.acknowledged", "someone is on it; escalation stops", INCIDENT)
declare("incident.unacknowledged", "an acknowledgement timed out", INCIDENT)
declare("incident.resolved", "the incident resolved", INCIDENT)
declare("incident.reopened", "a resolved incident opened again", INCIDENT)
declare("incident.escalated", "an escalation step paged its targets", INCIDENT)
declare("incident.reassigned", "the incident's assignees changed", INCIDENT)
declare("incident.commander_set", "an incident commander was named", INCIDENT)
declare("incident.priority_changed", "the incident's priority changed", INCIDENT)
declare("incident.note", "a note on the timeline", INCIDENT)
declare("incident.status_update", "a status update for stakeholders", INCIDENT)
declare("incident.merged", "other incidents were merged into this one", INCIDENT)
declare("incident.merged_into", "this incident was merged into another", INCIDENT)
declare("incident.split", "alerts were split off into a new incident", INCIDENT)
declare("incident.sla_breached", "a response target was missed", INCIDENT)
declare("report.sla_sent", "a monthly SLA report was mailed", ["month", "time_zone", "recipients"])
declare_config("incident_settings", "service incident settings")
declare_config("escalation_policy", "escalation policy")
declare_config("response_target", "response target")

# --- On-call ------------------------------------------------------------------------------
declare_config("schedule", "on-call schedule")
declare_config("schedule", "schedule layer", "layer_added", "layer_updated", "layer_removed")
declare_config("override", "on-call override", "created", "deleted")
declare_config("swap", "shift swap", "requested", "accepted", "declined", "cancelled")

# --- Notifications ------------------------------------------------------------------------
declare("notification.sent", "a notification was delivered", ["delivery_id", "kind"])
declare("notification.failed", "a notification could not be delivered", ["delivery_id", "kind"])
declare_config("channel", "notification channel")
declare_config("contact_method", "contact method")
declare_config("notification_rule", "notification rule")

# --- Postmortems --------------------------------------------------------------------------
declare_config("postmortem", "postmortem", "created", "updated")
declare_config("postmortem", "postmortem", "submitted", "published", "reopened")
declare_config(
    "postmortem",
    "action item",
    "action_item_added",
    "action_item_updated",
    "action_item_done",
    "action_item_reopened",
    "action_item_deleted",
)

# --- Status pages (incidents.statuspages) --------------------------------------------------
declare_config("status_page", "status page")
declare_config("status_page", "status page logo", "logo_changed")
declare_config("status_group", "status page component group")
declare_config("status_component", "status page component")
declare_config("status_component", "component status", "status_set", "status_cleared")
declare_config("status_maintenance", "public maintenance notice")
declare_config("status_subscriber", "status page subscriber", "created", "confirmed", "deleted")
STATUS_UPDATE = ("page_id", "public_incident_id", "status")
declare("status_page.update_posted", "a public update was posted on a status page", STATUS_UPDATE)
