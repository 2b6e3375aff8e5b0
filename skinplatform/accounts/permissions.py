"""API permissions: each viewset states its roles per action (see curation.api.base)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from skinplatform.accounts.roles import has_any_role


class DenyAll(BasePermission):
    """The default: an endpoint that forgot to declare its roles is closed, not open."""

    def has_permission(self, request, view) -> bool:
        return False


class HasActionRole(BasePermission):
    """Grants access when the user holds one of the roles the view declares for the action."""

    message = "Your role does not allow this action."

    def has_permission(self, request, view) -> bool:
        allowed = view.roles_for_action()
        return request.user.is_authenticated and has_any_role(request.user, allowed)
