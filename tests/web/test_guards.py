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


def _hammer(limiter: FailureLimiter, threads: int, per_thread: int) -> list[BaseException]:
    """``threads`` threads fail ``user:i`` (shared) and ``client:t-i`` (their own) at once,
    switching as often as the interpreter allows; the errors they met."""
    import sys
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def guess(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                limiter.fail([f"user:{i}", f"client:{t}-{i}"], float(i))
                limiter.retry_after([f"user:{i}"], float(i))
        except BaseException as e:  # noqa: BLE001 - reported to the test
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # races show up
    try:
        workers = [threading.Thread(target=guess, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    return errors


def test_failure_limiter_loses_no_failure_to_threads() -> None:
    """The web server's worker threads share one limiter: every failure counts."""
    limiter = FailureLimiter(attempts=10**9, window=1e9)
    assert _hammer(limiter, threads=8, per_thread=400) == []
    assert all(len(limiter._failures[f"user:{i}"]) == 8 for i in range(400))


def test_failure_limiter_evicts_safely_while_threads_add_keys() -> None:
    limiter = FailureLimiter(attempts=10**9, window=1e9, max_keys=64)
    assert _hammer(limiter, threads=8, per_thread=400) == []
    assert len(limiter._failures) <= 64 + 2  # full, then one failure's keys
