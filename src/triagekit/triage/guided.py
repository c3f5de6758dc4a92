"""Router-guided triage: a router fills the schema's enum fields, the grammar forces them into the JSON, and the
LLM writes only the free fields (summary, affected system, ...), conditioned on the router's choices that come
before them in the record.

Why: on enum fields a router trained on the same tickets is as good as or better than a small tuned LLM (and it is
calibrated), while only the LLM can write free text; the two make different mistakes. Where the router is unsure
(below its review threshold) the LLM may choose among the router's top-k for that field (``unsure="topk"``): the
value is restricted to those labels, so the output still validates.

A forced value costs nearly nothing: it is appended to the row's tokens like the grammar's own jump-forward text
and read in the same forward pass as the token before it. No grammar is compiled per ticket: ``GuidedConstraint``
wraps the schema's one compiled ``GrammarConstraint`` and narrows each row's mask only while that row writes a
guided value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from triagekit.triage.schema import TriageSchema

__all__ = ["FieldDecision", "RouterGuide", "GuidedConstraint", "UNSURE_MODES", "DEFAULT_UNSURE"]

UNSURE_MODES = ("topk", "router", "llm")
"""What a field gets when the router is below its review threshold: the LLM picks among the router's top-k
(``topk``), the router's top-1 anyway (``router``), or the LLM picks freely among all values (``llm``)."""

DEFAULT_UNSURE = "router"
"""The router's top-1 even where it is unsure (the field is still marked ``requires_review``). Measured with
``benchmarks/triage.py``: on the shared support tickets the LLM's pick among the top-3 beat the router on queue and
priority but lost 2.4 points on type, and on the synthetic IT tickets it lost on all five fields (84.3 % vs 96.3 %
right on the unsure fields), so ``topk`` is an option to measure on one's own tickets, not the default."""

_OPEN_VALUE = re.compile(r'"((?:[^"\\]|\\.)+)": "((?:[^"\\]|\\.)*)$')
"""The text ends inside the string value of a key: group 1 is the key, group 2 what is written of the value so far.
In compact JSON an unescaped ``": "`` cannot occur inside a string, so this never matches inside free text."""


@dataclass
class FieldDecision:
    """What the router says about one enum field of one ticket."""

    values: list[str] | None
    """The values the output may take (one: forced; several: the LLM picks among them; None: unrestricted)."""
    source: str
    """``router`` (forced), ``llm_topk`` (the LLM chose among the router's top-k) or ``llm`` (unrestricted)."""
    confidence: float | None = None
    """The router's calibrated confidence in its top-1 label."""
    requires_review: bool = True
    """The router's review flag for this field (True when the router could not read the ticket)."""
    top_k: list[dict[str, Any]] = field(default_factory=list)
    """The router's top-k labels with probabilities."""

    def meta(self, chosen: Any) -> dict[str, Any]:
        out = {
            "source": self.source,
            "confidence": self.confidence,
            "requires_review": self.requires_review,
            "top_k": self.top_k,
        }
        if self.source == "llm_topk":
            out["router_label"] = self.top_k[0]["label"] if self.top_k else None
            out["agrees_with_router"] = bool(self.top_k) and chosen == self.top_k[0]["label"]
        return out


class RouterGuide:
    """A router and the schema fields it fills.

    Args:
        router: a ``triagekit.route.Router``.
        schema: the triage schema.
        field_map: schema field -> router head; None maps every enum field that has a single-label head of the
            same name.
        unsure: what an unsure field gets (see ``UNSURE_MODES``).
        top_k: how many router labels the LLM may choose among when unsure.

    Raises:
        ValueError: before any decoding, naming the field, when a mapped field is not an enum of the schema, a head
            is missing or multi-label, or a head has labels the schema's enum does not allow.
    """

    def __init__(
        self,
        router,
        schema: TriageSchema,
        field_map: Mapping[str, str] | None = None,
        unsure: str = DEFAULT_UNSURE,
        top_k: int = 3,
    ):
        if unsure not in UNSURE_MODES:
            raise ValueError(f"unsure must be one of {UNSURE_MODES}, got {unsure!r}")
        if top_k < 2 and unsure == "topk":
            raise ValueError("unsure=topk needs top_k >= 2")
        self.router, self.schema, self.unsure, self.top_k = router, schema, unsure, top_k
        heads = {h.name: h for h in router.heads}
        enums = schema.enum_fields
        if field_map is None:
            field_map = {f: f for f in enums if f in heads}
            if not field_map:
                raise ValueError(
                    f"the router's heads ({', '.join(heads)}) match none of the schema's enum fields "
                    f"({', '.join(enums)}); give a field map (schema field: router head)"
                )
        for fld, head in field_map.items():
            if fld not in schema.fields:
                raise ValueError(f"field map: {fld!r} is not a field of the schema ({', '.join(schema.fields)})")
            if fld not in enums:
                raise ValueError(f"field map: schema field {fld!r} has no enum; only enum fields can be routed")
            if head not in heads:
                raise ValueError(
                    f"field map: schema field {fld!r} -> router head {head!r}, but the router has no "
                    f"such head (it has {', '.join(heads)})"
                )
            if heads[head].multilabel:
                raise ValueError(
                    f"field map: router head {head!r} (for {fld!r}) is multi-label; a schema enum field takes one value"
                )
            allowed = {str(v) for v in enums[fld]}
            unknown = [lab for lab in heads[head].labels if lab not in allowed]
            if unknown:
                raise ValueError(
                    f"schema field {fld!r} does not allow the router head {head!r}'s labels "
                    f"{unknown}; its enum is {sorted(allowed)}: retrain the router on the schema's "
                    "values or add them to the schema"
                )
            if any(not isinstance(v, str) for v in enums[fld]):
                raise ValueError(f"schema field {fld!r}: routed enums must be strings")
        self.field_map = dict(field_map)

    @classmethod
    def load(
        cls,
        router_dir: str | Path,
        schema: TriageSchema,
        field_map: str | Path | Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> "RouterGuide":
        """A guide from a router run directory and an optional mapping (a dict, or a JSON/YAML file of
        ``schema_field: router_head``)."""
        from triagekit.route import Router

        if isinstance(field_map, (str, Path)):
            field_map = read_field_map(field_map)
        return cls(Router.load(router_dir), schema, field_map, **kwargs)

    def decide(self, texts: Sequence[str]) -> list[dict[str, FieldDecision]]:
        """Per ticket, a decision for every routed field. A ticket with no readable text is not guided: its fields
        are left to the LLM and marked for review."""
        readable = [i for i, t in enumerate(texts) if isinstance(t, str) and t.strip()]
        out: list[dict[str, FieldDecision]] = [
            {f: FieldDecision(None, "llm", None, True, []) for f in self.field_map} for _ in texts
        ]
        if not readable:
            return out
        preds = self.router.predict([texts[i] for i in readable], top_k=self.top_k)
        for i, pred in zip(readable, preds):
            for fld, head in self.field_map.items():
                p = pred[head]
                top = [{"label": t["label"], "p": t["p"]} for t in p["top_k"]]
                if not p["requires_review"] or self.unsure == "router":
                    out[i][fld] = FieldDecision([p["label"]], "router", p["confidence"], p["requires_review"], top)
                elif self.unsure == "topk":
                    out[i][fld] = FieldDecision([t["label"] for t in top], "llm_topk", p["confidence"], True, top)
                else:
                    out[i][fld] = FieldDecision(None, "llm", p["confidence"], True, top)
        return out


def read_field_map(path: str | Path) -> dict[str, str]:
    """``schema_field: router_head`` pairs from a JSON or YAML file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"field map {path} does not exist")
    text = path.read_text()
    try:
        data = __import__("yaml").safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
        raise ValueError(f"field map {path}: cannot parse: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"field map {path}: must be a mapping of schema field -> router head (strings)")
    return data


class _TokenTexts:
    """Every token's decoded text, and the ids of each text (to find the tokens that spell a prefix)."""

    _cache: dict[tuple, "_TokenTexts"] = {}

    def __init__(self, tokenizer):
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        self.by_text: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            if t and "\ufffd" not in t:
                self.by_text.setdefault(t, []).append(i)

    @classmethod
    def of(cls, tokenizer) -> "_TokenTexts":
        key = (getattr(tokenizer, "name_or_path", ""), len(tokenizer))
        if key not in cls._cache:
            cls._cache[key] = cls(tokenizer)
        return cls._cache[key]

    def prefixes(self, rest: str) -> list[int]:
        """Tokens whose text is a non-empty prefix of ``rest``."""
        return [i for n in range(1, len(rest) + 1) for i in self.by_text.get(rest[:n], ())]


class GuidedConstraint:
    """A ``triagekit.sft.decode.Constraint`` that wraps a ``GrammarConstraint`` and narrows routed enum values.

    ``allowed[row]`` maps a field to the values its output may take: one value is forced (appended like
    jump-forward text), several restrict the row's mask to tokens that continue one of them; a field not in the
    mapping is left to the grammar.
    """

    def __init__(self, inner, allowed: Sequence[Mapping[str, Sequence[str] | None]]):
        self.inner, self.tokenizer = inner, inner.tokenizer
        self.allowed = [{k: list(v) for k, v in a.items() if v} for a in allowed]
        self.tokens: list[list[int]] = []
        self.texts = _TokenTexts.of(self.tokenizer)
        self.words = (inner.vocab_size + 31) // 32

    # -- Constraint protocol ------------------------------------------------------------------------------
    def for_rows(self, indices: Sequence[int]) -> "GuidedConstraint":
        """The constraint of one batch of prompts (``CausalLM.generate`` batches prompts by length)."""
        return GuidedConstraint(self.inner, [self.allowed[i] for i in indices])

    def begin(self, n: int) -> None:
        if n != len(self.allowed):
            raise ValueError(f"guided decoding got {n} prompts for {len(self.allowed)} router decisions")
        self.inner.begin(n)
        self.tokens = [[] for _ in range(n)]

    def prepare(self, rows: Sequence[int]) -> None:
        self.inner.prepare(rows)
        bits = self.inner.bitmask.numpy()
        for r in rows:
            rest = self._open_choices(r)
            if rest is not None:
                bits[r] &= self._mask(rest)

    def mask_(self, logits, rows: Sequence[int]) -> None:
        self.inner.mask_(logits, rows)

    def advance(self, row: int, token: int) -> list[int]:
        forced = self.inner.advance(row, token)
        self.tokens[row] += [token] + forced
        while True:
            rest = self._open_choices(row)
            if rest is None or len(rest) != 1:
                return forced
            # One value fits what is written so far: write the rest of it (and the closing quote) now.
            more = self._accept(row, self.tokenizer(rest[0], add_special_tokens=False)["input_ids"])
            more += self.inner.jump(row)
            if not more:
                return forced
            forced = forced + more
            self.tokens[row] += more

    def finished(self, row: int) -> bool:
        return self.inner.finished(row)

    # -- helpers --------------------------------------------------------------------------------------------
    def _open_choices(self, row: int) -> list[str] | None:
        """The rest of each allowed value (with its closing quote) when ``row`` is inside a guided value."""
        if not self.allowed[row]:
            return None
        m = _OPEN_VALUE.search(self.tokenizer.decode(self.tokens[row]))
        if m is None or m.group(1) not in self.allowed[row]:
            return None
        written = m.group(2)
        rest = [v[len(written) :] + '"' for v in self.allowed[row][m.group(1)] if v.startswith(written)]
        if not rest:
            raise RuntimeError(f"field {m.group(1)!r}: {written!r} starts none of the allowed values")
        return rest

    def _mask(self, rests: Sequence[str]) -> np.ndarray:
        ok = np.zeros(self.words * 32, dtype=np.uint8)
        ids = [i for rest in rests for i in self.texts.prefixes(rest) if i < len(ok)]
        ok[ids] = 1
        return np.packbits(ok, bitorder="little").view(np.int32)

    def _accept(self, row: int, ids: Sequence[int]) -> list[int]:
        matcher = self.inner.matchers[row]
        for tid in ids:
            if not matcher.accept_token(tid):
                raise RuntimeError(f"the grammar rejected a routed value's token {tid}")
        return list(ids)
