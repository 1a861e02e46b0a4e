"""Client text in logs and errors: one short printable line, whatever the client sent."""

from __future__ import annotations

import pytest

from customerio_mcp.text_safety import CLIP_LIMIT, clip, neutralise, shown_url


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("plain", "plain"),
        ("a\nINFO forged line", "a\\nINFO forged line"),
        ("\r\n\t", "\\r\\n\\t"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00del\x7fc1\x85", "nul\\x00del\\x7fc1\\x85"),
        ("line\u2028sep\u202eevil", "line\\u2028sep\\u202eevil"),
        ("café ☕ 日本", "café ☕ 日本"),
    ],
)
def test_control_characters_become_visible_escapes(given: str, shown: str) -> None:
    assert neutralise(given) == shown
    assert clip(given) == shown


def test_long_text_is_cut_and_says_how_much_was_dropped() -> None:
    text = "x" * 250
    assert clip(text) == "x" * CLIP_LIMIT + "…(+150)"
    assert clip(text, limit=10) == "x" * 10 + "…(+240)"


def test_the_limit_counts_the_clients_characters_not_the_escapes() -> None:
    clipped = clip("\n" * 150)
    assert clipped == "\\n" * CLIP_LIMIT + "…(+50)"
    assert "\n" not in clipped


def test_bytes_and_other_values_are_accepted() -> None:
    assert clip(b"host\r\nx") == "host\\r\\nx"
    assert clip(b"\xff\xfebad") == "\ufffd\ufffdbad"
    assert clip(12345) == "12345"
    assert clip(None) == "None"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:PASSWORD@host", "http://<redacted>@host"),
        ("ftp://sk_live_secret@x", "ftp://<redacted>@x"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://<redacted>@127.0.0.1:6379/0"),
        ("redis://127.0.0.1:6379/0?password=pw", "redis://127.0.0.1:6379/0?<redacted>"),
        ("http://u:p/a#b@host/v1", "http://<redacted>@host/v1"),
        ("user:pw@host", "<redacted>@host"),
        ("https://track.customer.io", "https://track.customer.io"),
    ],
)
def test_shown_url_hides_user_name_password_and_query(text: str, shown: str) -> None:
    assert shown_url(text) == shown
