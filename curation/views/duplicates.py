"""The review page's "same picture" / "different" buttons."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from curation.models import Pair
from curation.services import duplicates as duplicate_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS


class DuplicateVerdictView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def post(self, request, pk: int):
        pair = get_object_or_404(Pair.objects.select_related("panel"), pk=pk)
        back = HttpResponseRedirect(reverse("review-pair", args=[pk]))
        try:
            other_id = int(request.POST.get("other", ""))
        except ValueError:
            messages.error(request, "Choose which other picture the verdict is about.")
            back.status_code = 303
            return back
        other = get_object_or_404(Pair.objects.select_related("panel"), pk=other_id)
        try:
            duplicate_service.record_verdict(
                pair, other, request.POST.get("verdict", ""), request.user
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Verdict recorded.")
        back.status_code = 303
        return back
