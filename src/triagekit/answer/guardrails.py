"""Guardrails: regex and keyword rules that stop out-of-scope or unsafe requests before the model sees them.

Rules come from YAML (``triagekit/presets/answer/guardrails.yaml`` is the shipped default, identical to
:data:`DEFAULT_RULES`)::

    refusal: "I'm sorry, ..."              # default polite refusal
    rules:
      - name: unsafe-weapons
        category: unsafe                   # unsafe | out_of_scope | any label you like
        patterns: ['\\bbuild (a|an) (bomb|explosive)']   # Python regexes, matched case-insensitively
        keywords: [ransomware]             # whole words or phrases, case-insensitive
        refusal: "..."                     # optional, overrides the default

A request is refused when any rule matches; the reply is that rule's refusal (or the default), so the caller can
answer politely instead of generating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Guardrails", "GuardDecision", "DEFAULT_RULES", "DEFAULT_REFUSAL"]

DEFAULT_REFUSAL = (
    "I'm sorry, but I can't help with that request. I can help with questions about our products, "
    "your account, orders, billing and technical problems."
)

DEFAULT_RULES: dict[str, Any] = {
    "refusal": DEFAULT_REFUSAL,
    "rules": [
        {
            "name": "unsafe-violence",
            "category": "unsafe",
            "patterns": [
                r"\b(build|make|assemble)\b.{0,30}\b(bomb|explosive|weapon|gun)s?\b",
                r"\bhow (do|can) i (hurt|kill|poison)\b",
            ],
        },
        {
            "name": "unsafe-self-harm",
            "category": "unsafe",
            "patterns": [r"\b(kill|hurt|harm) myself\b", r"\bsuicid(e|al)\b"],
            "refusal": "I'm really sorry you're going through this. I can't help with that here, but please reach out "
            "to someone you trust or to a local emergency number or crisis line right away.",
        },
        # phrased as requests to attack, so victims reporting an intrusion or ransomware still get help
        {
            "name": "unsafe-intrusion",
            "category": "unsafe",
            "patterns": [
                r"\b(how (do|can|could) i|help me|teach me to) (hack|break) into\b",
                r"\b(steal|dump|crack)\b.{0,30}\b(passwords?|credentials?|card numbers?)\b",
                r"\b(access|read|get into) (someone else'?s|another user'?s|my (colleague|boss|ex)'?s) "
                r"(account|password|e-?mails?)\b",
                r"\b(write|create|build|make|code) (me )?(a |an |some )?(ransomware|keylogger|malware|virus|"
                r"phishing (page|kit|site|email))\b",
            ],
        },
        {
            "name": "prompt-injection",
            "category": "unsafe",
            "patterns": [
                r"\bignore (all |any )?(the )?(previous|prior|above) (instructions|rules)\b",
                r"\b(reveal|print|show) (your|the) (system prompt|instructions)\b",
            ],
        },
        {
            "name": "out-of-scope",
            "category": "out_of_scope",
            "patterns": [
                r"\b(write|compose) (me )?(a |an )?(poem|song|essay|story|novel)\b",
                r"\b(do|solve) my homework\b",
                r"\b(stock|crypto|investment) (tips|advice|picks)\b",
                r"\b(medical|legal) (advice|diagnosis)\b",
            ],
        },
    ],
}


@dataclass(frozen=True)
class GuardDecision:
    """Whether a request may go to the model."""

    allowed: bool
    category: str | None = None
    """The matching rule's category (``unsafe``, ``out_of_scope``…), None when allowed."""
    rule: str | None = None
    """The matching rule's name."""
    refusal: str | None = None
    """The polite reply to send instead of generating."""


class Guardrails:
    """Compiled rules; ``check(text)`` returns the first matching rule's decision.

    Raises:
        ValueError: for a malformed rule set (missing name, bad regex, wrong types), naming the rule.
    """

    def __init__(self, config: Mapping[str, Any] | None = None):
        config = DEFAULT_RULES if config is None else config
        if not isinstance(config, Mapping) or not isinstance(config.get("rules", []), list):
            raise ValueError("guardrails: expected a mapping with a 'rules' list")
        unknown = set(config) - {"refusal", "rules"}
        if unknown:
            raise ValueError(f"guardrails: unknown keys {sorted(unknown)} (allowed: refusal, rules)")
        self.refusal = str(config.get("refusal") or DEFAULT_REFUSAL)
        self.rules: list[tuple[str, str, list[re.Pattern], str]] = []
        for i, rule in enumerate(config.get("rules") or []):
            self.rules.append(self._compile(i, rule))

    def _compile(self, i: int, rule: Any) -> tuple[str, str, list[re.Pattern], str]:
        if not isinstance(rule, Mapping) or not rule.get("name"):
            raise ValueError(f"guardrails: rule {i} needs a name")
        name = str(rule["name"])
        unknown = set(rule) - {"name", "category", "patterns", "keywords", "refusal"}
        if unknown:
            raise ValueError(f"guardrails: rule {name!r} has unknown keys {sorted(unknown)}")
        patterns, keywords = rule.get("patterns") or [], rule.get("keywords") or []
        if not isinstance(patterns, list) or not isinstance(keywords, list) or not (patterns or keywords):
            raise ValueError(f"guardrails: rule {name!r} needs a non-empty 'patterns' and/or 'keywords' list")
        compiled = []
        for p in patterns:
            try:
                compiled.append(re.compile(str(p), re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"guardrails: rule {name!r}: bad regex {p!r}: {exc}") from None
        compiled += [re.compile(rf"(?<!\w){re.escape(str(k))}(?!\w)", re.IGNORECASE) for k in keywords]
        return name, str(rule.get("category") or "blocked"), compiled, str(rule.get("refusal") or self.refusal)

    @classmethod
    def load(cls, path: str | Path | None) -> "Guardrails":
        """Rules from a YAML file; the built-in defaults when ``path`` is None."""
        if path is None:
            return cls()
        import yaml

        return cls(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    def check(self, text: str) -> GuardDecision:
        """The decision for one request text."""
        for name, category, patterns, refusal in self.rules:
            if any(p.search(text) for p in patterns):
                return GuardDecision(False, category, name, refusal)
        return GuardDecision(True)
