"""Job records: the typed lifecycle of every job, in Redis (production) or in memory (embedded mode).

A record is written before the job is queued and moved through ``queued → running → succeeded | failed |
cancelled`` with a timestamp per state; a running job holds a lease its worker renews, and goes back to ``queued``
when the lease lapses (``workers/reaper.py``). Every change is also appended to the job's event list, which the API
streams as server-sent events and long-polls on, and announced (a Redis publish, or a call to the memory store's
listeners) so the API's waiters know to read the list again (``service/job_events.py``). Records carry their owner
(a tenant id) from the start and expire after a TTL. Errors are stored as ``{code, message, field}``, never as a
traceback.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Literal, Protocol, TypeAlias, cast

import redis
from pydantic import BaseModel, Field

__all__ = [
    "TERMINAL",
    "JobError",
    "JobEvent",
    "JobRecord",
    "JobStatus",
    "JobStore",
    "Listener",
    "MemoryJobStore",
    "RedisJobStore",
    "WebhookDelivery",
    "WebhookStatus",
    "new_job_id",
]

JobStatus: TypeAlias = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
WebhookStatus: TypeAlias = Literal["pending", "delivered", "failed", "refused"]


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobError(BaseModel):
    """What a failed job reports: a stable code, a message for people, the request field at fault."""

    code: str
    message: str
    field: str | None = None
    retryable: bool = False


class WebhookDelivery(BaseModel):
    """How the job's ``callback_url`` delivery went: updated after every attempt (``workers.tasks``).

    ``pending``: an attempt failed with a 5xx or a network error and another is scheduled; ``delivered``: a 2xx;
    ``failed``: a redirect or another 4xx (never retried), or the last retry failed; ``refused``: the address was
    not allowed at delivery time (never retried).
    """

    attempts: int = Field(ge=0, description="POSTs tried so far, at most 1 + INTERP_WEBHOOK_MAX_RETRIES")
    status: WebhookStatus
    last_status_code: int | None = Field(default=None, description="the receiver's last HTTP status, if it answered")
    last_error: str | None = Field(default=None, description="why the last attempt did not deliver")


class JobRecord(BaseModel):
    """One job as stored and as served by ``GET /v1/jobs/{id}``."""

    id: str
    kind: str
    model: str
    owner: str
    queue: str
    status: JobStatus = "queued"
    progress: float = Field(default=0.0, ge=0.0, le=1.0)
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    deliveries: int = 0
    checked: bool = True
    request_id: str | None = None
    spec: dict[str, Any]
    result: dict[str, Any] | None = None
    error: JobError | None = None
    stats: dict[str, float] = Field(default_factory=dict, description="activation-cache hits/misses, seconds")
    webhook: WebhookDelivery | None = None
    lease_until: float | None = Field(
        default=None, description="while running: when the worker's lease ends unless it renews it (it does, often)"
    )
    note: str | None = Field(default=None, description="why the job is where it is after a redelivery or requeue")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class JobEvent(BaseModel):
    """One status or progress change; ``seq`` counts from 0 per job."""

    seq: int
    status: JobStatus
    progress: float
    at: float


Mutator = Callable[[JobRecord], JobRecord | None]
"""Returns the changed record, or ``None`` to leave it as it is."""

Listener = Callable[[str], None]
"""Called with a job id after the job got an event, on the thread that wrote it; must not block."""


class JobStore(Protocol):
    """Where the API and the workers keep job records; both implementations behave the same."""

    def ping(self) -> None: ...

    def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        """Store a new record; with a key already used by the owner, return that job and ``False``."""
        ...

    def release_idempotency_key(self, owner: str, key: str, job_id: str) -> None:
        """Forget that ``key`` names ``job_id`` (a job that was never queued), so a retry makes a new job."""
        ...

    def get(self, job_id: str) -> JobRecord | None: ...

    def page(self, owner: str, *, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        """The owner's jobs, newest first, and their total count."""
        ...

    def update(self, job_id: str, mutate: Mutator) -> JobRecord | None:
        """Apply ``mutate`` atomically; an event is appended when status or progress changed."""
        ...

    def events(self, job_id: str, after: int) -> list[JobEvent]:
        """Events with ``seq > after``, in order."""
        ...

    def queue_position(self, record: JobRecord) -> int | None:
        """0 for the next job to run on its queue; ``None`` when not queued."""
        ...

    def set_meta(self, key: str, value: bytes) -> None: ...

    def get_meta(self, key: str) -> bytes | None: ...

    def put_artifact(self, job_id: str, name: str, data: bytes, ttl_s: int) -> None:
        """Keep a job's file (a large result) for ``ttl_s`` seconds; the API serves it to the job's owner."""
        ...

    def lapsed(self, now: float, limit: int = 100) -> list[str]:
        """Running jobs whose lease ended before ``now``: their worker is gone (the reaper requeues them)."""
        ...

    def get_artifact(self, job_id: str, name: str) -> bytes | None:
        """The file, or ``None`` once it has expired (or was never made)."""
        ...


def _event_for(before: JobRecord | None, after: JobRecord, seq: int) -> JobEvent | None:
    if before is not None and (before.status, before.progress) == (after.status, after.progress):
        return None
    return JobEvent(seq=seq, status=after.status, progress=after.progress, at=time.time())


class MemoryJobStore:
    """Records in this process (embedded mode and unit tests); listeners hear of every event as it is written.

    The worker thread writes and the API's event loop waits, so a listener is the only way across: the API's
    listener hands the job id to its loop (``call_soon_threadsafe``).
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._records: dict[str, JobRecord] = {}
        self._events: dict[str, list[JobEvent]] = defaultdict(list)
        self._idempotency: dict[tuple[str, str], str] = {}
        self._meta: dict[str, bytes] = {}
        self._artifacts: dict[tuple[str, str], tuple[float, bytes]] = {}
        self._seq = 0
        self._order: dict[str, int] = {}

    def ping(self) -> None:
        return None

    def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        with self._lock:
            if idempotency_key is not None:
                existing = self._idempotency.get((record.owner, idempotency_key))
                if existing is not None and existing in self._records:
                    return self._records[existing], False
                self._idempotency[(record.owner, idempotency_key)] = record.id
            self._records[record.id] = record
            self._seq += 1
            self._order[record.id] = self._seq
            self._events[record.id].append(JobEvent(seq=0, status=record.status, progress=0.0, at=record.created_at))
        self._announce(record.id)
        return record, True

    def release_idempotency_key(self, owner: str, key: str, job_id: str) -> None:
        with self._lock:
            if self._idempotency.get((owner, key)) == job_id:
                del self._idempotency[(owner, key)]

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            return self._records.get(job_id)

    def page(self, owner: str, *, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        with self._lock:
            mine = [r for r in self._records.values() if r.owner == owner]
        mine.sort(key=lambda r: self._order[r.id], reverse=True)
        return mine[offset : offset + limit], len(mine)

    def update(self, job_id: str, mutate: Mutator) -> JobRecord | None:
        with self._lock:
            before = self._records.get(job_id)
            if before is None:
                return None
            after = mutate(before.model_copy(deep=True))
            if after is None:
                return before
            self._records[job_id] = after
            events = self._events[job_id]
            event = _event_for(before, after, len(events))
            if event is not None:
                events.append(event)
        if event is not None:
            self._announce(job_id)
        return after

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def _announce(self, job_id: str) -> None:
        """Outside the lock: a listener must never hold up writers, nor run under their lock."""
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(job_id)

    def events(self, job_id: str, after: int) -> list[JobEvent]:
        with self._lock:
            return list(self._events.get(job_id, [])[after + 1 :])

    def queue_position(self, record: JobRecord) -> int | None:
        if record.status != "queued":
            return None
        with self._lock:
            mine = self._order[record.id]
            return sum(
                1
                for r in self._records.values()
                if r.status == "queued" and r.queue == record.queue and self._order[r.id] < mine
            )

    def set_meta(self, key: str, value: bytes) -> None:
        with self._lock:
            self._meta[key] = value

    def get_meta(self, key: str) -> bytes | None:
        with self._lock:
            return self._meta.get(key)

    def lapsed(self, now: float, limit: int = 100) -> list[str]:
        with self._lock:
            return [r.id for r in self._records.values()
                    if r.status == "running" and r.lease_until is not None and r.lease_until < now][:limit]

    def put_artifact(self, job_id: str, name: str, data: bytes, ttl_s: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._artifacts = {k: v for k, v in self._artifacts.items() if v[0] > now}  # expired ones go now
            self._artifacts[(job_id, name)] = (now + ttl_s, data)

    def get_artifact(self, job_id: str, name: str) -> bytes | None:
        with self._lock:
            held = self._artifacts.get((job_id, name))
        return held[1] if held is not None and held[0] > time.monotonic() else None


class RedisJobStore:
    """Records as JSON strings with a TTL; per-job event lists; a sorted set per owner and per queue.

    Updates use WATCH/MULTI, so a worker's progress write never overwrites a concurrent cancel. Each event is
    published on ``{prefix}wake:{job_id}`` (the payload is its seq), which the API subscribes to by pattern.
    """

    def __init__(self, client: redis.Redis, *, prefix: str, ttl_s: int) -> None:
        self._r = client
        self._p = prefix
        self._ttl = ttl_s

    def _job(self, job_id: str) -> str:
        return f"{self._p}job:{job_id}"

    def _ev(self, job_id: str) -> str:
        return f"{self._p}events:{job_id}"

    @property
    def wake_prefix(self) -> str:
        """Every wake channel is this prefix plus a job id."""
        return f"{self._p}wake:"

    def _channel(self, job_id: str) -> str:
        return f"{self.wake_prefix}{job_id}"

    def _owner(self, owner: str) -> str:
        return f"{self._p}owner:{owner}"

    def _queued(self, queue: str) -> str:
        return f"{self._p}queued:{queue}"

    @property
    def _leases(self) -> str:
        """Running jobs by the end of their lease: the reaper's index (the records stay the truth)."""
        return f"{self._p}leases"

    def lapsed(self, now: float, limit: int = 100) -> list[str]:
        ids = cast(list[bytes], self._r.zrangebyscore(self._leases, "-inf", now, start=0, num=limit))
        return [i.decode() for i in ids]

    def ping(self) -> None:
        self._r.ping()

    def _idem(self, owner: str, key: str) -> str:
        return f"{self._p}idem:{owner}:{key}"

    def release_idempotency_key(self, owner: str, key: str, job_id: str) -> None:
        name = self._idem(owner, key)
        with self._r.pipeline() as pipe:
            try:
                pipe.watch(name)  # type: ignore[no-untyped-call]
                if pipe.get(name) == job_id.encode():
                    pipe.multi()
                    pipe.delete(name)
                    pipe.execute()
            except redis.WatchError:
                pass  # the key was reused meanwhile: it names another job now

    def create(self, record: JobRecord, *, idempotency_key: str | None = None) -> tuple[JobRecord, bool]:
        if idempotency_key is not None:
            key = self._idem(record.owner, idempotency_key)
            if not self._r.set(key, record.id, nx=True, ex=self._ttl):
                existing_id = self._r.get(key)
                existing = self.get(existing_id.decode()) if isinstance(existing_id, bytes) else None
                if existing is not None:
                    return existing, False
                self._r.set(key, record.id, ex=self._ttl)
        event = JobEvent(seq=0, status=record.status, progress=0.0, at=record.created_at)
        pipe = self._r.pipeline()
        pipe.set(self._job(record.id), record.model_dump_json(), ex=self._ttl)
        pipe.rpush(self._ev(record.id), event.model_dump_json())
        pipe.expire(self._ev(record.id), self._ttl)
        pipe.zadd(self._owner(record.owner), {record.id: record.created_at})
        pipe.zadd(self._queued(record.queue), {record.id: record.created_at})
        pipe.execute()
        return record, True

    def get(self, job_id: str) -> JobRecord | None:
        raw = self._r.get(self._job(job_id))
        return None if raw is None else JobRecord.model_validate_json(raw)

    def page(self, owner: str, *, offset: int, limit: int) -> tuple[list[JobRecord], int]:
        key = self._owner(owner)
        self._r.zremrangebyscore(key, "-inf", time.time() - self._ttl)  # expired records
        total = int(self._r.zcard(key))
        ids = [i.decode() for i in cast(list[bytes], self._r.zrevrange(key, offset, offset + limit - 1))]
        raws = self._r.mget([self._job(i) for i in ids]) if ids else []
        records = [JobRecord.model_validate_json(raw) for raw in raws if raw is not None]
        return records, total

    def update(self, job_id: str, mutate: Mutator) -> JobRecord | None:
        key = self._job(job_id)
        with self._r.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    raw = pipe.get(key)
                    if raw is None:
                        pipe.unwatch()
                        return None
                    before = JobRecord.model_validate_json(raw)
                    after = mutate(before.model_copy(deep=True))
                    if after is None:
                        pipe.unwatch()
                        return before
                    n_events = int(pipe.llen(self._ev(job_id)))
                    event = _event_for(before, after, n_events)
                    pipe.multi()
                    pipe.set(key, after.model_dump_json(), ex=self._ttl)
                    if event is not None:
                        pipe.rpush(self._ev(job_id), event.model_dump_json())
                        pipe.publish(self._channel(job_id), str(event.seq))
                    if after.status != "queued":
                        pipe.zrem(self._queued(after.queue), job_id)
                    elif before.status != "queued":  # requeued: back in line, by its submission time
                        pipe.zadd(self._queued(after.queue), {job_id: after.created_at})
                    if after.status == "running" and after.lease_until is not None:
                        pipe.zadd(self._leases, {job_id: after.lease_until})
                    else:
                        pipe.zrem(self._leases, job_id)
                    pipe.execute()
                    return after
                except redis.WatchError:
                    continue

    def events(self, job_id: str, after: int) -> list[JobEvent]:
        raws = self._r.lrange(self._ev(job_id), after + 1, -1)
        return [JobEvent.model_validate_json(raw) for raw in raws]

    def queue_position(self, record: JobRecord) -> int | None:
        if record.status != "queued":
            return None
        rank = cast(int | None, self._r.zrank(self._queued(record.queue), record.id))
        return None if rank is None else int(rank)

    def set_meta(self, key: str, value: bytes) -> None:
        self._r.set(f"{self._p}meta:{key}", value)

    def get_meta(self, key: str) -> bytes | None:
        raw = self._r.get(f"{self._p}meta:{key}")
        return raw if isinstance(raw, bytes) else None

    def _artifact(self, job_id: str, name: str) -> str:
        return f"{self._p}artifact:{job_id}:{name}"

    def put_artifact(self, job_id: str, name: str, data: bytes, ttl_s: int) -> None:
        self._r.set(self._artifact(job_id, name), data, ex=ttl_s)

    def get_artifact(self, job_id: str, name: str) -> bytes | None:
        raw = self._r.get(self._artifact(job_id, name))
        return raw if isinstance(raw, bytes) else None
