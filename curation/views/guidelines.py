"""The guidelines page: everyone who reviews reads it, curators edit it."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from curation.selectors.guidelines import guideline_sections
from curation.services.errors import ServiceError
from curation.services.guidelines import update_guideline
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS, STAFF, has_any_role


class GuidelinesView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def get(self, request, **context):
        can_edit = has_any_role(request.user, STAFF)
        status = context.pop("status", 200)
        return render(
            request,
            "review/guidelines.html",
            {"sections": guideline_sections(), "can_edit": can_edit, **context},
            status=status,
        )

    def post(self, request):
        if not has_any_role(request.user, STAFF):
            return self.get(request, error="Only curators edit the guidelines.", status=403)
        kind, code = request.POST.get("kind", ""), request.POST.get("code", "")
        try:
            version = int(request.POST.get("version", ""))
        except ValueError:
            return self.get(request, error="The form is out of date; reload it.", status=400)
        try:
            text = request.POST.get("text", "")
            update_guideline(request.user, kind, code, text, version=version)
        except ServiceError as exc:
            return self.get(
                request,
                error=exc.message,
                failed=f"{kind}:{code}",
                typed=request.POST.get("text", ""),
                status=exc.status,
            )
        messages.success(request, "Guideline saved.")
        return redirect("guidelines")
