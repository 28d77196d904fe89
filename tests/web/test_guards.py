"""The pure parts of the web guards: Host parsing, the allow-list, loopback, the throttle."""

from __future__ import annotations

import pytest

from whichbin.web.guards import allowed_hosts, host_of, is_loopback
from whichbin.web.ratelimit import FailureLimiter


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8080", "localhost"),
        ("[::1]:8080", "::1"),
        ("[::1]", "::1"),
        ("[::1]x", None),
        ("[::1", None),
        ("host:port", None),
        ("a@b", None),
        ("", None),
        (":80", None),
    ],
)
def test_host_of(header: str, host: str | None) -> None:
    assert host_of(header) == host


def test_allowed_hosts_add_the_bind_and_artifact_hosts() -> None:
    hosts = allowed_hosts(["localhost", "[::1]"], "10.0.0.5", "https://Registry.lan:8443/x")
    assert hosts == {"localhost", "::1", "10.0.0.5", "registry.lan"}
    assert allowed_hosts([], "0.0.0.0", None) == frozenset()  # a wildcard bind names no host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("pi.lan", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_failure_limiter_window() -> None:
    limiter = FailureLimiter(attempts=3, window=60)
    for t in (0.0, 10.0, 20.0):
        assert limiter.retry_after(["a"], t) == 0
        limiter.fail(["a", "u"], t)
    assert limiter.retry_after(["a"], 30.0) == 30  # the first failure leaves the window at 60
    assert limiter.retry_after(["b", "u"], 30.0) == 30  # any throttled key blocks
    assert limiter.retry_after(["b"], 30.0) == 0
    assert limiter.retry_after(["a"], 59.5) == 1  # rounded up, never 0 while blocked
    assert limiter.retry_after(["a"], 60.0) == 0


def test_failure_limiter_forgets_old_keys_when_full() -> None:
    limiter = FailureLimiter(attempts=1, window=10, max_keys=3)
    for i in range(3):
        limiter.fail([f"k{i}"], 0.0)
    limiter.fail(["late"], 20.0)  # the others' windows have passed
    assert limiter.retry_after(["late"], 20.0) == 10
    assert len(limiter._failures) == 1
    for i in range(5):
        limiter.fail([f"n{i}"], 21.0)
    assert len(limiter._failures) <= 3
