"""Hypothesis settings and input strategies shared by the fuzz tests: bounded, so the whole
folder runs in seconds in CI, and deterministic (``derandomize``), so a failure reproduces."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Pieces real files are made of, and pieces that broke parsers: separators, NUL, non-UTF-8
# bytes, numbers that are not numbers, paths that leave the folder, YAML's odd scalars.
TOKENS = [
    b",",
    b"\t",
    b"\n",
    b"\r\n",
    b"\r",
    b'"',
    b"\x00",
    b"\xff",
    b"\xe9",
    b"\xef\xbb\xbf",
    b"glass",
    b"glass/glass_0.jpg",
    b"../../etc/passwd",
    b"/etc/passwd",
    b"notes.txt",
    b"path,label",
    b"0",
    b"1",
    b"-1",
    b"nan",
    b"inf",
    b"1e400",
    b"7.000000",
    b"  ",
    b": ",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"!!binary",
    b"!!python/object:os.system",
    b"2001-13-45",
    b"&a",
    b"*a",
    b"? ",
    b"bins",
    b"threshold",
    b"pipeline",
    b"training",
    b"epochs",
    b"data",
    b"\xc3\xa9",
    b"\\",
    b"#",
]


def messy_bytes(max_size: int = 40) -> st.SearchStrategy[bytes]:
    """Bytes built from ``TOKENS`` and raw bytes: mostly near-valid, sometimes garbage."""
    piece = st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=4)
    return st.lists(piece, max_size=max_size).map(b"".join)


def json_values() -> st.SearchStrategy[object]:
    """Any JSON value, nested a little."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
        ),
        max_leaves=10,
    )
