"""One webhook POST, against real loopback receivers: pinned to the checked address, signed, redirects not followed.

The names used (``hooks.example``) do not resolve anywhere: a request that reaches the receiver went to the address
the policy checked, with the name only in ``Host`` and the TLS server name. A resolver that counts its calls shows
that the POST makes no lookup of its own, so a name rebound after the check cannot move it.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.webhook_receiver import receiving
from workers.webhook_delivery import DeliveryOutcome, post_webhook, signed_headers
from workers.webhooks import CallbackTarget, InvalidCallbackUrlError, IpAddress, WebhookPolicy, resolve_callback

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"id":"job-1","status":"succeeded"}'
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


class Dns:
    """A resolver that answers ``hooks.example`` from a list of answers, one per lookup, and counts lookups."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.lookups = 0

    def __call__(self, host: str, port: int, timeout_s: float) -> list[IpAddress]:
        assert host == "hooks.example"
        self.lookups += 1
        return [ipaddress.ip_address(a) for a in self.answers[min(self.lookups, len(self.answers)) - 1]]


def _post(target: CallbackTarget, verify: ssl.SSLContext | bool = True) -> DeliveryOutcome:
    return post_webhook(target, BODY, msg_id="job-1", secret=SECRET, timeout_s=5, verify=verify)


def test_the_post_goes_to_the_checked_address_with_the_name_in_host() -> None:
    with receiving([204]) as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        dns = Dns(["127.0.0.1"])
        policy = WebhookPolicy(allow_http=True, allow_networks=LOOPBACK, resolver=dns)
        target = resolve_callback(f"http://hooks.example:{port}/hook?job=1", policy)
        outcome = _post(target)
        assert (outcome.delivered, outcome.status_code, outcome.error) == (True, 204, None)
        (call,) = receiver.calls
    assert dns.lookups == 1  # the check's lookup only: the POST resolved nothing
    assert call.path == "/hook?job=1" and call.headers["host"] == f"hooks.example:{port}"
    assert call.body == BODY and call.headers["content-type"] == "application/json"
    assert Webhook(SECRET).verify(call.body, call.headers) == {"id": "job-1", "status": "succeeded"}
    assert call.headers["webhook-id"] == "job-1"


def test_a_name_rebound_to_a_private_address_after_the_check_is_refused_at_delivery() -> None:
    with receiving() as receiver:
        port = receiver.url.rsplit(":", 1)[1]
        dns = Dns(["127.0.0.1"], ["10.0.0.1"])  # the second lookup (delivery's) answers a private address
        policy = WebhookPolicy(allow_http=True, allow_networks=LOOPBACK, resolver=dns)
        url = f"http://hooks.example:{port}/hook"
        resolve_callback(url, policy)  # submission: allowed
        with pytest.raises(InvalidCallbackUrlError, match=r"hooks\.example resolves to a private address"):
            resolve_callback(url, policy)  # delivery: a fresh lookup, judged again
        assert receiver.calls == []


def test_statuses_decide_delivered_permanent_or_retryable() -> None:
    policy = WebhookPolicy(allow_http=True, allow_networks=LOOPBACK)
    for status, delivered, retryable in [(200, True, False), (202, True, False), (400, False, False),
                                         (404, False, False), (410, False, False), (500, False, True),
                                         (503, False, True)]:
        with receiving([status]) as receiver:
            outcome = post_webhook(resolve_callback(receiver.url + "/h", policy), BODY, msg_id="m", secret=SECRET,
                                   timeout_s=5)
        assert (outcome.delivered, outcome.retryable, outcome.status_code) == (delivered, retryable, status)


def test_a_redirect_is_not_followed_and_not_retried() -> None:
    policy = WebhookPolicy(allow_http=True, allow_networks=LOOPBACK)
    with receiving() as elsewhere, receiving([307], location=None) as receiver:
        receiver.location = elsewhere.url + "/stolen"
        outcome = post_webhook(resolve_callback(receiver.url + "/h", policy), BODY, msg_id="m", secret=SECRET,
                               timeout_s=5)
        assert len(receiver.calls) == 1 and elsewhere.calls == []
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, False, 307)
    assert outcome.error == "the receiver answered 307, a redirect; redirects are never followed"


def test_a_refused_connection_tries_the_next_checked_address_then_is_retryable() -> None:
    with receiving([200]) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        # 127.0.0.2 is loopback too, but nothing listens there: the POST moves on to 127.0.0.1.
        target = CallbackTarget(url=f"http://hooks.example:{port}/h", host="hooks.example", port=port,
                                addresses=(ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")))
        assert _post(target).delivered
        assert len(receiver.calls) == 1
    closed = CallbackTarget(url=f"http://hooks.example:{port}/h", host="hooks.example", port=port,
                            addresses=(ipaddress.ip_address("127.0.0.1"),))
    outcome = _post(closed)
    assert (outcome.delivered, outcome.retryable, outcome.status_code) == (False, True, None)
    assert outcome.error.startswith("ConnectError: ")


def test_timestamps_bound_replays_and_the_signature_covers_id_time_and_body() -> None:
    receiver_side = Webhook(SECRET)
    fresh = signed_headers(SECRET, "job-1", BODY)
    assert receiver_side.verify(BODY, fresh) == {"id": "job-1", "status": "succeeded"}
    old = signed_headers(SECRET, "job-1", BODY, at=datetime.now(UTC) - timedelta(minutes=10))
    with pytest.raises(WebhookVerificationError, match="too old"):
        receiver_side.verify(BODY, old)  # a captured delivery replayed ten minutes later
    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(BODY, {**fresh, "webhook-timestamp": old["webhook-timestamp"]})
    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(BODY.replace(b"succeeded", b"failed"), fresh)
    with pytest.raises(WebhookVerificationError):
        receiver_side.verify(BODY, {**fresh, "webhook-id": "job-2"})
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "B" * 43).verify(BODY, fresh)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and a certificate for ``hooks.example`` it signed, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    _openssl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=hooks.example", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:hooks.example\nbasicConstraints=CA:FALSE\n"
                               "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n", encoding="utf-8")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "leaf.pem", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    return d


def test_https_is_verified_against_the_name_while_connecting_to_the_address(pki: Path) -> None:
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(pki / "leaf.pem", pki / "leaf.key")
    trust = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with receiving([200], tls=server_tls) as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        policy = WebhookPolicy(allow_networks=LOOPBACK, resolver=Dns(["127.0.0.1"]))
        target = resolve_callback(f"https://hooks.example:{port}/hook", policy)
        assert _post(target, verify=trust).delivered
        assert receiver.server_names == ["hooks.example"]  # SNI: the name, not the address
        assert receiver.calls[0].headers["host"] == f"hooks.example:{port}"
        # The same address under a name the certificate does not carry: the TLS check fails, nothing is posted.
        wrong = CallbackTarget(url=f"https://other.example:{port}/hook", host="other.example", port=port,
                               addresses=target.addresses)
        outcome = _post(wrong, verify=trust)
        assert not outcome.delivered and "certificate" in (outcome.error or "").lower()
        assert len(receiver.calls) == 1
