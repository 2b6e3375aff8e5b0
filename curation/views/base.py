"""Base classes for HTML views: login and role checks live here, not in each view."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import BadRequest, ImproperlyConfigured, PermissionDenied
from django.views import View

from curation.api.parsers import unstorable
from skinplatform.accounts.roles import ADMIN, has_any_role

_ROLE_PLURALS = {"expert": "experts", "curator": "curators", "ml_worker": "ML workers"}


def roles_only(allowed: frozenset[str]) -> str:
    """ "curators only": the reason a 403 page gives, named from the view's own role list.

    Admins hold every role, so they are named only where no other role is admitted.
    """
    named = [_ROLE_PLURALS[r] for r in sorted(allowed) if r in _ROLE_PLURALS]
    if not named and ADMIN in allowed:
        named = ["admins"]
    joined = named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
    return f"{joined} only"


class RoleRequiredView(LoginRequiredMixin, View):
    """Every HTML view inherits this and names the roles it admits."""

    allowed_roles: frozenset[str] = frozenset()

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.allowed_roles:
            raise ImproperlyConfigured(f"{type(self).__name__} declares no allowed_roles")
        if not has_any_role(request.user, self.allowed_roles):
            raise PermissionDenied(
                f"This page is for {roles_only(self.allowed_roles)}; your account does not "
                "hold that role. An admin can grant it."
            )
        # Form fields, query strings and path segments go to services and filters unparsed;
        # a NUL in one would reach Postgres (which refuses it) as a 500.
        files = [upload.name for _, uploads in request.FILES.lists() for upload in uploads]
        fields = [list(request.GET.lists()), list(request.POST.lists()), files, *kwargs.values()]
        problem = unstorable(fields)
        if problem:
            raise BadRequest(problem)
        return super().dispatch(request, *args, **kwargs)
