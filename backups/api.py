"""REST endpoints for backups, under /api/v1/.

Same rules as every team-scoped endpoint (``tocsin.api.viewsets``): a plan or run of a team you
cannot view is a 404, your role there decides the rest (403). Everyone in the team reads plans
and runs; managers start a backup, verify or restore drill (``POST …/backup/``, ``…/verify/``,
``…/drill/``: the same ``runs.request_run`` as the schedule, the admin and the pages; 409 while
the plan has a run) and download a backup's data (``GET /backup-runs/<id>/download/``, streamed
from the repository and checked chunk by chunk; the event log records who did). Storages and
targets are configured in the admin, where their secrets are written and never read back.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import django_filters
from django.db import transaction
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from backups import runs
from backups.engine.repository import RepositoryError
from backups.engine.storage import StorageError
from backups.models import BackupPlan, BackupRun, RunKind, RunStatus
from tocsin.api.filters import IdFilter, StrictFilterSet, TeamRefFilter
from tocsin.api.lookups import visible_teams
from tocsin.api.pagination import KeysetPagination
from tocsin.api.serializers import NoInputSerializer
from tocsin.api.viewsets import TeamScopedViewSet
from tocsin.events import record
from tocsin.permissions import Action, is_admin


class PlanSerializer(serializers.ModelSerializer):
    team = serializers.IntegerField(source="service.team_id", read_only=True)
    target = serializers.SerializerMethodField(help_text="Its name, kind and where (no secrets).")
    storage = serializers.SerializerMethodField(help_text="Its name and where (no secrets).")

    class Meta:
        model = BackupPlan
        fields = [
            "id",
            "team",
            "service",
            "name",
            "target",
            "storage",
            "schedule",
            "timezone",
            "enabled",
            "keep_last",
            "keep_hourly",
            "keep_daily",
            "keep_weekly",
            "keep_monthly",
            "keep_yearly",
            "keep_within",
            "verify_slices",
            "max_age_hours",
            "next_run_at",
            "last_success_at",
        ]
        read_only_fields = fields

    def get_target(self, plan: BackupPlan) -> dict[str, str]:
        return {"name": plan.target.name, "kind": plan.target.kind, "where": plan.target.describe()}

    def get_storage(self, plan: BackupPlan) -> dict[str, Any]:
        return {
            "name": plan.storage.name,
            "kind": plan.storage.kind,
            "where": plan.storage.describe(),
            "encrypted": plan.storage.encrypted,
        }


class RunSerializer(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True, allow_null=True)
    rate = serializers.FloatField(read_only=True, allow_null=True, help_text="Bytes per second.")
    streams = serializers.SerializerMethodField(
        help_text="What download can return (?stream=<name> when there are several)."
    )

    class Meta:
        model = BackupRun
        fields = [
            "id",
            "plan",
            "kind",
            "status",
            "scheduled",
            "created_at",
            "started_at",
            "finished_at",
            "source",
            "snapshot_id",
            "progress_bytes",
            "expected_bytes",
            "percent",
            "rate",
            "size_bytes",
            "new_bytes",
            "stored_bytes",
            "chunks",
            "new_chunks",
            "manifest",
            "problems",
            "error",
            "rto_seconds",
            "forgotten_at",
            "streams",
        ]
        read_only_fields = fields

    def get_streams(self, run: BackupRun) -> list[str]:
        if run.kind != RunKind.BACKUP or not run.snapshot_id:
            return []
        meta = run.manifest or {}
        if meta.get("kind") == "directory":
            return ["(one per file: files/<path>)"]
        return {"postgresql": ["dump.pgcustom"], "mysql": ["dump.sql"]}.get(
            meta.get("kind", ""), ["database.sqlite3"]
        )


class PlanFilter(StrictFilterSet):
    team = TeamRefFilter(queryset=visible_teams, field_name="service__team")
    service = IdFilter(field_name="service")

    class Meta:
        model = BackupPlan
        fields: list[str] = []


class RunFilter(StrictFilterSet):
    plan = IdFilter(field_name="plan")
    kind = django_filters.ChoiceFilter(choices=RunKind.choices)
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)

    class Meta:
        model = BackupRun
        fields: list[str] = []


START = {"backup": RunKind.BACKUP, "verify": RunKind.VERIFY, "drill": RunKind.DRILL}


class BackupPlanViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = BackupPlan
    what = "backup plan"
    team_field = "service__team"
    serializer_class = PlanSerializer
    filterset_class = PlanFilter
    required_actions = {name: Action.MANAGE for name in START}

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("service", "target", "storage").order_by("name", "id")

    def _start(self, kind: str) -> Response:
        plan = self.get_object()
        NoInputSerializer(data=self.request.data).is_valid(raise_exception=True)
        run = runs.request_run(plan, kind, actor=self.request.user)  # PlanBusy: 409
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def backup(self, request: Request, pk: str) -> Response:
        """Queue a backup now (409 while the plan has a run waiting or running)."""
        return self._start(RunKind.BACKUP)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str) -> Response:
        """Queue a verify of the plan's kept backups (one slice of their chunks)."""
        return self._start(RunKind.VERIFY)

    @extend_schema(request=None, responses={202: RunSerializer})
    @action(detail=True, methods=["post"])
    def drill(self, request: Request, pk: str) -> Response:
        """Queue a restore drill of the latest good backup into a scratch database or folder."""
        return self._start(RunKind.DRILL)


class BackupRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    model = BackupRun
    what = "backup run"
    team_field = "plan__service__team"
    serializer_class = RunSerializer
    filterset_class = RunFilter
    pagination_class = KeysetPagination
    required_actions = {"download": Action.MANAGE}

    def shape(self, queryset: QuerySet) -> QuerySet:
        return queryset.select_related("plan__service").order_by("-created_at", "-id")

    @extend_schema(
        parameters=[OpenApiParameter("stream", str, description="Which stream, when several.")],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> StreamingHttpResponse:
        """The backup's data as its tool wrote it (a pg_dump custom-format file, a SQL dump, a
        SQLite database, or one file of a folder), streamed and checked chunk by chunk."""
        run = self.get_object()
        if run.kind != RunKind.BACKUP or run.status != RunStatus.SUCCEEDED or run.forgotten_at:
            raise NotFound("only a good, kept backup can be downloaded")
        if run.manifest.get("own_database") and not is_admin(request.user):
            # Tocsin's own database holds every team's data: administrators only.
            raise PermissionDenied("only an administrator may download Tocsin's own database")
        try:
            repository = run.plan.storage.repository()
            snapshot = repository.snapshot(run.snapshot_id)
        except (RepositoryError, StorageError) as exc:
            raise NotFound(f"the backup cannot be read: {exc}") from None
        wanted = request.query_params.get("stream")
        streams = [s for s in snapshot.streams if wanted in (None, s.name)]
        if len(streams) != 1:
            names = ", ".join(s.name for s in snapshot.streams[:20])
            raise ValidationError({"stream": [f"choose one of: {names}"]})
        stream = streams[0]
        with transaction.atomic():
            record(
                "backup.run_downloaded",
                team=run.plan.service.team_id,
                subject=run.plan,
                actor=request.user,
                payload={
                    "run_id": run.pk,
                    "plan_id": run.plan_id,
                    "kind": run.kind,
                    "stream": stream.name,
                },
            )

        def body() -> Iterator[bytes]:
            yield from repository.read_stream(stream)

        filename = f"{run.plan.name}-{run.pk}-{stream.name.rsplit('/', 1)[-1]}"
        response = StreamingHttpResponse(body(), content_type="application/octet-stream")
        response["Content-Length"] = str(stream.size)
        response["Content-Disposition"] = f'attachment; filename="{_safe(filename)}"'
        if stream.sha256:  # a folder's files; a dump's integrity is its chunks' checksums
            response["X-Content-SHA256"] = stream.sha256
        return response


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:150]
