"""PII redaction: typed placeholders for real PII, no false alarms on dates, versions, order numbers."""

import pytest

from triagekit.data import redact, redact_row


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        ("mail john.doe+x@example.co.uk now", "mail [EMAIL] now", "EMAIL"),
        ("call +49 30 1234567 today", "call [PHONE] today", "PHONE"),
        ("call +1 (555) 123-4567.", "call [PHONE].", "PHONE"),
        ("my number is 030 1234567", "my number is [PHONE]", "PHONE"),
        ("phone: 01711234567", "phone: [PHONE]", "PHONE"),
        ("US 555-123-4567", "US [PHONE]", "PHONE"),
        ("server 192.168.1.10 is down", "server [IP] is down", "IP"),
        ("host 2001:db8::8a2e:370:7334 fails", "host [IP] fails", "IP"),
        ("card 4111 1111 1111 1111 please", "card [CARD] please", "CARD"),
        ("card 4111-1111-1111-1111", "card [CARD]", "CARD"),
        ("IBAN DE89 3704 0044 0532 0130 00 ASAP", "IBAN [IBAN] ASAP", "IBAN"),
        ("IBAN GB82WEST12345698765432.", "IBAN [IBAN].", "IBAN"),
        ("reset at https://x.com/reset?token=abc123 now", "reset at [URL] now", "URL"),
        ("see https://api.x.io/v1?api_key=zzz&x=1.", "see [URL].", "URL"),
        ("get https://dl.example.com/f/a8f3k2l9x0q7w1e5r6t4z/file.pdf", "get [URL]", "URL"),
    ],
)
def test_redacts(text, expected, kind):
    out, counts = redact(text)
    assert out == expected
    assert counts == {kind: expected.count(f"[{kind}]")}


@pytest.mark.parametrize(
    "text",
    [
        "card 4111 1111 1111 1112 is not a valid number",  # Luhn fails
        "IBAN DE89 3704 0044 0532 0130 01 has a typo",  # mod-97 fails
        "since 2024-01-15 at 10:30, also 15.01.2024 and 01/15/2024",
        "running v2.3.1 and version 10.0.19041.1, build 19045.3693",
        "order #12345, order number 12345678, ticket TCK-000123, ORD-2024-123456",
        "from 2019-2023 we paid 1 500 000 EUR",
        "docs at https://example.com/help and https://example.com/2024-annual-report-summary",
        "time 12:30:45, mac 00:1A:2B:3C:4D:5E, std::vector",
        "invoice 555-123-4567",
    ],
)
def test_leaves_lookalikes_alone(text):
    assert redact(text) == (text, {})


def test_redact_row_counts_over_fields():
    row = {"subject": "from a@b.de", "body": "call +49 30 1234567 or a@b.de", "queue": "x@y.com", "n": 3}
    out, counts = redact_row(row, ["subject", "body", "missing", "n"])
    assert out == {**row, "subject": "from [EMAIL]", "body": "call [PHONE] or [EMAIL]"}
    assert counts == {"EMAIL": 2, "PHONE": 1} and row["subject"] == "from a@b.de"
