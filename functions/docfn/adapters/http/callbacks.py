"""A task's callback: its final status POSTed to the caller's URL, signed with the caller's secret.

MinerU 4.0.12's own server defines no callback delivery to copy: its ``CreateJobRequest`` has a
``callback {url, secret}`` field, and its servers answer 400 to any request that sets it ("Webhook
callbacks are not supported by this service"). docfn delivers them, signed as common webhook senders
sign (Stripe's scheme), so a receiver can tell a docfn callback from a forged one and an old one:

    X-Docfn-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares it in constant
time and refuses stale timestamps. Without a secret the body is sent unsigned. The URL follows the
rules of URL inputs (``url_targets``): checked when the task is created (400) and again when sent,
dialled at the checked address, no redirect followed. Delivery is tried up to three times (network
errors, 429, 5xx), each within ``DOCFN_URL_FETCH_TIMEOUT_SECONDS``; its outcome is logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.errors import BadInput, DocfnError
from ...core.settings import Settings
from .url_targets import UrlTargets, pinned

if TYPE_CHECKING:  # imported where used: httpx imports click, which a cold start need not pay for
    import httpx

log = logging.getLogger("docfn.jobs")

SIGNATURE_HEADER = "X-Docfn-Signature"
ATTEMPTS = 3
BACKOFF_SECONDS = 1.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class CallbackSender:
    settings: Settings

    def check(self, url: str) -> None:
        """Refuses (400) a callback URL the rules of URL inputs do not let this function reach."""
        import httpx

        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise BadInput(f"callback.url is not a URL: {exc}") from None
        UrlTargets(self.settings).checked_address(parsed)

    def send(self, url: str, secret: str | None, body: bytes, headers: dict[str, str]) -> bool:
        """POSTs ``body`` (JSON) to ``url``, signed when there is a secret; whether it was accepted
        (a 2xx), after up to :data:`ATTEMPTS` tries."""
        import httpx

        for attempt in range(1, ATTEMPTS + 1):
            sent = dict(headers, **{"Content-Type": "application/json"})
            if secret:
                sent[SIGNATURE_HEADER] = signature(secret, int(time.time()), body)
            try:
                status = self._post(httpx.URL(url), body, sent)
            except (httpx.HTTPError, DocfnError) as exc:
                reason = exc.message if isinstance(exc, DocfnError) else f"{type(exc).__name__} {exc}"
                log.warning("callback to %s failed (attempt %d): %s", url, attempt, reason)
                if isinstance(exc, BadInput):
                    return False  # the URL is not allowed (any more): trying again changes nothing
            else:
                if 200 <= status < 300:
                    log.info("callback to %s answered %d", url, status)
                    return True
                log.warning("callback to %s answered %d (attempt %d)", url, status, attempt)
                if status < 500 and status != 429:
                    return False
            if attempt < ATTEMPTS:
                time.sleep(BACKOFF_SECONDS * attempt)
        return False

    def _post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> int:
        import httpx

        target, host, sni = pinned(url, UrlTargets(self.settings).checked_address(url))
        timeout = httpx.Timeout(self.settings.url_fetch_timeout_seconds)
        # trust_env=False: an environment proxy would connect to the unchecked host name itself.
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False) as client:
            response = client.post(target, content=body, headers={**headers, **host}, extensions=sni)
            return response.status_code
