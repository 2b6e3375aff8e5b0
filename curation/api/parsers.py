"""Request parsers that refuse, with a 400, what would otherwise crash deeper down.

DRF's parsers hand on whatever the body holds. Two kinds of input then fail as a 500 far from
the request: JSON nested so deep that ``json`` raises ``RecursionError`` (or, a little less
deep, that serializers and Postgres' jsonb recurse over), and text Postgres cannot store: NUL
(``\\u0000``) in text or jsonb, lone surrogates (not encodable as UTF-8) and non-finite
numbers (jsonb has no ``Infinity``). DRF's ``CharField`` already refuses NUL and surrogates,
but ``DictField``/``JSONField`` values (training metrics, configs) and dictionary keys pass no
such check, so it is made once here, on the parsed data, for every endpoint. The body's size
is bounded before parsing (``curation.api.base.RoleScopedMixin``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from rest_framework import parsers
from rest_framework.exceptions import ParseError

#: Deeper than any body this API takes (a training config nests 3-4 levels).
MAX_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(data: object, *, max_depth: int = MAX_DEPTH) -> str | None:
    """Why ``data`` (parsed JSON or form values) cannot be stored, or ``None`` if it can.

    Walks with an explicit stack, so a deep structure cannot exhaust Python's own.
    """
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                return "Text may not contain NUL characters or unpaired surrogates."
        elif isinstance(value, float):
            if not math.isfinite(value):
                return "Numbers must be finite."
        elif isinstance(value, dict | list | tuple):
            if depth >= max_depth:
                return f"JSON may be nested at most {max_depth} levels deep."
            items: Iterable = value
            if isinstance(value, dict):
                items = [*value.keys(), *value.values()]
            stack.extend((item, depth + 1) for item in items)
    return None


def _refuse_unstorable(data: object) -> None:
    problem = unstorable(data)
    if problem:
        raise ParseError(problem)


class JSONParser(parsers.JSONParser):
    """DRF's strict JSON parser, bounded in depth, refusing unstorable text."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError as exc:
            raise ParseError(f"JSON may be nested at most {MAX_DEPTH} levels deep.") from exc
        _refuse_unstorable(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_unstorable(list(data.lists()))
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        names = [upload.name for _, uploads in result.files.lists() for upload in uploads]
        _refuse_unstorable([list(result.data.lists()), names])
        return result
