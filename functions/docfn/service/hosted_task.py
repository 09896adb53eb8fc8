"""A task as the service hosts it (KServe's model server, in small): its packs, its lazy load, and
what readiness makes of it.

``load()`` fetches and verifies every pack the task uses, then lets the task build its sessions,
exactly once even under concurrent callers. A failed load is not remembered as loaded: the next
request tries again. Load failures are translated to docfn errors here, once, and recorded here only.

A load run ahead of any request (``DOCFN_EAGER_LOAD``: Knative start-up, Lambda init) also warms
the sessions up (:meth:`Task.warm_up`), and keeps its report until the first request claims it:
that request is the instance's cold one, whether it arrived while the load ran (``load_wait`` says
how long it waited) or after.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..core import metrics
from ..core.errors import ConfigurationError, DocfnError, Unavailable
from ..packs.refs import PackRef
from ..packs.store import LocalPack
from ..tasks.contract import Task
from .pack_sources import PackResolver


@dataclass
class LoadReport:
    """What a cold start cost, by phase (seconds); ``performed`` only for the caller that did it."""

    phases: dict[str, float] = field(default_factory=dict)
    performed: bool = False


class HostedTask:
    def __init__(
        self,
        task: Task,
        refs: dict[str, PackRef],
        packs: PackResolver,
        optional: dict[str, PackRef] | None = None,
    ) -> None:
        self.task = task
        self.refs = refs  # role -> pack, in the task's declared order
        self.optional = optional or {}  # role -> pack loaded on the first request needing it
        self._loaded_optional: set[str] = set()
        self._optional_lock = threading.Lock()
        self._packs = packs
        self.ready = not refs  # a task without packs has nothing to load
        self.load_error: DocfnError | None = None
        self._lock = threading.Lock()
        self._unclaimed: LoadReport | None = None  # an eager load's report, for the first request
        self._claim_lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.task.name

    @property
    def version_id(self) -> str:
        """Feeds the cache key: every pack that shapes the result, so a new pack never serves old ones."""
        if not self.refs:
            return f"{self.name}-builtin@1"
        return "+".join(ref.pack_id for ref in self.refs.values())

    def local_pack(self, role: str) -> LocalPack:
        """A verified local copy of the pack bound to ``role`` (what the page's browser OCR fetches)."""
        return self._packs.materialise(self.refs[role])

    def version_for(self, optional_roles: tuple[str, ...]) -> str:
        """:attr:`version_id` plus the optional packs a request uses (they shape its result too)."""
        return "+".join([self.version_id, *(self.optional[role].pack_id for role in optional_roles)])

    def load_optional(self, roles: tuple[str, ...]) -> LoadReport:
        """Fetch and load the optional packs ``roles`` not loaded yet (after :meth:`load`). A failure
        fails the request only (503 for a pack not configured or published): it is not remembered,
        and readiness does not depend on it, so a pack published later is picked up."""
        missing = [role for role in roles if role not in self._loaded_optional]
        if not missing:
            return LoadReport()
        with self._optional_lock:
            report = LoadReport(phases={"fetch": 0.0, "verify": 0.0}, performed=True)
            for role in missing:
                if role in self._loaded_optional:
                    continue
                try:
                    pack = self._packs.materialise(self.optional[role])
                    start = time.perf_counter()
                    self.task.load_optional(role, pack)
                except Exception as exc:
                    error = self._translated(exc)
                    if error is exc:
                        raise
                    raise error from exc
                report.phases["fetch"] += pack.fetch_seconds
                report.phases["verify"] += pack.verify_seconds
                report.phases[f"session_create_{role}"] = time.perf_counter() - start
                self._loaded_optional.add(role)
            return report

    @property
    def in_rotation(self) -> bool:
        """Ready, or not loaded yet, or failed transiently (S3 unreachable: 503): such an instance stays
        in rotation, else no request would ever arrive to retry the load. A broken configuration
        takes it out."""
        return self.ready or self.load_error is None or isinstance(self.load_error, Unavailable)

    def load(self, *, eager: bool = False) -> LoadReport:
        """Load once; a request's report says whether it paid for (or waited on) the load.

        ``eager``: loading ahead of requests; the report is kept for the first request to claim.
        """
        if self.ready:
            return LoadReport() if eager else self._claim(0.0)
        waiting = time.perf_counter()
        with self._lock:
            if self.ready:
                return LoadReport() if eager else self._claim(time.perf_counter() - waiting)
            started = time.perf_counter()
            try:
                report = self._load(warm_up=eager)
            except Exception as exc:
                metrics.MODEL_LOAD_FAILURES.labels(self.name).inc()
                error = self._translated(exc)
                self.load_error = error
                if error is exc:
                    raise
                raise error from exc
            self.ready, self.load_error = True, None
            metrics.COLD_STARTS.labels(self.name).inc()
            metrics.MODEL_LOAD_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            if eager:
                self._unclaimed = report
                return LoadReport()
            return report

    def _claim(self, waited: float) -> LoadReport:
        """The eager load's report for the first request after it (once), else an empty one."""
        with self._claim_lock:  # two first requests at once: one of them is the cold one
            report, self._unclaimed = self._unclaimed, None
        if report is None:
            return LoadReport()
        return LoadReport(phases={**report.phases, "load_wait": waited}, performed=True)

    def _load(self, *, warm_up: bool) -> LoadReport:
        report = LoadReport(phases={"fetch": 0.0, "verify": 0.0} if self.refs else {}, performed=True)
        # A task's packs (parse: layout + OCR) download at once: the fetch is network-bound. The
        # phases add up each pack's own time, so with two packs they can exceed the wall time.
        with ThreadPoolExecutor(max_workers=max(1, len(self.refs)), thread_name_prefix="docfn-packs") as pool:
            fetched = list(pool.map(self._packs.materialise, self.refs.values()))
        local: dict[str, LocalPack] = dict(zip(self.refs, fetched, strict=True))
        for pack in fetched:
            report.phases["fetch"] += pack.fetch_seconds
            report.phases["verify"] += pack.verify_seconds
        start = time.perf_counter()
        self.task.load(local)
        if self.refs:
            report.phases["session_create"] = time.perf_counter() - start
        if warm_up:  # ahead of requests only: a request never pays for a warm-up it does not need
            start = time.perf_counter()
            self.task.warm_up()
            report.phases["warm_up"] = time.perf_counter() - start
        return report

    def _translated(self, exc: Exception) -> DocfnError:
        """Every load failure as a docfn error: I/O is transient (503, retry), the rest is config."""
        if isinstance(exc, DocfnError):
            return exc
        if isinstance(exc, OSError):
            return Unavailable(f"model pack for {self.name} could not be loaded: {exc}", retry_after=5)
        return ConfigurationError(f"model pack for {self.name} could not be loaded: {exc}")
