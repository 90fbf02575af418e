"""One webhook POST: signed per Standard Webhooks, sent to an address already checked, redirects never followed.

The request goes to the checked IP address itself, with the ``Host`` header and (for https) the TLS server name
set to the URL's host, so the certificate is still verified against the name while no second DNS lookup can
change where the request goes. Environment proxies are ignored for the same reason. The answer decides what
happens next: 2xx delivered; a redirect or another 4xx is a permanent failure (the receiver said no, or pointed
elsewhere: following it would reach an unchecked address); 5xx and network errors are worth retrying.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from workers.webhooks import CallbackTarget

__all__ = ["DeliveryOutcome", "post_webhook", "signed_headers"]

_MAX_ERROR_CHARS = 300


@dataclass(frozen=True)
class DeliveryOutcome:
    """What one attempt came to: delivered, or why not and whether another attempt may do better."""

    delivered: bool
    retryable: bool = False
    status_code: int | None = None
    error: str | None = None


def signed_headers(secret: str, msg_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``) for ``body``."""
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
    }


def _judge(status: int) -> DeliveryOutcome:
    if 200 <= status < 300:
        return DeliveryOutcome(delivered=True, status_code=status)
    if 300 <= status < 400:
        return DeliveryOutcome(delivered=False, status_code=status,
                               error=f"the receiver answered {status}, a redirect; redirects are never followed")
    return DeliveryOutcome(delivered=False, retryable=status >= 500, status_code=status,
                           error=f"the receiver answered {status}")


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_CHARS]


def post_webhook(
    target: CallbackTarget,
    body: bytes,
    *,
    msg_id: str,
    secret: str,
    timeout_s: float,
    verify: ssl.SSLContext | bool = True,
) -> DeliveryOutcome:
    """POST ``body`` to the first of the target's checked addresses that accepts a connection."""
    url = httpx.URL(target.url)
    headers = {
        "content-type": "application/json",
        "user-agent": "interp-service",
        "host": url.netloc.decode("ascii"),
        **signed_headers(secret, msg_id, body),
    }
    extensions = {"sni_hostname": target.host} if url.scheme == "https" else {}
    error = "no address to connect to"
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False, verify=verify) as client:
        for address in target.addresses:
            request = client.build_request("POST", url.copy_with(host=str(address)), content=body, headers=headers,
                                           extensions=extensions)
            try:
                response = client.send(request, stream=True)  # the status is all we read: never a large body
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                error = _describe(exc)  # nothing was sent: try the next checked address
                continue
            except httpx.TransportError as exc:
                return DeliveryOutcome(delivered=False, retryable=True, error=_describe(exc))
            response.close()
            return _judge(response.status_code)
    return DeliveryOutcome(delivered=False, retryable=True, error=error)
