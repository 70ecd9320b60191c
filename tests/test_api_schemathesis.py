"""Schemathesis over the OpenAPI schema: every operation, fed generated input (valid and
invalid) as a logged-in admin, answers without a 5xx. It runs on PostgreSQL, the stricter
database (it refuses a NUL character in text, for one), and on SQLite only when PostgreSQL
is not there; a few examples per operation keep it short. Routes that would end the session
(logout, disabling a user), reach the network (a collector run, a credential check), start
a Lab study (CPU for minutes) or stream forever are left to their own tests."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.api_support import login
from tests.conftest import postgres_unavailable

EXAMPLES = {GenerationMode.POSITIVE: 2, GenerationMode.NEGATIVE: 2}
SKIP = {
    ("POST", "/api/v1/auth/logout"),
    ("POST", "/api/v1/users/{name}/disable"),
    ("POST", "/api/v1/collectors/{name}/run"),
    ("POST", "/api/v1/credentials"),
    ("POST", "/api/v1/credentials/{id}/rotate"),
    ("POST", "/api/v1/credentials/{id}/check"),
    ("GET", "/api/v1/stream"),
    ("POST", "/api/v1/lab/sessions"),
}


def test_no_operation_answers_5xx(client: TestClient, db_url: str) -> None:
    if db_url.startswith("sqlite") and postgres_unavailable() is None:
        pytest.skip("runs on PostgreSQL (the stricter database)")
    app: Any = client.app
    headers = login(client, "alice")
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIP or not operation.path.startswith("/api/v1"):
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES[mode],
                deadline=None,
                database=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def probe(case: Any) -> None:
                res = case.call(headers=headers)
                if res.status_code >= 500:
                    what = f"{case.operation.method.upper()} {case.operation.path}"
                    failures.append(f"{what}: {res.status_code} for {case!r}"[:400])

            try:
                probe()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                continue
            checked += 1
    assert checked > 40
    assert not failures, "\n".join(failures[:10])
