"""The egress guard on teacher URLs: which addresses are refused, the allow-list, and
checks made when the connection is made (real loopback servers, a canary among them)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pandas as pd
import pytest

from reasoning.service.egress import EgressPolicy, why_not_public
from reasoning.teachers import HttpTeacher, TeacherError
from tests.teacher_server import TeacherServer

ROWS = pd.DataFrame({"area_sqm": [50.0], "neighborhood": ["harbor"], "has_garden": [True]})


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "not globally routable"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.2", "private"),
    ],
)
def test_non_public_addresses_are_named(address: str, kind: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert why_not_public(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://teacher.example/p", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("teacher.example/p", "only http and https"),
        ("http:///p", "no host"),
        ("http://user:pw@teacher.example/p", "credentials"),
        ("http://127.0.0.1:8000/p", "loopback"),
        ("http://[::1]:8000/p", "loopback"),
        ("http://[::ffff:127.0.0.1]/p", "loopback"),
        ("http://0.0.0.0/p", "unspecified"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.8/p", "private"),
        ("http://teacher.example:99999/p", "not a valid URL"),
    ],
)
def test_submit_time_url_checks(url: str, words: str) -> None:
    problem = EgressPolicy().check_url(url)
    assert problem is not None and words in problem


def test_names_and_public_addresses_wait_for_the_connection() -> None:
    assert EgressPolicy().check_url("https://teacher.example/invocations") is None
    assert EgressPolicy().check_url("http://8.8.8.8/p") is None


def test_allow_list_of_networks_and_names() -> None:
    policy = EgressPolicy.parse("127.0.0.1/32, 10.1.0.0/16, teacher.internal, [::1]")
    assert policy.check_url("http://127.0.0.1:9/p") is None
    assert policy.check_url("http://[::1]:9/p") is None
    assert policy.check_url("http://10.1.200.3/p") is None
    assert "loopback" in policy.check_url("http://127.0.0.2:9/p")
    assert "private" in policy.check_url("http://10.2.0.1/p")
    assert policy.refusal("teacher.internal", ipaddress.ip_address("10.9.9.9")) is None
    assert policy.refusal("other.internal", ipaddress.ip_address("10.9.9.9"))


@pytest.fixture
def teacher() -> Iterator[TeacherServer]:
    server = TeacherServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def canary() -> Iterator[TeacherServer]:
    """A server on a loopback address the allow-list does not name: it must hear nothing."""
    server = TeacherServer("127.0.0.2")
    yield server
    server.close()


LOOPBACK_ONLY = EgressPolicy.parse("127.0.0.1/32")


def _call(url: str, policy: EgressPolicy = LOOPBACK_ONLY, **kwargs) -> str:
    """The teacher error the call ends in, or "answered" when it got through."""
    try:
        HttpTeacher(url, policy=policy, retries=1, backoff=0.01, **kwargs).predict(ROWS)
    except TeacherError as err:
        return str(err)
    return "answered"


def test_a_non_allowed_address_is_refused_at_connection_time(canary: TeacherServer) -> None:
    message = _call(f"{canary.url}/price/predict")
    assert canary.count() == 0
    assert "refused" in message and "127.0.0.2" in message and "loopback" in message


def test_a_name_that_resolves_to_loopback_is_refused(teacher: TeacherServer) -> None:
    """The canary listens where `localhost` leads, so an unguarded call would reach it."""
    port = int(teacher.url.rsplit(":", 1)[1])
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", port, socket.AF_INET)}
    assert "127.0.0.1" in resolved  # or the canary below would prove nothing
    message = _call(f"http://localhost:{port}/price/predict", policy=EgressPolicy())
    assert teacher.count() == 0
    assert "localhost resolves to an address that is not public" in message
    # ... and says no more: what an internal name resolves to stays inside.
    assert "127.0.0.1" not in message and "loopback" not in message


def test_redirects_are_not_followed(teacher: TeacherServer, canary: TeacherServer) -> None:
    teacher.redirect_to = f"{canary.url}/price/predict"
    message = _call(f"{teacher.url}/redirect/predict")
    assert "HTTP 302" in message
    assert teacher.count("/redirect") == 1 and canary.count() == 0


def test_a_name_that_does_not_resolve_is_refused() -> None:
    assert "does not resolve" in _call("http://no-such-host.invalid/p")


def test_answers_are_capped(teacher: TeacherServer) -> None:
    message = _call(f"{teacher.url}/price/predict", max_response_bytes=10)
    assert "more than 10 bytes" in message


def test_an_allowed_teacher_answers(teacher: TeacherServer) -> None:
    answer = HttpTeacher(f"{teacher.url}/price/predict", policy=LOOPBACK_ONLY).predict(ROWS)
    assert answer.values.shape == (1,)
