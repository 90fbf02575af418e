"""The job lifecycle around the core (no broker): records, failures as {code, message}, cancel, time limits."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from workers.core.registry import Registry
from workers.kinds import result_of
from workers.kinds.patching import PatchingResult
from workers.records import JobRecord, MemoryJobStore
from workers.runtime import WorkerRuntime
from workers.settings import TimeLimits, WorkerSettings
from workers.tasks import execute_job

REGISTRY = """
[models.tiny-gpt2]
max_tokens = 64
[models.tiny-gpt2.source]
kind = "random"
family = "gpt2"
seed = 0
config = { n_layer = 2, n_embd = 32, n_head = 4, n_positions = 64 }
"""

PATCHING = {"kind": "patching", "model": "tiny-gpt2", "clean_prompt": "abcd", "corrupted_prompt": "abce",
            "answer": "a", "wrong_answer": "b"}


@pytest.fixture
def runtime(tmp_path: Path) -> WorkerRuntime:
    path = tmp_path / "registry.toml"
    path.write_text(REGISTRY, encoding="utf-8")
    settings = WorkerSettings(model_cache_dir=tmp_path)
    return WorkerRuntime(settings, registry=Registry.from_toml(path))


def _submit(runtime: WorkerRuntime, spec: dict[str, Any], **fields: Any) -> str:
    record = JobRecord(id=f"job-{time.monotonic_ns()}", kind=spec["kind"], model=spec["model"], owner="t",
                       queue="q", created_at=time.time(), spec=spec, **fields)
    runtime.store.create(record)
    return record.id


def test_success_stores_result_stats_and_publishes_the_card(runtime: WorkerRuntime) -> None:
    job_id = _submit(runtime, PATCHING)
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.status == "succeeded" and record.progress == 1.0
    assert record.result is not None and record.result["tokens"] == ["<bos>", "a", "b", "c", "d"]
    stored = result_of("patching", record.result)  # the stored JSON reads back into the kind's typed result
    assert isinstance(stored, PatchingResult) and list(stored.targets) == ["resid_pre"]
    assert record.stats["forwards"] == 2 and record.deliveries == 1
    assert isinstance(runtime.store, MemoryJobStore)
    assert runtime.store.get_meta("card:tiny-gpt2") is not None


def test_core_errors_are_stored_with_code_and_field(runtime: WorkerRuntime) -> None:
    job_id = _submit(runtime, {**PATCHING, "corrupted_prompt": "abcdef"})
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.status == "failed" and record.error is not None
    assert (record.error.code, record.error.field) == ("length_mismatch", "corrupted_prompt")
    assert "Traceback" not in record.error.message


def test_unexpected_errors_become_internal_error_without_details(runtime: WorkerRuntime) -> None:
    job_id = _submit(runtime, {**PATCHING, "model": "not-served"})
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.error is not None and record.error.code == "unknown_model"
    job_id = _submit(runtime, {"kind": "patching", "model": "tiny-gpt2"})  # a spec the API would never send
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.error is not None
    assert record.error.code == "internal_error" and "validation" not in record.error.message.lower()


def test_cancelled_and_finished_jobs_are_skipped(runtime: WorkerRuntime) -> None:
    job_id = _submit(runtime, PATCHING, cancel_requested=True)
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.status == "cancelled" and record.started_at is None
    done = execute_job(runtime, "patching", _submit(runtime, PATCHING))
    assert done is not None
    again = execute_job(runtime, "patching", done.id)  # a redelivered message after success
    assert again is not None and again.finished_at == done.finished_at and again.deliveries == 1


def test_soft_time_limit_fails_the_job_between_chunks(runtime: WorkerRuntime) -> None:
    limits = {**runtime.settings.time_limits, "patching": TimeLimits(soft=0.0, hard=5.0)}
    runtime.settings = runtime.settings.model_copy(update={"time_limits": limits})
    record = execute_job(runtime, "patching", _submit(runtime, PATCHING))
    assert record is not None and record.error is not None and record.error.code == "time_limit"


def test_too_many_deliveries_is_a_retryable_failure(runtime: WorkerRuntime) -> None:
    job_id = _submit(runtime, PATCHING, deliveries=runtime.settings.max_deliveries)
    record = execute_job(runtime, "patching", job_id)
    assert record is not None and record.error is not None
    assert (record.error.code, record.error.retryable) == ("worker_lost", True)

