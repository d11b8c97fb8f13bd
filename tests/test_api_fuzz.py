"""A bounded schemathesis run over the whole /api/v1 OpenAPI document, in-process (WSGI):
no input the document allows, nor any it forbids, may make the server answer 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from conftest import ApiClient

EXAMPLES = 20  # per operation and generation mode


@pytest.fixture
def engine(flows_engine):
    return flows_engine


def test_no_request_to_the_api_is_a_server_error(app, api: ApiClient, people):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    total = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])
            @given(case=operation.as_strategy(generation_mode=mode))
            def run(case):
                total[0] += 1
                response = case.call(headers=api.headers)
                if response.status_code >= 500:
                    raise AssertionError(f"{response.status_code} {case.method} "
                                         f"{case.formatted_path} {case.query} "
                                         f"{case.body!r}"[:600])
            try:
                run()
            except AssertionError as e:
                failures.append(str(e))
            except Exception as e:  # noqa: BLE001
                failures.append(f"{operation.label} {mode}: {type(e).__name__}: {e}"[:600])
    print(total[0], "requests")
    assert not failures, "\n".join(failures)
