"""The combiner: concurrent callers' requests in one batch, each caller its own result or its own exception."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from workers.core.combiner import Combiner, Shared


class _Recorder:
    """``run_batch`` that doubles numbers, refuses negatives, and remembers every batch it ran."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self._lock = threading.Lock()

    def __call__(self, requests: Sequence[int]) -> list[int]:
        with self._lock:
            self.batches.append(list(requests))
        if any(r < 0 for r in requests):
            raise ValueError(f"negative request in {list(requests)}")
        return [2 * r for r in requests]


def _combiner(recorder: _Recorder, *, wait_s: float = 2.0, budget: int = 100, by_parity: bool = False) -> Combiner[
    int, int
]:
    return Combiner(
        recorder,
        max_wait_s=wait_s,
        fits=lambda requests: sum(abs(r) for r in requests) <= budget,
        key=(lambda r: r % 2) if by_parity else (lambda r: None),
    )


def _submit_all(combiner: Combiner[int, int], requests: Sequence[int]) -> list[Shared[int] | BaseException]:
    """Each request from a thread of its own, every thread a member first (a worker's running jobs)."""
    entered = threading.Barrier(len(requests))

    def one(request: int) -> Shared[int] | BaseException:
        with combiner.member():
            entered.wait()  # every member counted before anyone submits: the leader then waits for all
            try:
                return combiner.submit(request)
            except Exception as exc:
                return exc

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests))


def test_concurrent_members_share_one_batch() -> None:
    recorder = _Recorder()
    outcomes = _submit_all(_combiner(recorder), [1, 2, 3, 4, 5, 6])
    assert [o.value for o in outcomes if isinstance(o, Shared)] == [2, 4, 6, 8, 10, 12]
    assert [o.batch_size for o in outcomes if isinstance(o, Shared)] == [6] * 6
    assert len(recorder.batches) == 1 and sorted(recorder.batches[0]) == [1, 2, 3, 4, 5, 6]


def test_a_failing_request_fails_alone() -> None:
    recorder = _Recorder()
    outcomes = _submit_all(_combiner(recorder), [1, -7, 3, 4])
    assert isinstance(outcomes[1], ValueError) and "[-7]" in str(outcomes[1])
    assert [o.value for o in outcomes if isinstance(o, Shared)] == [2, 6, 8]
    assert len(recorder.batches[0]) == 4  # the shared batch failed, then each ran alone
    assert sorted(len(b) for b in recorder.batches[1:]) == [1, 1, 1, 1]


def test_keys_and_budget_split_batches() -> None:
    recorder = _Recorder()
    outcomes = _submit_all(_combiner(recorder, budget=10, by_parity=True), [1, 2, 3, 4, 5, 6, 7])
    assert [o.value for o in outcomes if isinstance(o, Shared)] == [2, 4, 6, 8, 10, 12, 14]
    for batch in recorder.batches:
        assert len({r % 2 for r in batch}) == 1
        assert sum(batch) <= 10 or len(batch) == 1
    assert sorted(r for batch in recorder.batches for r in batch) == [1, 2, 3, 4, 5, 6, 7]


def test_a_lone_job_does_not_wait_for_company() -> None:
    recorder = _Recorder()
    combiner = _combiner(recorder, wait_s=30.0)
    with combiner.member():
        assert combiner.submit(21) == Shared(42, 1)  # the only member is here: no wait for the 30 s


def test_the_wait_is_bounded_when_a_member_never_submits() -> None:
    recorder = _Recorder()
    combiner = _combiner(recorder, wait_s=0.05)
    with combiner.member(), combiner.member():  # a second running job that hands in nothing
        assert combiner.submit(5).value == 10


def test_zero_wait_runs_each_request_alone() -> None:
    recorder = _Recorder()
    outcomes = _submit_all(_combiner(recorder, wait_s=0.0), [1, 2, 3, 4])
    assert [o.batch_size for o in outcomes if isinstance(o, Shared)] == [1, 1, 1, 1]
    assert sorted(len(b) for b in recorder.batches) == [1, 1, 1, 1]


def test_an_interrupt_reaches_every_waiting_caller() -> None:
    def interrupted(_: Sequence[int]) -> list[int]:
        raise KeyboardInterrupt

    combiner: Combiner[int, int] = Combiner(interrupted, max_wait_s=0.0, fits=lambda _: True, key=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        combiner.submit(1)
