"""At most one instance runs a job at a time: a claim object with a lease, taken by conditional writes.

S3, SQS and the Knative broker deliver at least once, so the same upload event can reach two
instances at once. Before running a job an instance creates ``results/<job_id>/claim.json`` with
If-None-Match (or replaces an expired claim with If-Match on its ETag): exactly one racer wins. The
winner renews the lease as pages complete and deletes the claim when the job has ended; a claim whose
instance died (or whose store went away mid-job) simply expires, so the job is never stuck
``running``: its status reads ``failed`` (``interrupted``) and the next delivery runs it again.
"""

from __future__ import annotations

import json
import logging
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


class JobClaim:
    """One instance's hold on one job, from :meth:`JobClaims.take` until :meth:`release`."""

    def __init__(self, claims: JobClaims, job_id: str, claim: Claim) -> None:
        self._claims = claims
        self.job_id = job_id
        self.claim = claim
        self._renewed_at = time.monotonic()

    def renew_if_due(self) -> None:
        """Called as pages complete: extends the lease once a third of it has passed."""
        lease = self._claims.lease_seconds
        if time.monotonic() - self._renewed_at < lease / 3:
            return
        self.claim = Claim(self.claim.owner, self.claim.input_sha256, time.time() + lease)
        self._claims.store.put(claim_key(self.job_id), self.claim.to_json(), JSON)
        self._renewed_at = time.monotonic()

    def release(self) -> None:
        """Best effort: a claim left behind (the store is down) expires with its lease."""
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

    def read(self, job_id: str) -> Claim | None:
        raw = self.store.get_optional(claim_key(job_id))
        return None if raw is None else Claim.from_json(raw)

    def alive(self, job_id: str) -> bool:
        """Someone holds the job now (a claim whose lease has not run out)."""
        claim = self.read(job_id)
        return claim is not None and claim.lease_until > time.time()

    def take(self, job_id: str, input_sha256: str) -> JobClaim:
        """The job's claim for this caller, or :class:`JobInProgress` when another instance holds it."""
        claim = Claim(uuid.uuid4().hex, input_sha256, time.time() + self.lease_seconds)
        key = claim_key(job_id)
        try:
            current = self.store.get(key)
        except ObjectMissing:
            if self.store.put_new(key, claim.to_json(), JSON):
                return JobClaim(self, job_id, claim)
            raise self._busy(job_id, None) from None
        held = Claim.from_json(current.data)
        if held is not None and held.lease_until > time.time():
            raise self._busy(job_id, held)
        # Expired (its instance died or lost its store): take it over, unless another racer just did.
        if current.etag and self.store.replace(key, claim.to_json(), JSON, current.etag):
            return JobClaim(self, job_id, claim)
        raise self._busy(job_id, None)

    def _busy(self, job_id: str, held: Claim | None) -> JobInProgress:
        wait = 5 if held is None else max(1, min(60, round(held.lease_until - time.time())))
        return JobInProgress(
            f"job {job_id} is being run by another instance; deliver the event again later",
            retry_after=wait,
        )
