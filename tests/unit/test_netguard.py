"""Webhook SSRF (issue 17): every spelling of a non-public destination is refused, at subscribe
time and again at delivery after resolution, and a delivery connects to the vetted address.
No real DNS: the resolver is a port, each test gives its answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from hallmark.adapters.webhook_sender import WebhookPoster
from hallmark.errors import DomainError
from hallmark.netguard import literal_address, parse_ipv4_number, vet_url
from hallmark.scoring.webhooks import SubscribeRequest, WebhookService, check_url

# What a (hostile) DNS answers for names; anything else does not resolve.
DNS: dict[str, list[str]] = {
    "169.254.169.254.nip.io": ["169.254.169.254"],
    "localtest.me": ["127.0.0.1"],
    "hooks.example.com": ["93.184.215.14"],
    "mixed.example.com": ["93.184.215.14", "10.0.0.7"],  # one private answer is enough to refuse
    "v6.example.com": ["2606:4700::6810:84e5"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "cgnat.example.com": ["100.64.1.2"],
}


def resolver(answers: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]
    return resolve


REFUSED = [
    "https://127.0.0.1/",
    "https://localhost/",
    "https://LOCALHOST./x",
    "https://[::1]/",
    "https://2130706433/",
    "https://0x7f000001/",
    "https://127.1/",
    "https://017700000001/",
    "https://0177.0.0.1/",
    "https://0x7f.0.0.1/",
    "https://127.0.0.1./",
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254.nip.io/",
    "https://localtest.me/",
    "https://localtest.me./",
    "https://foo.localhost/",
    "https://foo.localhost./",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://0.0.0.0/",
    "https://0/",
    "https://[::]/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://[fd00:ec2::254]/",  # the IPv6 metadata endpoint
    "https://10.1.2.3/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",  # CGNAT
    "https://224.0.0.1/",
    "https://[ff02::1]/",
    "https://255.255.255.255/",
    "https://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
    "https://mixed.example.com/",
    "https://mapped.example.com/",
    "https://cgnat.example.com/",
    "https://metadata.google.internal/",
    "https://printer.local/",
    "https://unknown.example.com/",  # does not resolve: refused (fail closed)
    "http://hooks.example.com/",  # https only
    "https://user:pw@hooks.example.com/",
    "ftp://hooks.example.com/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_non_public_destinations_are_refused_in_every_spelling(url: str) -> None:
    with pytest.raises(DomainError) as err:
        vet_url(url, resolver(DNS))
    assert err.value.http_status == 400


@pytest.mark.parametrize("url", REFUSED)
def test_subscribe_refuses_them_in_the_aws_configuration(url: str) -> None:
    svc = WebhookService(store=None, cipher=None, resolve=resolver(DNS), allow_local_http=False)  # type: ignore[arg-type]
    with pytest.raises(DomainError):
        svc.subscribe(SubscribeRequest(url=url, bands=["instant"]), "root")


@pytest.mark.parametrize(("url", "address"), [
    ("https://hooks.example.com/x?y=1", "93.184.215.14"),
    ("https://hooks.example.com./x", "93.184.215.14"),
    ("https://v6.example.com/", "2606:4700::6810:84e5"),
    ("https://93.184.215.14/", "93.184.215.14"),
])
def test_public_destinations_pass_and_pin_the_address(url: str, address: str) -> None:
    target = vet_url(url, resolver(DNS))
    assert target.address == address
    assert check_url(url, allow_local_http=False, resolve=resolver(DNS)) == url


@pytest.mark.parametrize(("spelling", "dotted"), [
    ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("127.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"), ("0177.0.0.01", "127.0.0.1"), ("127.0.1", "127.0.0.1"),
    ("0", "0.0.0.0"), ("0xa9.254.169.254", "169.254.169.254"),
])
def test_numeric_hosts_read_like_inet_aton(spelling: str, dotted: str) -> None:
    assert str(parse_ipv4_number(spelling)) == dotted
    assert str(literal_address(spelling)) == dotted
    with contextlib.suppress(OSError):  # a libc without the legacy forms
        assert socket.inet_ntoa(socket.inet_aton(spelling)) == dotted  # the C library agrees


@pytest.mark.parametrize("name", ["example.com", "1.2.3.4.5", "256.1.1.1", "0x", "1e3", "12a"])
def test_names_are_not_mistaken_for_numbers(name: str) -> None:
    assert name == "0x" or parse_ipv4_number(name) is None


def test_local_cloud_admits_the_loopback_and_nothing_else_private() -> None:
    vet_url("http://127.0.0.1:8080/hooks", resolver(DNS), allow_loopback=True)
    vet_url("http://localhost:8080/hooks", resolver(DNS), allow_loopback=True)
    for url in ("http://10.1.2.3/x", "https://169.254.169.254/", "http://hooks.example.com/", "https://[fd00::1]/"):
        with pytest.raises(DomainError):
            vet_url(url, resolver(DNS), allow_loopback=True)


# --------------------------------------------------------------------------- delivery (rebinding)


@pytest.fixture()
def receiver() -> Iterator[tuple[int, list[str]]]:
    got: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.headers.get("host", ""))
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], got
    server.shutdown()
    server.server_close()


def test_delivery_re_vets_after_resolution_and_refuses_a_rebound_name(receiver: tuple[int, list[str]]) -> None:
    """Subscribed while the name answered a public address; at delivery it answers the metadata
    address: nothing is sent, and the result says refused (the sender drops it, no retry)."""
    answers = {"hooks.example.com": ["93.184.215.14"]}
    assert check_url("https://hooks.example.com/h", allow_local_http=False, resolve=resolver(answers))
    answers["hooks.example.com"] = ["169.254.169.254"]
    result = WebhookPoster(resolver(answers)).post("https://hooks.example.com/h", "{}", {}, 5)
    assert result.refused and result.status == 0 and not result.ok
    assert receiver[1] == []


def test_delivery_connects_to_the_vetted_address_only_once_resolved(receiver: tuple[int, list[str]]) -> None:
    """The name is resolved once, by vet_url; the connection goes to that address (the resolver
    is called exactly once per delivery, so a second, rebound answer is never used)."""
    port, got = receiver
    calls: list[str] = []

    def resolve(host: str, p: int) -> Sequence[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["203.0.113.9"]  # a rebind on any second look-up

    result = WebhookPoster(resolve, allow_loopback=True).post(f"http://rebind.localhost.test:{port}/h", "{}", {}, 5)
    assert result.status == 204, result
    assert calls == ["rebind.localhost.test"]
    assert got == [f"rebind.localhost.test:{port}"]  # the Host header names the URL's host
