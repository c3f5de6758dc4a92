"""Replace personal data in ticket text with typed placeholders: [EMAIL], [PHONE], [IP], [CARD], [IBAN], [URL].

Each detector is a permissive regex plus a check (Luhn, mod-97, ``ipaddress``, phone heuristics), so numbers that
merely look like PII (dates, versions, order numbers, invalid card numbers) are left alone.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

__all__ = ["redact", "redact_row", "luhn_ok", "iban_ok"]

_URL = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'`]+", re.IGNORECASE)
_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"(?<![A-Z]{2}\d\d )(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\w|\.\w)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_GROUP = r"(?:\(\d{1,5}\)\d{0,8}|\d{1,14})"
_PHONE = re.compile(rf"(?<![\w#/.+=&$€£-])(?:\+ ?)?{_GROUP}(?:[ ./-]{_GROUP}){{0,6}}(?![\w/-]|\.\d)")

_SECRET_KEYS = (
    "token",
    "key",
    "apikey",
    "api_key",
    "access_token",
    "sig",
    "signature",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "code",
    "session",
    "sessionid",
    "session_id",
    "credential",
)
_TOKEN_CHUNK = re.compile(r"(?=[A-Za-z0-9]*[A-Za-z])(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{20,}")
_DATE_START = re.compile(r"\(?(?:\d{4}[./-]\d{1,2}[./-]\d{1,2}|\d{1,2}[./-]\d{1,2}[./-]\d{2,4})(?!\d)")
_YEAR_RANGE = re.compile(r"(?:19|20)\d\d ?[-/] ?(?:19|20)\d\d")
_PHONE_CUE = re.compile(
    r"(?:phone|tel|call|mobile|cell|fax|whatsapp|telefon|handy|mobil|rufnummer|teléfono|"
    r"telefono|móvil|movil|llam)\w*[^\n\d]{0,12}$",
    re.IGNORECASE,
)
_ID_CUE = re.compile(
    r"\b(?:order|invoice|ticket|case|ref|reference|account|acct|tracking|serial|customer|contract|"
    r"build|version|ver|bestell\w*|rechnung\w*|kunden\w*|pedido|factura|id|no|nr|number)"
    r"\.?\s*[:=]?\s*$",
    re.IGNORECASE,
)


def luhn_ok(digits: str) -> bool:
    """True if the digit string passes the Luhn checksum used by payment cards."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def iban_ok(candidate: str) -> bool:
    """True if ``candidate`` (spaces allowed) is a structurally valid IBAN: length 15-34 and mod-97 == 1."""
    s = candidate.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    return int("".join(str(int(c, 36)) for c in s[4:] + s[:4])) % 97 == 1


def _url_has_secret(url: str) -> bool:
    try:
        parts = urlsplit(url if "://" in url else "http://" + url)
    except ValueError:
        return False
    if parts.password:
        return True
    for key, _ in parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(parts.fragment, keep_blank_values=True):
        k = key.lower()
        if k in _SECRET_KEYS or any(s in k for s in ("token", "secret", "password", "apikey", "api_key")):
            return True
    # A long letters+digits run in the path (reset links, signed downloads); UUIDs and slugs have short chunks.
    return any(_TOKEN_CHUNK.fullmatch(chunk) for chunk in re.split(r"[/_.~-]", parts.path))


def _sub_url(m: re.Match) -> str | None:
    url = m.group(0).rstrip(".,;:!?)]}")
    return "[URL]" + m.group(0)[len(url) :] if _url_has_secret(url) else None


def _sub_iban(m: re.Match) -> str | None:
    # The pattern may swallow a following 4-letter word ("... 3000 ASAP"): drop trailing groups until it checks.
    groups = m.group(0).split(" ")
    for k in range(len(groups), 0, -1):
        if iban_ok(" ".join(groups[:k])):
            rest = " ".join(groups[k:])
            return "[IBAN]" + (" " + rest if rest else "")
    return None


def _sub_card(m: re.Match) -> str | None:
    digits = re.sub(r"\D", "", m.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and luhn_ok(digits) else None


def _sub_ipv6(m: re.Match) -> str | None:
    try:
        ipaddress.IPv6Address(m.group(0))
    except ValueError:
        return None
    return "[IP]" if sum(c not in ":" for c in m.group(0)) >= 4 else None  # "a::b" is more likely code than an IP


def _is_phone(cand: str, before: str) -> bool:
    digits = sum(c.isdigit() for c in cand)
    international = cand.startswith("+") or cand.startswith("00")
    if digits < 7 or digits > (15 if international else 12):
        return False
    if cand.startswith("+"):
        return True
    separators = set(re.sub(r"[\d()]", "", cand))
    groups = re.findall(r"\d+", cand)
    if _YEAR_RANGE.fullmatch(cand):
        return False
    if _DATE_START.match(cand) and not (len(groups) >= 5 and all(len(g) == 2 for g in groups)):
        return False  # a date (possibly followed by an hour); French "01 23 45 67 89"-style numbers excepted
    if separators == {"."} and (len(groups) < 3 or min(len(g) for g in groups) < 2):
        return False  # version/build numbers and amounts: 10.0.19041.1, 19045.3693, 1.234.567
    cue = bool(_PHONE_CUE.search(before[-24:]))
    if not cue and len(groups) > 1 and len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]):
        return False  # thousands-grouped amount: 1 500 000
    if not separators and not cue:
        return False  # a bare digit run is more often an order/account number than a phone
    return cue or not _ID_CUE.search(before[-24:])


def _sub_phone(m: re.Match) -> str | None:
    cand = m.group(0)
    return "[PHONE]" if _is_phone(cand, m.string[: m.start()]) else None


# Order matters: URLs and emails contain digits and dots; IBANs and card numbers would otherwise look like phones.
_STEPS: list[tuple[str, re.Pattern, Callable[[re.Match], str | None]]] = [
    ("URL", _URL, _sub_url),
    ("EMAIL", _EMAIL, lambda m: "[EMAIL]"),
    ("IBAN", _IBAN, _sub_iban),
    ("CARD", _CARD, _sub_card),
    ("IP", _IPV4, lambda m: "[IP]"),
    ("IP", _IPV6, _sub_ipv6),
    ("PHONE", _PHONE, _sub_phone),
]


def redact(text: str) -> tuple[str, Counter]:
    """Replace emails, phones, IPs, card numbers, IBANs and secret-bearing URLs with typed placeholders.

    Args:
        text: any text; non-strings are returned unchanged.

    Returns:
        (redacted text, Counter of replacements by type, e.g. ``{"EMAIL": 1, "PHONE": 2}``).
    """
    counts: Counter = Counter()
    if not isinstance(text, str) or not text:
        return text, counts
    for kind, pattern, sub in _STEPS:

        def replace(m: re.Match, kind: str = kind, sub: Callable = sub) -> str:
            new = sub(m)
            if new is None:
                return m.group(0)
            counts[kind] += 1
            return new

        text = pattern.sub(replace, text)
    return text, counts


def redact_row(row: Mapping[str, Any], fields: Iterable[str]) -> tuple[dict[str, Any], Counter]:
    """A copy of ``row`` with :func:`redact` applied to ``fields`` (missing or non-string fields are skipped).

    Args:
        row: a ticket.
        fields: the text columns to redact.

    Returns:
        (new row, Counter of replacements by type over all fields).
    """
    out = dict(row)
    total: Counter = Counter()
    for f in fields:
        if isinstance(out.get(f), str):
            out[f], counts = redact(out[f])
            total.update(counts)
    return out, total
