"""The whole API, fuzzed from its own OpenAPI schema (schemathesis), as every role.

Every operation of ``/api/schema/`` gets generated requests, as an expert, a curator, an ML
worker and an anonymous caller, against the Django WSGI app on a seeded database (books with
figures, panels, pairs, VQA items and review events, a ready release and a training run), so
that id paths hit real rows as well as missing ones. No answer may be a 5xx; answers to
schema-valid requests must also match what the schema documents (status code, content type,
headers, body). Examples are few and derandomised, so the run is bounded and repeatable.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from curation.models import TrainingRun
from curation.services import review as review_service
from tests.releases.conftest import cut, world  # noqa: F401  (release fixtures)

ROLES = ("expert", "curator", "ml_worker", None)
#: examples per operation and role: schema-valid, then schema-violating requests
POSITIVE, NEGATIVE, ANONYMOUS = 6, 3, 2
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Tally:
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def count(self, status: int) -> None:
        self.requests += 1
        self.by_status[status] = self.by_status.get(status, 0) + 1


@contextlib.contextmanager
def requests_keep_the_test_transaction():
    """Django closes the connection after each request; the test client stops that, so must
    a raw WSGI caller, or the first request would end the test's transaction."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (signals.request_started, signals.request_finished):
            signal.connect(close_old_connections)


@pytest.fixture
def seeded(world, cut):  # noqa: F811
    """Rows for every id in the API's paths; returns {path prefix: [ids]}."""
    release = cut()
    curator = world.curator
    run = TrainingRun.objects.create(release=release, stage="sft", config={"lr": 1e-4})
    decided = world.pairs[0]  # a decision, so that history and revert have events
    review_service.review_pair(
        decided.pk,
        curator,
        version=decided.version,
        action="accept",
        changes={"age": 41},
        redecide=True,  # the world's first pair is made accepted
    )
    return {
        "/api/textbooks/": [b.pk for b in world.books[:2]],
        "/api/figures/": [world.pairs[1].panel.figure_id, world.pairs[2].panel.figure_id],
        "/api/pairs/": [p.pk for p in world.pairs[:3]] + [world.pairs[-1].pk],
        "/api/vqa-items/": [v.pk for v in world.vqa[:3]],
        "/api/releases/": [release.pk],
        "/api/training-runs/": [run.pk],
        "files": ["manifest.json", "pairs.jsonl", "DATASET_CARD.md"],
    }


def _headers_for(role: str | None, make_user) -> dict[str, str]:
    if role is None:
        return {}
    user = make_user(f"fuzz-{role}", role)
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def _takes_input(operation, *, besides_the_path: bool = False) -> bool:
    """Parameters or a body (the security schemes' header and cookie do not count)."""
    return bool(len(operation.query) or len(operation.body)) or (
        not besides_the_path and len(operation.path_parameters) > 0
    )


def _strategy(operation, ids: dict, mode: GenerationMode):
    """Generated cases, plus cases whose path ids are rows that exist (in negative mode only
    where something else is left to make invalid)."""
    strategies = [operation.as_strategy(generation_mode=mode)]
    path = operation.path
    fixable = mode.is_positive or _takes_input(operation, besides_the_path=True)
    if "{id}" not in path or not fixable:
        return strategies[0]
    prefix = next((p for p in ids if p.startswith("/") and path.startswith(p)), None)
    for row in ids.get(prefix, []):
        fixed = {"id": row}
        if "{path}" in path:
            strategies += [
                operation.as_strategy(generation_mode=mode, path_parameters={**fixed, "path": f})
                for f in ids["files"]
            ]
        else:
            strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=fixed))
    return st.one_of(strategies)


def _fuzz(operation, strategy, headers: dict, examples: int, checks: list, tally: Tally):
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        response = case.call(headers=headers)
        tally.count(response.status_code)
        case.validate_response(response, checks=checks, headers=headers)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # report every operation's failures at once
        who = "with a token" if headers else "anonymous"
        summary = "\n".join(str(exc).splitlines()[:12])
        tally.failures.append(f"{operation.label} {who}:\n{summary}")


def test_no_operation_answers_a_server_error_and_answers_match_the_schema(
    seeded, make_user, capsys
):
    app = get_wsgi_application()
    tally = Tally()
    with requests_keep_the_test_transaction():
        schema = schemathesis.openapi.from_wsgi("/api/schema/", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 40
        for role in ROLES:
            headers = _headers_for(role, make_user)
            for operation in operations:
                if role is None:
                    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
                    _fuzz(operation, positive, headers, ANONYMOUS, CONFORMANCE, tally)
                    continue
                positive = _strategy(operation, seeded, GenerationMode.POSITIVE)
                _fuzz(operation, positive, headers, POSITIVE, CONFORMANCE, tally)
                if _takes_input(operation):  # else there is nothing to make invalid
                    negative = _strategy(operation, seeded, GenerationMode.NEGATIVE)
                    _fuzz(operation, negative, headers, NEGATIVE, [not_a_server_error], tally)
    with capsys.disabled():
        print(
            f"\nschemathesis: {tally.requests} requests over {len(operations)} operations, "
            f"by status {dict(sorted(tally.by_status.items()))}"
        )
    assert not tally.failures, "\n\n".join(tally.failures)
    assert not any(status >= 500 for status in tally.by_status)
    # The seeded ids were reached: some requests got past the 404s to real rows.
    assert tally.by_status.get(200, 0) > 100
