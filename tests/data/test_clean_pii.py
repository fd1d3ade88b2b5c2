"""Cleaning (Unicode, control characters, whitespace, invalid UTF-8) and PII replacement with look-alikes.

    .venv/bin/pytest tests/data/test_clean_pii.py -q
"""

import pytest

from llmlab.data.clean import CountingDecoder, clean_text, decode_bytes
from llmlab.data.pii import is_credit_card, luhn_ok, scrub_pii


def test_clean_text_normalises_and_repairs_whitespace():
    raw = "\ufeffCafe\u0301 \r\nline two  \t\r\n\n\n\n\n\nend\x00\x07\x1b of\u2028text  "
    out = clean_text(raw)
    assert out == "Caf\u00e9\nline two\n\n\nend of\ntext"
    assert clean_text(out) == out  # idempotent
    assert clean_text("a\n\n\nb") == "a\n\n\nb"  # two blank lines are kept
    assert clean_text("tab\tinside") == "tab\tinside"


def test_invalid_utf8_replaced_and_counted():
    text, n = decode_bytes(b"ok \xff\xfe bad \xc3")
    assert text == "ok \ufffd\ufffd bad \ufffd" and n == 3
    assert decode_bytes("fine \u00e9".encode()) == ("fine \u00e9", 0)
    # A character split across two streamed chunks is not invalid.
    dec = CountingDecoder()
    assert dec.decode(b"caf\xc3") + dec.decode(b"\xa9", final=True) == "caf\u00e9" and dec.invalid == 0


@pytest.mark.parametrize("text, kind", [
    ("write to jane.doe+news@mail.example.co.uk today", "EMAIL"),
    ("call (555) 123-4567 now", "PHONE"),
    ("call 555-123-4567 now", "PHONE"),
    ("call +44 20 7946 0958 now", "PHONE"),
    ("call +1 (555) 123-4567 now", "PHONE"),
    ("host 192.168.1.20 is up", "IP"),
    ("host 2001:db8::8a2e:370:7334 is up", "IP"),
    ("host fe80::1 is up", "IP"),
    ("card 4111 1111 1111 1111 expires", "CREDIT_CARD"),
    ("card 4111-1111-1111-1111 expires", "CREDIT_CARD"),
    ("amex 378282246310005 expires", "CREDIT_CARD"),
    ("key AKIAIOSFODNN7EXAMPLE here", "SECRET"),
    ("token ghp_" + "a1B2" * 9 + " here", "SECRET"),
    ("key sk-proj-" + "x9Y8" * 6 + " here", "SECRET"),
    ("slack xoxb-123456789012-abcdefABCDEF here", "SECRET"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----", "SECRET"),
    ("config api_key=abcd1234efgh5678", "SECRET"),
    ('config "password": "hunter2hunter2"', "SECRET"),
])
def test_each_pii_kind_replaced(text, kind):
    out, counts = scrub_pii(text)
    assert f"<{kind}>" in out
    assert counts == {kind: 1}, (out, counts)


def test_assignment_keeps_key_name():
    out, _ = scrub_pii("api_key=abcd1234efgh5678 and token: 'zz99zz99zz'")
    assert out == "api_key=<SECRET> and token: '<SECRET>'"


@pytest.mark.parametrize("text", [
    "version 1.2.3.4 is out", "upgrade to v10.0.0.1", "release 2.4.0.1 notes", "oid 1.3.6.1.4.1 here",
    "on 2024-01-15 and 15.01.2024 and 01/15/2024 at 12:30:45",
    "ISBN 978-0-306-40615-7 and ISBN 9780306406157",
    "card 4111 1111 1111 1112 fails Luhn",  # 16 digits, valid prefix, bad checksum
    "order 1234567890123456 shipped",  # 16 digits, no issuer prefix
    "population 1,234,567 in 1999; pi 3.14159",
    "std::vector<int> and a::b and ratio 3:2",
    "the password: silence, and a secret: tomorrow",
    "Ber. Who's there? -- Fran. Nay, answer me: stand, and unfold yourself.",
    "Mr. Smith @ home, email me later",
])
def test_look_alikes_untouched(text):
    assert scrub_pii(text) == (text, {})


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")
    assert is_credit_card("5555 5555 5555 4444")
    # A valid ISBN-13 whose digits also pass Luhn: only the issuer-prefix rule keeps it.
    assert luhn_ok("9780306406164") and not is_credit_card("9780306406164")
    assert scrub_pii("ISBN 9780306406164")[1] == {}


def test_several_kinds_counted():
    text = "a@b.io, c@d.org, 10.0.0.1, AKIAIOSFODNN7EXAMPLE, 4111111111111111, 555-123-4567"
    out, counts = scrub_pii(text)
    assert counts == {"EMAIL": 2, "IP": 1, "SECRET": 1, "CREDIT_CARD": 1, "PHONE": 1}
    assert out == "<EMAIL>, <EMAIL>, <IP>, <SECRET>, <CREDIT_CARD>, <PHONE>"
