"""A bounded schemathesis run over the whole /api/v1 OpenAPI document (the export paths
included), in-process through WSGI, with the sample template, its flows and the demo
company installed: no request, whether the document allows it or not, is answered with
a server error. Derandomised, so a failure is reproduced by running the test again."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup

from conftest import ApiClient

EXAMPLES = 15  # per operation and generation mode: about 3,700 requests per database
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture
def engine(flows_engine):
    return flows_engine


def fuzz(operation, mode: GenerationMode, headers: dict[str, str], sent: list[int]) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case) -> None:
        sent.append(1)
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    run()


def test_no_request_to_the_api_is_a_server_error(app, api: ApiClient, people):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path.endswith("/export") for op in operations)
    failures: list[str] = []
    sent: list[int] = []
    for operation in operations:
        for mode in MODES:
            try:
                fuzz(operation, mode, api.headers, sent)
            except (FailureGroup, Exception) as exc:  # noqa: BLE001 - report every operation
                failures.append(f"{operation.label} ({mode.value}): {exc}"[:2000])
    assert not failures, f"{len(failures)} operations answered 5xx:\n" + "\n\n".join(failures)
    assert len(sent) > 2_000  # a run that generates nothing proves nothing
