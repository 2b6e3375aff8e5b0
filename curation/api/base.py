"""Base classes every API endpoint inherits: roles are declared once per action, here.

An endpoint that must be reachable without roles says so in its class name (``Public...``).
Ids in URLs are checked here too, once: digits only, and few enough to fit a bigint, so a
malformed or huge id is a 404 from the router rather than a crash in ``int()`` or Postgres.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.urls import register_converter
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException, ParseError
from rest_framework.views import APIView

from curation.api.parsers import unstorable
from skinplatform.accounts.permissions import HasActionRole

#: A row id as it may appear in a URL: 18 digits always fit Postgres' bigint (19 may not).
ID_REGEX = r"[0-9]{1,18}"
_ID = re.compile(ID_REGEX)


def as_int(text: str | None) -> int | None:
    """An id or count typed into a form or query string, or ``None`` if it is not one.

    Not ``text.isdigit()`` and ``int()``: ``isdigit`` accepts "²" and 5,000 digits, which
    ``int()`` refuses (ValueError) and a bigint column cannot hold.
    """
    return int(text) if text and _ID.fullmatch(text) else None


# A number a request may carry into a query: larger ones are a 400 naming the limit, never an
# OverflowError from SQLite or an out-of-range error from Postgres (a 500).
MAX_ID = 10**18 - 1  # what ID_REGEX admits; a bigint holds it
MAX_SMALL = 2**31 - 1  # versions, counts and seeds live in 32-bit integer columns


def id_field(**kwargs):
    from rest_framework import serializers

    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def version_field(**kwargs):
    from rest_framework import serializers

    return serializers.IntegerField(min_value=1, max_value=MAX_SMALL, **kwargs)


class IdConverter:
    """``<id:pk>`` in Django URL patterns: an ``int`` that the database can hold."""

    regex = ID_REGEX

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


# Registered where it is defined, so every URLconf that imports this module (both do) has it.
register_converter(IdConverter, "id")


class PayloadTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _refuse_oversized_body(request) -> None:
    """Django bounds JSON and form bodies by ``DATA_UPLOAD_MAX_MEMORY_SIZE`` when DRF reads
    them, but answers with a bare HTML 400; say 413 and the limit, as JSON, before reading.
    Multipart bodies are left to Django's parser, which bounds the fields but not the files.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = request.META.get("CONTENT_LENGTH") or ""
    if limit is None or request.content_type.startswith("multipart/"):
        return
    if declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")


class RoleScopedMixin:
    #: action (or HTTP method, lower-case, for plain views) -> roles allowed; "*" is the default.
    action_roles: dict[str, frozenset[str]] = {}
    permission_classes = [HasActionRole]

    def roles_for_action(self) -> frozenset[str]:
        if not self.action_roles:
            raise ImproperlyConfigured(f"{type(self).__name__} declares no action_roles")
        key = getattr(self, "action", None) or self.request.method.lower()
        return self.action_roles.get(key, self.action_roles.get("*", frozenset()))

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        _refuse_oversized_body(request)
        # Bodies are checked by the parsers (curation.api.parsers); query strings and path
        # segments reach filters and lookups without passing one.
        problem = unstorable([list(request.query_params.lists()), list(kwargs.values())])
        if problem:
            raise ParseError(problem)


class RoleScopedViewSet(RoleScopedMixin, viewsets.GenericViewSet):
    lookup_value_regex = ID_REGEX


class RoleScopedAPIView(RoleScopedMixin, APIView):
    pass


#: ``@action(..., **PLAIN_LIST)`` for an action answering a whole list: neither paginated nor
#: filtered, so the schema does not document a page object and filter parameters it ignores.
PLAIN_LIST = {"pagination_class": None, "filter_backends": []}


# -- OpenAPI -----------------------------------------------------------------------------------
class ErrorSerializer(serializers.Serializer):
    """Errors carry ``detail`` (and a stable ``code`` from the services); field errors of a
    400 are keyed by field name instead."""

    detail = serializers.CharField(required=False)
    code = serializers.CharField(required=False)


_WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema plus the error answers every endpoint can give.

    They come from shared machinery (roles, lookups, parsers, pagination, the services'
    conflicts), so they are documented once here rather than on each view.
    """

    def _error_responses(self) -> dict[str, str]:
        # Any query string may carry unstorable text (400, see RoleScopedMixin.initial).
        codes = {"400": "Invalid input"}
        if not type(self.view).__name__.startswith("Public"):
            codes["403"] = "Not signed in, or the role does not allow this action"
        if "{" in self.path or self.method in _WRITES or self._is_list_view():
            codes["404"] = "No such object (in the path or the body), or no such page"
        if self.method in _WRITES:
            codes["409"] = "Conflicts with the stored state (stale version, wrong status)"
            codes["413"] = "The request body is too large"
            codes["415"] = "Unsupported media type"
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, description in self._error_responses().items():
            if code not in responses:
                answer = OpenApiResponse(response=ErrorSerializer, description=description)
                responses[code] = self._get_response_for_code(answer, code, direction=direction)
        return responses
