"""Base classes every API endpoint inherits: roles are declared once per action, here.

An endpoint that must be reachable without roles says so in its class name (``Public...``).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import viewsets
from rest_framework.views import APIView

from skinplatform.accounts.permissions import HasActionRole


class RoleScopedMixin:
    #: action (or HTTP method, lower-case, for plain views) -> roles allowed; "*" is the default.
    action_roles: dict[str, frozenset[str]] = {}
    permission_classes = [HasActionRole]

    def roles_for_action(self) -> frozenset[str]:
        if not self.action_roles:
            raise ImproperlyConfigured(f"{type(self).__name__} declares no action_roles")
        key = getattr(self, "action", None) or self.request.method.lower()
        return self.action_roles.get(key, self.action_roles.get("*", frozenset()))


class RoleScopedViewSet(RoleScopedMixin, viewsets.GenericViewSet):
    pass


class RoleScopedAPIView(RoleScopedMixin, APIView):
    pass
