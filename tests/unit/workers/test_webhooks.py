"""Where a webhook may go: every refused range (IPv4 and IPv6), names, schemes, the allow and deny lists, secrets.

Names resolve through a resolver given in the policy (a table here), so a name can resolve to a private address
or to one public and one private address without any DNS; ``localhost`` and the time limit use the real lookup.
No test connects anywhere: the policy only resolves and judges.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import pytest

from workers.settings import SettingsError, WorkerSettings
from workers.webhooks import (
    CallbackUnresolvedError,
    InvalidCallbackUrlError,
    IpAddress,
    WebhookPolicy,
    check_callback_url,
    resolve_callback,
    secret_problem,
    system_resolver,
)

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:4700:4700::1111"


def table(names: dict[str, list[str]]) -> WebhookPolicy:
    """A policy whose resolver answers from ``names`` (a name not there does not resolve)."""

    def resolve(host: str, port: int, timeout_s: float) -> list[IpAddress]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in names[host]]

    return WebhookPolicy(resolver=resolve)


def refused(url: str, policy: WebhookPolicy) -> str:
    with pytest.raises(InvalidCallbackUrlError) as info:
        check_callback_url(url, policy)
    assert (info.value.code, info.value.field) == ("invalid_callback_url", "callback_url")
    return info.value.message


REFUSED_V4 = [
    ("127.0.0.1", "loopback"),
    ("127.45.6.7", "loopback"),
    ("0.0.0.0", "unspecified"),
    ("169.254.169.254", "link-local"),  # cloud metadata
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("100.64.0.1", "shared (CGNAT)"),
    ("100.127.255.254", "shared (CGNAT)"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "private"),  # reserved class E; the stdlib counts it private too
    ("255.255.255.255", "private"),
    ("192.0.2.10", "private"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "private"),  # benchmarking
]
REFUSED_V6 = [
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),  # ULA
    ("fd12:3456:789a::1", "private"),  # ULA
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),  # global-scope multicast: is_global in the stdlib, refused all the same
    ("2001:db8::1", "private"),  # documentation
    ("100::1", "private"),  # discard-only
    ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped: judged as the IPv4 address
    ("::ffff:10.1.2.3", "private"),
    ("2002:a9fe:a9fe::1", "link-local"),  # 6to4 of 169.254.169.254
    ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
]


@pytest.mark.parametrize(("address", "category"), REFUSED_V4)
def test_every_non_public_ipv4_literal_is_refused(address: str, category: str) -> None:
    message = refused(f"https://{address}/hook", WebhookPolicy())
    assert message == f"callback_url must reach public addresses only: {address} is a {category} address"


@pytest.mark.parametrize(("address", "category"), REFUSED_V6)
def test_every_non_public_ipv6_literal_is_refused(address: str, category: str) -> None:
    message = refused(f"https://[{address}]:8443/hook", WebhookPolicy())
    assert message.endswith(f"is a {category} address")


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V6, "::ffff:93.184.215.14", "2002:5db8:d70e::1"])
def test_public_literals_pass_and_are_the_target(address: str) -> None:
    host = f"[{address}]" if ":" in address else address
    target = resolve_callback(f"https://{host}/hook?x=1", WebhookPolicy())
    assert target.addresses == (ipaddress.ip_address(address),)
    assert (target.host, target.port) == (address, 443)


def test_a_name_resolving_to_a_private_address_is_refused_without_naming_the_address() -> None:
    policy = table({"hooks.example.com": ["10.20.30.40"]})
    message = refused("https://hooks.example.com/hook", policy)
    assert message == "callback_url must reach public addresses only: hooks.example.com resolves to a private address"
    assert "10.20.30.40" not in message  # the API is no oracle of internal DNS


@pytest.mark.parametrize("private", ["10.0.0.7", "fd00::7", "169.254.169.254", "::1"])
def test_one_private_address_among_public_ones_refuses_the_name(private: str) -> None:
    policy = table({"mixed.example.com": [PUBLIC_V4, PUBLIC_V6, private]})
    assert "mixed.example.com resolves to a" in refused("https://mixed.example.com/", policy)


def test_a_name_with_public_addresses_only_gives_every_address() -> None:
    target = resolve_callback("https://hooks.example.com:8443/h", table({"hooks.example.com": [PUBLIC_V4, PUBLIC_V6]}))
    assert target.addresses == (ipaddress.ip_address(PUBLIC_V4), ipaddress.ip_address(PUBLIC_V6))
    assert target.port == 8443


def test_names_that_do_not_resolve_are_refused() -> None:
    with pytest.raises(CallbackUnresolvedError) as info:
        check_callback_url("https://nowhere.example.com/", table({}))
    assert info.value.code == "invalid_callback_url"
    assert info.value.message.startswith("callback_url host 'nowhere.example.com' does not resolve")
    with pytest.raises(CallbackUnresolvedError):
        check_callback_url("https://empty.example.com/", table({"empty.example.com": []}))


def test_localhost_resolves_for_real_and_is_refused() -> None:
    message = refused("https://localhost:6379/", WebhookPolicy())  # e.g. a Redis on the API's host
    assert message.endswith("localhost resolves to a loopback address")


def test_a_lookup_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*_: object, **__: object) -> list[object]:
        release.wait(10)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    try:
        with pytest.raises(CallbackUnresolvedError, match=r"does not resolve \(no answer within 0.2 s\)"):
            check_callback_url("https://slow.example.com/", WebhookPolicy(resolve_timeout_s=0.2))
    finally:
        release.set()
    assert time.monotonic() - started < 2


def test_system_resolver_answers_literals_and_names() -> None:
    assert system_resolver("127.0.0.1", 443, 2.0) == [ipaddress.ip_address("127.0.0.1")]
    assert ipaddress.ip_address("127.0.0.1") in system_resolver("localhost", 443, 2.0)


def test_http_only_when_allowed_and_other_schemes_never() -> None:
    assert refused(f"http://{PUBLIC_V4}/hook", WebhookPolicy()) == "callback_url must use https, not http"
    check_callback_url(f"http://{PUBLIC_V4}/hook", WebhookPolicy(allow_http=True))
    assert refused(f"ftp://{PUBLIC_V4}/hook", WebhookPolicy(allow_http=True)) == (
        "callback_url must use https or http, not ftp"
    )
    # Allowing http allows no address: loopback over http is still refused.
    assert refused("http://127.0.0.1:8000/hook", WebhookPolicy(allow_http=True)).endswith("a loopback address")


def test_the_allow_list_wins_over_every_rule_and_only_for_its_networks() -> None:
    loopback = WebhookPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),))
    check_callback_url("https://127.0.0.1:9000/hook", loopback)
    check_callback_url("https://[::ffff:127.0.0.1]:9000/hook", loopback)  # the mapped form reaches the same host
    assert refused("https://[::1]/hook", loopback).endswith("a loopback address")  # IPv6 loopback not listed
    assert refused("https://10.0.0.1/hook", loopback).endswith("a private address")
    both = WebhookPolicy(allow_networks=(ipaddress.ip_network("10.96.0.0/12"),),
                         deny_networks=(ipaddress.ip_network("10.96.0.0/12"),))
    check_callback_url("https://10.96.0.1/hook", both)  # allowed despite the deny list


def test_the_deny_list_refuses_public_looking_cluster_ranges() -> None:
    policy = WebhookPolicy(deny_networks=(ipaddress.ip_network("93.184.215.0/24"),))
    assert refused(f"https://{PUBLIC_V4}/", policy).endswith("is an address in INTERP_WEBHOOK_DENY_NETWORKS")
    check_callback_url(f"https://[{PUBLIC_V6}]/", policy)


def test_without_a_secret_every_callback_is_refused() -> None:
    assert refused(f"https://{PUBLIC_V4}/", WebhookPolicy(enabled=False)) == (
        "this server sends no webhooks: INTERP_WEBHOOK_SECRET is not set"
    )


@pytest.mark.parametrize("url", ["https:///hook", "https://93.184.215.14:99999/"])
def test_malformed_urls_are_refused(url: str) -> None:
    refused(url, WebhookPolicy())


def test_settings_build_the_policy_from_the_environment() -> None:
    settings = WorkerSettings.from_env({
        "INTERP_WEBHOOK_ALLOW_HTTP": "true",
        "INTERP_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8, ::1/128",
        "INTERP_WEBHOOK_DENY_NETWORKS": "203.0.113.0/24",
        "INTERP_WEBHOOK_RESOLVE_TIMEOUT_S": "0.5",
        "INTERP_WEBHOOK_SECRET": "whsec_" + "A" * 43,
    })
    policy = settings.webhook_policy
    assert policy.allow_http and policy.enabled and policy.resolve_timeout_s == 0.5
    assert policy.allow_networks == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert policy.deny_networks == (ipaddress.ip_network("203.0.113.0/24"),)
    default = WorkerSettings().webhook_policy
    assert not default.enabled and not default.allow_http and default.allow_networks == ()
    assert ipaddress.ip_network("10.96.0.0/12") in default.deny_networks  # Kubernetes services (kubeadm)


def test_a_bad_network_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="INTERP_WEBHOOK_ALLOW_NETWORKS"):
        WorkerSettings.from_env({"INTERP_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/8"})  # host bits set


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("change-me", "not a Standard Webhooks secret"),  # the old committed default
        ("replace-me", "not a Standard Webhooks secret"),
        ("whsec_not base64!", "the part after whsec_ is not base64"),
        ("whsec_c2hvcnQ=", "the key is 5 bytes; a Standard Webhooks secret holds 24 to 64 random bytes"),
        ("whsec_" + "A" * 100, "the key is 75 bytes"),
    ],
)
def test_placeholder_and_malformed_secrets_are_refused(secret: str, problem: str) -> None:
    found = secret_problem(secret)
    assert found is not None and found.startswith(problem)
    with pytest.raises(SettingsError) as info:
        WorkerSettings.from_env({"INTERP_WEBHOOK_SECRET": secret})
    assert str(info.value).startswith("invalid settings: INTERP_WEBHOOK_SECRET: ")
    assert secret not in str(info.value)


@pytest.mark.parametrize("secret", ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "A" * 43])
def test_standard_secrets_pass_padded_or_not(secret: str) -> None:
    assert secret_problem(secret) is None
    value = WorkerSettings.from_env({"INTERP_WEBHOOK_SECRET": secret}).webhook_secret
    assert value is not None and value.get_secret_value() == secret
