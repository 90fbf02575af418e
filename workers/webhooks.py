"""Where a webhook may go: ``callback_url`` is checked at submission and again at delivery, on the same rules.

The URL must be https (http only with ``INTERP_WEBHOOK_ALLOW_HTTP``), and its host, a name or a literal address,
must resolve to public addresses only: every address ``getaddrinfo`` gives must be globally routable (no loopback,
link-local, private, ULA, multicast, reserved, unspecified or CGNAT address, nor one in
``INTERP_WEBHOOK_DENY_NETWORKS``), unless it is in ``INTERP_WEBHOOK_ALLOW_NETWORKS``, which wins over every other
rule (for tests and private deployments). IPv4 addresses embedded in IPv6 ones (mapped, 6to4, NAT64) are judged as
the IPv4 address they carry. Names that do not resolve are refused.

:func:`resolve_callback` returns the addresses it checked, and the delivery connects to one of those (see
:mod:`workers.webhook_delivery`), so a name that re-resolves elsewhere between the check and the connection (DNS
rebinding) cannot move the request. Torch-free: the API imports it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from workers.core.errors import CoreError

__all__ = [
    "DEFAULT_DENY_NETWORKS",
    "CallbackTarget",
    "CallbackUnresolvedError",
    "InvalidCallbackUrlError",
    "IpAddress",
    "IpNetwork",
    "WebhookPolicy",
    "check_callback_url",
    "refusal",
    "resolve_callback",
    "secret_problem",
    "system_resolver",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int, float], list[IpAddress]]
"""``(host, port, timeout_s)`` → every address of ``host``; raises :class:`OSError` when it does not resolve."""

DEFAULT_DENY_NETWORKS = "10.96.0.0/12,10.244.0.0/16,10.42.0.0/16,10.43.0.0/16,172.20.0.0/16"
"""Common Kubernetes service and pod ranges (kubeadm, flannel, k3s, EKS services). All are private already; a
cluster on public-looking ranges names its own in ``INTERP_WEBHOOK_DENY_NETWORKS``."""

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598 (carrier-grade NAT); not is_private in the stdlib
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_SECRET_PREFIX = "whsec_"
_SECRET_BYTES = (24, 64)  # the Standard Webhooks spec's range for the random key


class InvalidCallbackUrlError(CoreError):
    """A ``callback_url`` that webhooks may not be sent to."""

    code = "invalid_callback_url"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="callback_url")


class CallbackUnresolvedError(InvalidCallbackUrlError):
    """The host did not resolve (in time): refused at submission, a retryable network error at delivery."""


def system_resolver(host: str, port: int, timeout_s: float) -> list[IpAddress]:
    """``socket.getaddrinfo`` bounded by ``timeout_s`` (it has no timeout of its own): a daemon thread waits for it,
    so a hung lookup costs the caller ``timeout_s`` and never holds up interpreter exit."""
    found: list[IpAddress] = []
    failure: list[OSError] = []

    def lookup() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            # A scoped IPv6 address comes back as "fe80::1%eth0": the scope is not part of the address.
            found.extend(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
        except OSError as exc:
            failure.append(exc)

    thread = threading.Thread(target=lookup, name="interp-resolve", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if failure:
        raise failure[0]
    return list(dict.fromkeys(found))  # one entry per address, in the resolver's order


@dataclass(frozen=True)
class WebhookPolicy:
    """The rules a ``callback_url`` is checked against; built from :class:`WorkerSettings` (``webhook_policy``)."""

    allow_http: bool = False
    deny_networks: tuple[IpNetwork, ...] = ()
    allow_networks: tuple[IpNetwork, ...] = ()
    resolve_timeout_s: float = 2.0
    enabled: bool = True
    """False when the server has no webhook secret (``interp serve`` without one): every callback is refused."""
    resolver: Resolver = field(default=system_resolver, compare=False)


@dataclass(frozen=True)
class CallbackTarget:
    """A checked callback: the URL as given and the addresses its host resolved to, every one allowed."""

    url: str
    host: str
    port: int
    addresses: tuple[IpAddress, ...]


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where a packet to it ends up."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _category(address: IpAddress) -> str | None:
    """Why an address is not a public one, or ``None`` when it is globally routable."""
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (CGNAT)"
    if address.is_private:
        return "private"
    if address.is_reserved:
        return "reserved"
    if not address.is_global:
        return "special-purpose"
    return None


def refusal(address: IpAddress, policy: WebhookPolicy) -> str | None:
    """Why ``address`` may not receive webhooks (``"a loopback address"``), or ``None`` when it may."""
    judged = [address] if (inner := _embedded_ipv4(address)) is None else [address, inner]
    if any(a in net for a in judged for net in policy.allow_networks):
        return None
    if any(a in net for a in judged for net in policy.deny_networks):
        return "an address in INTERP_WEBHOOK_DENY_NETWORKS"
    for candidate in ([inner] if inner is not None else [address]):
        category = _category(candidate)
        if category is not None:
            return f"a {category} address"
    return None


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve_callback(url: str, policy: WebhookPolicy) -> CallbackTarget:
    """Resolve ``url``'s host once and check every address; the target holds exactly the addresses checked."""
    if not policy.enabled:
        raise InvalidCallbackUrlError("this server sends no webhooks: INTERP_WEBHOOK_SECRET is not set")
    parts = urlsplit(url)
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        raise InvalidCallbackUrlError(f"callback_url must use {' or '.join(allowed)}, not {parts.scheme or 'none'}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise InvalidCallbackUrlError("callback_url has an invalid port") from exc
    host = parts.hostname
    if not host:
        raise InvalidCallbackUrlError("callback_url has no host")
    literal = _literal(host)
    try:
        addresses = [literal] if literal is not None else policy.resolver(host, port, policy.resolve_timeout_s)
    except OSError as exc:
        raise CallbackUnresolvedError(f"callback_url host {host!r} does not resolve ({exc})") from exc
    if not addresses:
        raise CallbackUnresolvedError(f"callback_url host {host!r} does not resolve")
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            # A name's addresses stay out of the message: it would turn the API into an oracle of internal DNS.
            shown = f"is {reason}" if literal is not None else f"resolves to {reason}"
            raise InvalidCallbackUrlError(f"callback_url must reach public addresses only: {host} {shown}")
    return CallbackTarget(url=url, host=host, port=port, addresses=tuple(addresses))


def check_callback_url(url: str, policy: WebhookPolicy) -> None:
    """Raise :class:`InvalidCallbackUrlError` (400, ``field: callback_url``) unless webhooks may go to ``url``."""
    resolve_callback(url, policy)


def secret_problem(secret: str) -> str | None:
    """What makes ``secret`` unusable as a Standard Webhooks secret, or ``None``: ``whsec_`` followed by the
    base64 of 24 to 64 random bytes. The standard library's decoder alone would accept ``change-me``."""
    if not secret.startswith(_SECRET_PREFIX):
        return 'not a Standard Webhooks secret (whsec_ and base64); make one: echo "whsec_$(openssl rand -base64 32)"'
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding is optional
    except (binascii.Error, ValueError):
        return "the part after whsec_ is not base64"
    low, high = _SECRET_BYTES
    if not low <= len(key) <= high:
        return f"the key is {len(key)} bytes; a Standard Webhooks secret holds {low} to {high} random bytes"
    return None
