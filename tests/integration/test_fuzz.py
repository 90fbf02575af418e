"""Schemathesis against the running service, with the committed ``openapi.yaml`` as the only description of it.

Both modes are fuzzed: ``interp serve`` (embedded, auth off) and ``interp api`` with a worker process and Redis
(auth required; the fuzzer sends an admin key, so key management is reached too). Every operation gets positive
cases (valid per the document) and negative ones (not), and the state machine follows the links Schemathesis
infers from the document (``POST /v1/jobs`` → ``GET``/``DELETE /v1/jobs/{job_id}`` and ``/events``,
``POST /v1/admin/keys`` → ``DELETE /v1/admin/keys/{key_id}``, ``GET /v1/models`` → ``GET /v1/models/{model_id}``):
the document has no ``links`` of its own. Job bodies name the tiny test model (and its SAE), so the fuzzed specs
reach the checks and the worker, and the records they produce are read back against the document.

Each response must be no 5xx, have a documented status, content type and headers, and a body that fits its
schema. Every failure is tallied (not only the first, as a plain ``@schema.parametrize()`` test would stop at),
and the test reports each distinct one with the request that produced it as a ``curl`` command.

CI runs :data:`CI_CASES` cases per mode (about half a minute in all on 2 cores); the stress run, ``INTERP_FUZZ_CASES``
per mode, is::

    INTERP_FUZZ_CASES=2000 .venv/bin/pytest tests/integration/test_fuzz.py -m stress -s

which selects :func:`test_stress` only (skipped without the variable) and prints each mode's tally: cases,
operations, statuses, 5xx, failures. ``INTERP_FUZZ_SEED`` changes the seed (fixed by default, so CI runs the same
cases every time). Figures: ``docs/reliability.md``.
"""

from __future__ import annotations

import copy
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, seed
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import REPO_ROOT, make_deployment, serve_embedded
from tests.integration.test_generated_client import JOBS

pytestmark = pytest.mark.integration

AnyCase = Case[Any]
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
CI_CASES = 200
"""Generated cases per service mode in CI, spread over the operations and the state machine."""
SEED = int(os.environ.get("INTERP_FUZZ_SEED", "20261201"))
STATEFUL_SHARE = 0.4
"""Of the cases, the share spent in the state machine's scenarios (up to :data:`STEPS` calls each)."""
STEPS = 6
RESTARTS = 10
"""How many times the state machine is started again, from a new seed, until its calls reach their share."""
NEGATIVE_SHARE = 1 / 3
"""Of an operation's cases, the share that break its schema."""
MODEL, SAE = "tiny-gpt2", "res-1"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
REQUEST_TIMEOUT_S = 30.0
"""A request that takes longer is a failure: waits are capped at 2 s, and the fuzzed jobs end in well under it."""
EVENTS = ("/v1/jobs/{job_id}/events", "get", "200", "text/event-stream")
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "id", "data"],
    "properties": {
        "event": {"enum": ["queued", "running", "succeeded", "failed", "cancelled"]},
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": "#/components/schemas/JobEvent"}},
    },
}
"""One server-sent event of ``/events``, which Schemathesis checks every event against (the way OpenAPI 3.2's
``itemSchema`` describes a stream). The document says ``type: string`` there, the body as OpenAPI 3.1 and the
clients generated from it read it, and names ``JobEvent`` in the description; the fuzzer checks each event
against this schema, which is that description written out."""
SERVICE_ENV: dict[str, Any] = {
    "INTERP_MAX_WAIT_S": "2",  # `?wait=600` must not hold a case for a minute
    "INTERP_SSE_HEARTBEAT_S": "1",
    "INTERP_MAX_ACTIVE_JOBS": "25",  # keeps the backlog an `/events` stream waits through short
}


@dataclass
class Tally:
    """What the fuzzer sent and got back; each distinct failure once, with the first request that showed it."""

    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    """(phase, operation, status) → calls; status 0 for a network error."""
    violations: Counter[str] = field(default_factory=Counter)
    reports: dict[tuple[str, str, int], str] = field(default_factory=dict)
    refused: Counter[str] = field(default_factory=Counter)
    """Positive cases (valid per the document) answered 400, by operation and the field named: where the document
    says less than the server checks. Reported, not failed: some checks (single-token answers, hook names) are
    not expressible in a schema."""

    def call(self, case: AnyCase, phase: str, **kwargs: Any) -> Response | None:
        """Send the case and check the answer; ``None`` when none came (a network error, tallied too)."""
        label = case.operation.label
        try:
            response = case.call(**kwargs)
        except requests.RequestException as exc:
            self.answers[phase, label, 0] += 1
            self._fail(label, "network error", 0, f"{type(exc).__name__}: {exc}\n{case.as_curl_command()}")
            return None
        self.answers[phase, label, response.status_code] += 1
        if response.status_code == 400 and case.meta is not None and case.meta.generation.mode.is_positive:
            self.refused[f"{label} {_error_field(response)}"] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                self._fail(label, failure.title, response.status_code, str(group))
        return response

    def _fail(self, label: str, title: str, status: int, report: str) -> None:
        self.violations[title] += 1
        self.reports.setdefault((label, title, status), report)

    def count(self, *, phase: str | None = None, label: str | None = None, status: int | None = None) -> int:
        return sum(n for (p, lb, st), n in self.answers.items()
                   if phase in (None, p) and label in (None, lb) and status in (None, st))

    @property
    def operations(self) -> set[str]:
        return {label for _, label, _ in self.answers}

    def summary(self) -> str:
        statuses = Counter[int]()
        for (_, _, status), n in self.answers.items():
            statuses[status] += n
        server_errors = sum(n for status, n in statuses.items() if status >= 500)
        lines = [f"{self.count()} cases over {len(self.operations)} operations ({self.count(phase='operations')} "
                 f"one by one, {self.count(phase='stateful')} in linked scenarios); statuses "
                 f"{dict(sorted(statuses.items()))}; 5xx {server_errors}; failures {dict(self.violations) or 0}"]
        lines += [f"  {self.count(label=label):5d}  {label}" for label in sorted(self.operations)]
        lines.append(f"valid per the document, refused (400) by field: {dict(self.refused.most_common(12))}")
        return "\n".join(lines)

    def failures(self) -> str:
        return "\n\n".join(f"{label} [{status}] {title}\n{report}"
                           for (label, title, status), report in self.reports.items())


def _error_field(response: Response) -> str | None:
    try:
        return str(response.json()["error"]["field"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Target:
    """A running service and the document loaded against it."""

    mode: str
    schema: schemathesis.BaseSchema
    tally: Tally = field(default_factory=Tally)

    @property
    def operations(self) -> list[Operation]:
        results = list(self.schema.get_all_operations())
        assert all(isinstance(r, Ok) for r in results), results  # the committed document is valid
        return [r.ok() for r in results if isinstance(r, Ok)]


def _document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((REPO_ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    return document


def _event_schema(document: dict[str, Any]) -> dict[str, Any]:
    path, method, status, media_type = EVENTS
    schema: dict[str, Any] = document["paths"][path][method]["responses"][status]["content"][media_type]["schema"]
    return schema


def _load_schema(base_url: str, headers: dict[str, str]) -> schemathesis.BaseSchema:
    document = _document()
    path, method, status, media_type = EVENTS
    document["paths"][path][method]["responses"][status]["content"][media_type]["schema"] = EVENT_SCHEMA
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=base_url, headers=headers, request_timeout=REQUEST_TIMEOUT_S)
    # Scenarios make valid calls (each operation gets its invalid ones on its own), so the links carry real ids.
    schema.config.phases.stateful.generation.update(modes=[GenerationMode.POSITIVE])

    @schema.hook("map_case")
    def tiny_model(_: Any, case: AnyCase) -> AnyCase:
        """Job and tokenize bodies name the served tiny model and its SAE, so they get past the id lookups."""
        if isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = MODEL
            if "sae" in case.body:
                case.body["sae"] = SAE
        return case

    @schema.hook("flatmap_case")
    def some_valid_jobs(_: Any, case: AnyCase) -> st.SearchStrategy[AnyCase]:
        """Half the positive submissions are jobs that succeed (one per kind): their records, results and
        events are then read, cancelled and streamed along the links, and checked against the document."""
        if case.operation.label != "POST /v1/jobs" or case.meta is None or not case.meta.generation.mode.is_positive:
            return st.just(case)
        return st.just(case) | st.sampled_from(sorted(JOBS)).map(lambda name: _with_body(case, name))

    return schema


def _with_body(case: AnyCase, name: str) -> AnyCase:
    case.body = copy.deepcopy(JOBS[name])
    return case


@pytest.fixture(scope="module", params=["embedded", "production"])
def target(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    if request.param == "embedded":
        with serve_embedded(directory, **SERVICE_ENV) as url:
            yield Target("embedded", _load_schema(url, {}))
        return
    dep = make_deployment(redis_url, directory, **SERVICE_ENV)
    try:
        dep.start_worker()
        url = dep.start_api()
        yield Target("production", _load_schema(url, {"Authorization": f"Bearer {dep.key(scope='admin')}"}))
    finally:
        dep.stop()


def _settings(examples: int, **extra: Any) -> hypothesis.settings:
    return hypothesis.settings(max_examples=examples, deadline=None, database=None,
                               phases=[hypothesis.Phase.generate], suppress_health_check=list(HealthCheck), **extra)


def fuzz_operations(target: Target, cases: int) -> None:
    """Positive and negative cases for every operation, about ``cases`` in all: what an operation leaves unused
    (Hypothesis stops early where there is little to vary, as for ``GET /healthz``) goes to the ones after it."""
    operations = target.operations
    until = target.tally.count(phase="operations") + cases
    for index, operation in enumerate(operations):
        per_operation = max(3, (until - target.tally.count(phase="operations")) // (len(operations) - index))
        negative = max(1, round(per_operation * NEGATIVE_SHARE))
        for mode, examples in ((GenerationMode.POSITIVE, per_operation - negative),
                               (GenerationMode.NEGATIVE, negative)):

            @seed(SEED)
            @_settings(examples)
            @given(case=operation.as_strategy(mode))
            def run(case: AnyCase) -> None:
                target.tally.call(case, "operations")

            try:
                run()
            except hypothesis.errors.Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to break (`GET /healthz`)


def fuzz_links(target: Target, cases: int) -> None:
    """Scenarios of the state machine, about ``cases`` calls in all, chained along the inferred links."""
    tally = target.tally

    class Workflow(target.schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case: AnyCase, **kwargs: Any) -> Response:
            response = tally.call(case, "stateful", **kwargs)
            hypothesis.assume(response is not None)  # a network error, tallied: this scenario ends
            assert response is not None
            return response

        def validate_response(self, response: Response, case: AnyCase, **kwargs: Any) -> None:
            pass  # `call` has checked it, into the tally

    until = tally.count(phase="stateful") + cases
    for restart in range(RESTARTS):
        remaining = until - tally.count(phase="stateful")
        if remaining <= 0:
            break
        seed(SEED + restart)(Workflow)
        try:
            Workflow.run(settings=_settings(max(2, remaining // (STEPS - 2)), stateful_step_count=STEPS))
        except hypothesis.errors.Flaky:
            # A live service need not answer a replayed prefix as before (a job has ended, a key was revoked), and
            # Hypothesis stops there; the calls made are tallied, so go on from a new seed.
            continue


def _assert_clean(target: Target, cases: int) -> None:
    target.tally = Tally()
    started = time.monotonic()
    stateful = round(cases * STATEFUL_SHARE)
    fuzz_operations(target, cases - stateful)
    fuzz_links(target, stateful)
    tally = target.tally
    print(f"\n{target.mode}: {tally.summary()}\n{time.monotonic() - started:.1f} s")
    assert tally.operations >= {op.label for op in target.operations}, "an operation was never called"
    # The links were followed: a job submitted in a scenario was then read, cancelled or streamed by its id.
    linked = [(label, status) for phase, label, status in tally.answers if phase == "stateful"]
    assert any(label.startswith("GET /v1/jobs/{job_id}") or label.startswith("DELETE /v1/jobs/")
               for label, status in linked if 200 <= status < 300), tally.summary()
    assert not tally.reports, f"{target.mode}: {tally.summary()}\n\n{tally.failures()}"


def test_the_stream_is_documented_as_text_naming_its_events() -> None:
    schema = _event_schema(_document())
    assert schema["type"] == "string" and "#/components/schemas/JobEvent" in schema["description"]
    assert "JobEvent" in _document()["components"]["schemas"]


def test_fuzzed_requests_get_documented_answers_and_no_5xx(target: Target) -> None:
    _assert_clean(target, CI_CASES)


@pytest.mark.stress
@pytest.mark.skipif("INTERP_FUZZ_CASES" not in os.environ, reason="a stress run: set INTERP_FUZZ_CASES")
def test_stress(target: Target) -> None:
    _assert_clean(target, int(os.environ["INTERP_FUZZ_CASES"]))
