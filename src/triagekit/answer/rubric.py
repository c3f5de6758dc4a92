"""The hallucination rubric: checkable claims in a reply that nothing the model was given (or the reference) backs.

A reply is **hallucinated** when it makes at least one *unsupported claim*. Claims are extracted by rule, in this
order (a span claimed by an earlier rule is not claimed again):

1. **URLs** (``https://…``, ``www.…``, ``name.tld/path``) and **e-mail addresses**: supported only if the same
   address (case-insensitive, trailing punctuation stripped) occurs in the sources.
2. **Steps**: UI instructions ``click/tap/select/choose/press/open/go to/navigate to <Target>`` with a capitalised
   or quoted target, and menu paths ``A > B``: supported if every word of the target occurs in the sources.
3. **Numbers**: any digit sequence (amounts, durations, versions, order ids, phone numbers; ``1,000`` and
   ``1.000`` read as one number): supported if the same digits occur in the sources. List markers at the start of
   a line (``1.``, ``2)``) are structure, not claims.
4. **Product and proper names**: CamelCase words, all-caps acronyms and capitalised words that do not start a
   sentence, minus English stop words (``We``, ``Our``, ``If`` after a salutation such as "Dear <name>,") and a
   short list of generic words (``I``, ``FAQ``, ``IT``, greetings…): supported if the word occurs in the sources.

The *sources* are the question, the context and the reference answer. Placeholders such as ``<name>``,
``[EMAIL]`` or ``{order}`` are not claims, and escaped line breaks written out as ``\\n`` (common in ticket
exports) read as line breaks. The rate is the share of replies with one or more unsupported claims;
the mean number of unsupported claims per reply is reported too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from triagekit.core.textsim import tokenize

__all__ = ["Claim", "RubricResult", "extract_claims", "check_reply", "hallucination_rate", "GENERIC_WORDS"]

_PLACEHOLDER = re.compile(r"<[^<>\n]{1,40}>|\[[^\[\]\n]{1,40}\]|\{[^{}\n]{1,40}\}")
_URL = re.compile(
    r"\b(?:https?://|www\.)[^\s<>\"')\]]+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|org|net|io|de|co|"
    r"uk|eu|info|app|dev)(?:/[^\s<>\"')\]]*)?\b",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
# verbs in any case, but the target must be quoted or capitalised ("open the app" is advice, not a UI claim)
_STEP = re.compile(
    r"\b(?i:click|tap|select|choose|press|open|go to|navigate to)\s+(?i:on\s+)?(?i:the\s+)?"
    r"(?:[\"“‘]([^\"”’\n]{1,40})[\"”’]|([A-Z][\w&-]*(?:\s+[A-Z][\w&-]*){0,3}))"
)
_VERB = re.compile(r"^(?i:click|tap|select|choose|press|open|go to|navigate to)\s+(?i:on\s+)?(?i:the\s+)?")
_ITEM = r"[A-Z][\w&-]*(?: [A-Z][\w&-]*){0,3}"
_MENU = re.compile(rf"\b{_ITEM}(?:\s*(?:>|→|->)\s*{_ITEM})+")
_LIST_MARKER = re.compile(r"(?:^|(?<=[.!?:]\s)|(?<=\n))\s*(?i:step\s*)?\d{1,2}[.):](?=\s)")
# one number may contain separators: amounts (1,000.50), versions (2.1.3), phone numbers (+1 (800) 555-0199)
_NUMBER = re.compile(r"\d(?:[\d.,/()-]| (?=[\d(]))*\d|\d")
_POSSESSIVE = re.compile(r"['’]s$")
_WORD = re.compile(r"\b[A-Za-z][\w'’-]*\b")
GENERIC_WORDS = (
    frozenset(
        "i i'm i'll i've i'd ok okay faq it hr id am pm dear hi hello hey thanks thank best regards sincerely kind "
        "please support team customer service agent assistant email e-mail phone yes no mr mrs ms dr sir madam".split()
    )
    | ENGLISH_STOP_WORDS
)
_ESCAPED_BREAK = re.compile(r"\\[nrt]")


@dataclass(frozen=True)
class Claim:
    """One checkable statement in a reply."""

    kind: str
    """``url``, ``email``, ``step``, ``number`` or ``name``."""
    text: str
    """The claim as written."""
    supported: bool
    """True when the sources back it."""


@dataclass
class RubricResult:
    """All claims of one reply."""

    claims: list[Claim] = field(default_factory=list)

    @property
    def unsupported(self) -> list[Claim]:
        return [c for c in self.claims if not c.supported]

    @property
    def hallucinated(self) -> bool:
        return bool(self.unsupported)


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t")  # blanked list markers and placeholders leave only spaces
    return not before or before[-1] in ".!?:;\n\"'“(*•-"


def _blank(text: str, spans: Iterable[tuple[int, int]]) -> str:
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def extract_claims(reply: str, sources: Iterable[str]) -> list[Claim]:
    """The claims of ``reply`` with their support against ``sources`` (question, context, reference)."""
    source = _ESCAPED_BREAK.sub("\n", "\n".join(s for s in sources if s))
    src_lower, src_words = source.lower(), set(tokenize(source))
    src_digits = {_digits(m.group(0)) for m in _NUMBER.finditer(source)}
    reply = _ESCAPED_BREAK.sub(" \n", reply)  # two characters for two: spans stay those of the reply
    text = _blank(reply, (m.span() for m in _PLACEHOLDER.finditer(reply)))
    claims: list[Claim] = []
    for kind, pattern in (("email", _EMAIL), ("url", _URL)):
        spans = []
        for m in pattern.finditer(text):
            value = m.group(0).rstrip(".,;:!?")  # a sentence's full stop is not part of the address
            claims.append(Claim(kind, value, value.lower() in src_lower))
            spans.append((m.start(), m.start() + len(value)))
        text = _blank(text, spans)
    for pattern in (_MENU, _STEP):  # menu paths first: "go to Settings > Privacy" is one step
        spans = []
        for m in pattern.finditer(text):
            shown = _VERB.sub("", m.group(0)) if pattern is _MENU else m.group(0)
            words = tokenize(_VERB.sub("", shown) if pattern is _MENU else (m.group(1) or m.group(2)))
            claims.append(Claim("step", shown.strip(), bool(words) and all(w in src_words for w in words)))
            spans.append(m.span())
        text = _blank(text, spans)
    text = _blank(text, (m.span() for m in _LIST_MARKER.finditer(text)))
    for m in _NUMBER.finditer(text):
        claims.append(Claim("number", m.group(0), _digits(m.group(0)) in src_digits))
    for m in _WORD.finditer(text):
        word = _POSSESSIVE.sub("", m.group(0))  # "ClickUp's" claims ClickUp
        lower = word.lower().rstrip("'’")
        camel = re.search(r"[a-z][A-Z]", word) is not None
        acronym = len(word) >= 2 and word.isupper()
        capital = word[0].isupper() and not _starts_sentence(text, m.start())
        if (camel or acronym or capital) and lower not in GENERIC_WORDS and not lower.startswith("i'"):
            # in a compound ("Docker-related", "AES-256") only the capitalised or numeric parts name something
            parts = [p for p in re.split(r"[-_]", word) if p[:1].isupper() or p[:1].isdigit()] or [word]
            claims.append(Claim("name", word, all(w in src_words for p in parts for w in tokenize(p))))
    return claims


def check_reply(reply: str, question: str, reference: str | None = None, context: str | None = None) -> RubricResult:
    """Apply the rubric to one reply."""
    return RubricResult(extract_claims(reply, [question, context or "", reference or ""]))


def hallucination_rate(results: Iterable[RubricResult]) -> dict[str, float]:
    """``rate`` (share of replies with an unsupported claim), ``mean_unsupported`` and counts by claim kind."""
    results = list(results)
    if not results:
        return {"rate": 0.0, "mean_unsupported": 0.0}
    out: dict[str, float] = {
        "rate": sum(r.hallucinated for r in results) / len(results),
        "mean_unsupported": sum(len(r.unsupported) for r in results) / len(results),
    }
    for kind in ("url", "email", "step", "number", "name"):
        out[f"unsupported_{kind}"] = sum(1 for r in results for c in r.unsupported if c.kind == kind)
    return out
