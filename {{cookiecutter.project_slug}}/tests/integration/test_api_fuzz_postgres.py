"""The property-based API test of tests/test_api_fuzz.py on PostgreSQL, jobs to Celery:
the database's own limits (integer range, column lengths, NUL) are where SQLite and
PostgreSQL differ."""

from tests.integration.conftest import requires_services
from tests.test_api_fuzz import (
    schema,
    test_operation_never_fails_on_the_server_and_matches_its_schema,
)

pytestmark = requires_services

__all__ = ["schema", "test_operation_never_fails_on_the_server_and_matches_its_schema"]
