"""Property-based: every operation of the OpenAPI document, fed generated input, never
answers 5xx and always answers what the document says (status and body schema).

A fixed seed keeps a run reproducible; FUZZ_EXAMPLES and FUZZ_SEED widen or move it.
The template's own suite runs this same test on PostgreSQL with Celery.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, seed, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

# The app and its schema come from the api_schema fixture (tests/conftest.py).
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "30"))
SEED = int(os.environ.get("FUZZ_SEED", "20261125"))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_operation_never_fails_on_the_server_and_matches_its_schema(
    case: schemathesis.Case,  # type: ignore[type-arg]
) -> None:
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
