"""At most one instance runs a job at a time: a claim object with a lease, taken by conditional writes.

S3, SQS and the Knative broker deliver at least once, so the same upload event can reach two
instances at once. Before running a job an instance creates ``results/<job_id>/claim.json`` with
If-None-Match (or replaces an expired claim with If-Match on its ETag): exactly one racer wins. The
winner renews the lease on a timer, every third of it, by If-Match on the ETag of its own last write
(so a renewal can never overwrite another instance's claim), and deletes the claim when the job has
ended. A claim whose instance died (or whose store went away mid-job) stops being renewed and expires
within one lease, so the job is never stuck ``running``: its status reads ``failed``
(``interrupted``) and the next delivery runs it again.

The lease (``DOCFN_JOB_LEASE_SECONDS``, 300 s) is longer than the longest page (a VLM page encode
takes about 90 s on 2 cores): even a renewal thread starved for a whole page keeps its claim. The
interval, not the lease, is what keeps a live job's claim fresh; the lease is only how long a dead
instance's job waits before a redelivery may run it again, and 5 minutes is short next to the
queue's retries and the bucket's 1-day expiry.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import asdict, dataclass

from ..core.errors import Unavailable
from .storage import ObjectMissing, ObjectStore, claim_key

log = logging.getLogger("docfn.jobs")

JSON = "application/json"


class JobInProgress(Unavailable):
    """Another instance holds the job's claim: deliver again later (the broker or queue retries)."""

    code = "job_in_progress"


@dataclass(frozen=True)
class Claim:
    owner: str
    input_sha256: str
    lease_until: float

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Claim | None:
        try:
            data = json.loads(raw)
            return cls(str(data["owner"]), str(data["input_sha256"]), float(data["lease_until"]))
        except (ValueError, TypeError, KeyError):
            return None  # a damaged claim protects nothing: it may be replaced


class ClaimLost(JobInProgress):
    """A renewal found the claim changed: another instance took the job over (this one stalled past
    its lease). This run stops and writes nothing; the redelivery finds the other run's result."""


class JobClaim:
    """One instance's hold on one job, from :meth:`JobClaims.take` until :meth:`release`.

    A background thread renews the lease every third of it while the job runs, whatever the job is
    doing: a VLM page encode outlasts any per-page hook, and a renewal tied to page ends let a healthy
    job's claim lapse mid-page (it read ``interrupted``, and a redelivery ran it a second time). Each
    renewal is a conditional write on the claim's ETag, so it can never overwrite another instance's
    claim: a failed condition means this run lost the job, and :meth:`check` / :meth:`confirm` say so.
    """

    def __init__(self, claims: JobClaims, job_id: str, claim: Claim, etag: str) -> None:
        self._claims = claims
        self.job_id = job_id
        self.claim = claim
        self._etag = etag
        self._lost = False
        self._lock = threading.Lock()  # the timer and the job's own confirm() renew one at a time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_until_released, name=f"lease-{job_id[:8]}")
        self._thread.daemon = True  # a dying process must not wait for its lease thread

    @property
    def lost(self) -> bool:
        return self._lost

    def start(self) -> JobClaim:
        self._thread.start()
        return self

    def _renew_until_released(self) -> None:
        interval = self._claims.renew_interval
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def renew(self) -> bool:
        """Extends the lease by a conditional write; False once the claim is another instance's.

        A store outage is not a loss: the lease still runs for a while and the next tick retries
        (a lease three intervals long survives two failed renewals)."""
        with self._lock:
            if self._lost:
                return False
            lease = self._claims.lease_seconds
            renewed = Claim(self.claim.owner, self.claim.input_sha256, time.time() + lease)
            try:
                etag = self._claims.store.replace(claim_key(self.job_id), renewed.to_json(), JSON, self._etag)
            except Unavailable as exc:
                log.warning("could not renew the claim on job %s: %s", self.job_id, exc.message)
                return True
            if etag is None:
                self._lost = True
                log.warning("job %s was taken over by another instance; this run stops", self.job_id)
                return False
            self.claim, self._etag = renewed, etag
            return True

    def check(self) -> None:
        """Between pages: stop early when the job is no longer this instance's."""
        if self._lost:
            raise self._lost_error()

    def confirm(self) -> None:
        """Before writing results: renew now, so the result is written under a lease just extended
        (a run that stalled past its lease and lost the job finds out here, not after writing)."""
        if not self.renew():
            raise self._lost_error()
        if self.claim.lease_until <= time.time():
            # Renewals kept failing (the store is unreachable) until the lease ran out: another
            # instance may hold the job now, and this run cannot tell, so it must not write.
            raise Unavailable(f"the claim on job {self.job_id} could not be renewed", retry_after=5)

    def _lost_error(self) -> ClaimLost:
        return ClaimLost(
            f"job {self.job_id} was taken over by another instance; its result comes from that run",
            retry_after=5,
        )

    def release(self) -> None:
        """Stops renewing; deletes the claim if it is still ours. Best effort: a claim left behind
        (the store is down) expires with its lease."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self._lost:
            return
        try:
            current = self._claims.read(self.job_id)
            if current is not None and current.owner == self.claim.owner:
                self._claims.store.delete(claim_key(self.job_id))
        except Unavailable as exc:
            log.warning("could not release the claim on job %s: %s", self.job_id, exc.message)


class JobClaims:
    def __init__(self, store: ObjectStore, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        # Three renewals per lease: a healthy job's claim survives two failed ones in a row.
        self.renew_interval = lease_seconds / 3

    def read(self, job_id: str) -> Claim | None:
        raw = self.store.get_optional(claim_key(job_id))
        return None if raw is None else Claim.from_json(raw)

    def alive(self, job_id: str) -> bool:
        """Someone holds the job now (a claim whose lease has not run out)."""
        claim = self.read(job_id)
        return claim is not None and claim.lease_until > time.time()

    def take(self, job_id: str, input_sha256: str) -> JobClaim:
        """The job's claim for this caller, renewed in the background until released, or
        :class:`JobInProgress` when another instance holds it."""
        claim = Claim(uuid.uuid4().hex, input_sha256, time.time() + self.lease_seconds)
        key = claim_key(job_id)
        try:
            current = self.store.get(key)
        except ObjectMissing:
            etag = self.store.put_new(key, claim.to_json(), JSON)
            if etag is not None:
                return JobClaim(self, job_id, claim, etag).start()
            raise self._busy(job_id, None) from None
        held = Claim.from_json(current.data)
        if held is not None and held.lease_until > time.time():
            raise self._busy(job_id, held)
        # Expired (its instance died or lost its store): take it over, unless another racer just did.
        etag = self.store.replace(key, claim.to_json(), JSON, current.etag) if current.etag else None
        if etag is not None:
            return JobClaim(self, job_id, claim, etag).start()
        raise self._busy(job_id, None)

    def _busy(self, job_id: str, held: Claim | None) -> JobInProgress:
        wait = 5 if held is None else max(1, min(60, round(held.lease_until - time.time())))
        return JobInProgress(
            f"job {job_id} is being run by another instance; deliver the event again later",
            retry_after=wait,
        )
