"""Curator dashboard and project settings."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from curation.models import ProjectSettings
from curation.selectors import dashboard as select
from curation.services import drafting as drafting_service
from curation.services import review as review_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import ADMIN, CURATOR

STAFF = frozenset({CURATOR, ADMIN})


class DashboardView(RoleRequiredView):
    allowed_roles = STAFF

    def get(self, request):
        context = {
            "progress": select.progress(),
            "throughput": select.throughput(),
            "timing": select.median_seconds(),
            "agreement": select.agreement(),
            "settings": ProjectSettings.current(),
            "vqa": drafting_service.vqa_progress(),
        }
        return render(request, "review/dashboard.html", context)


class SettingsView(RoleRequiredView):
    allowed_roles = STAFF

    def post(self, request):
        try:
            value = int(request.POST.get("reviews_per_item", ""))
            review_service.set_reviews_per_item(request.user, value)
            messages.success(request, f"Each pair now needs {value} review(s).")
        except ValueError:
            messages.error(request, "Reviews per item must be a whole number.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard")
