"""Pairwise judges for replies, and the position swap that cancels order bias.

A judge looks at one question with its reference and two replies in a given order and says ``first``, ``second``
or ``tie``. :func:`judge_pair` asks twice, once in each order, and declares a winner only when both orders agree
(MT-Bench's conservative rule): a judge that always prefers the first position produces only ties.

- :class:`ReferenceJudge` (default): score = ``w_embed`` · embedding cosine to the reference + ``w_rouge`` ·
  ROUGE-L F1 to the reference − ``claim_penalty`` per unsupported claim of the hallucination rubric (at most
  ``max_penalty``); scores closer than ``margin`` tie.
- :class:`LLMJudge`: a local chat model is shown both replies and the reference; the preference is
  log p("A") − log p("B") of its next token, a tie below ``margin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from triagekit.answer.rubric import check_reply
from triagekit.core.textsim import Embedder, rouge_l

__all__ = ["Judge", "ReferenceJudge", "LLMJudge", "judge_pair", "tally", "build_judge", "Case"]

VERDICTS = ("first", "second", "tie")


@dataclass(frozen=True)
class Case:
    """What a judge may look at besides the replies."""

    question: str
    reference: str
    context: str | None = None


class Judge(Protocol):
    """Anything with ``compare(case, first, second) -> "first" | "second" | "tie"``."""

    def compare(self, case: Case, first: str, second: str) -> str: ...


def judge_pair(judge: Judge, case: Case, model: str, base: str) -> str:
    """``model``, ``base`` or ``tie`` after judging both orders; a winner needs both orders to agree."""
    forward = judge.compare(case, model, base)
    backward = judge.compare(case, base, model)
    if forward == "first" and backward == "second":
        return "model"
    if forward == "second" and backward == "first":
        return "base"
    return "tie"


def tally(outcomes: list[str]) -> dict[str, float]:
    """Wins, ties, losses and ``win_rate`` = (wins + ties / 2) / n, the usual convention with ties counted."""
    n = len(outcomes)
    wins, ties, losses = outcomes.count("model"), outcomes.count("tie"), outcomes.count("base")
    decisive = wins + losses
    return {
        "n": n,
        "wins": wins,
        "ties": ties,
        "losses": losses,
        "win_rate": (wins + ties / 2) / n if n else 0.0,
        "decisive_win_rate": wins / decisive if decisive else 0.5,
    }


class ReferenceJudge:
    """Reference-based scoring: similarity to the reference minus hallucination penalties.

    Args:
        embedder: sentence embedder (default: the embedded MiniLM, loaded on first use).
        w_embed: weight of the embedding cosine.
        w_rouge: weight of ROUGE-L F1.
        claim_penalty: subtracted per unsupported claim.
        max_penalty: cap on the total penalty.
        margin: score differences below this are ties.
    """

    def __init__(
        self,
        embedder: Embedder | None = None,
        w_embed: float = 0.5,
        w_rouge: float = 0.5,
        claim_penalty: float = 0.05,
        max_penalty: float = 0.3,
        margin: float = 0.02,
    ):
        if min(w_embed, w_rouge, claim_penalty, max_penalty, margin) < 0:
            raise ValueError("judge weights, penalties and margin must be non-negative")
        self._embedder = embedder
        self.w_embed, self.w_rouge = w_embed, w_rouge
        self.claim_penalty, self.max_penalty, self.margin = claim_penalty, max_penalty, margin
        self._cache: dict[tuple[str, Case], float] = {}

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder()
        return self._embedder

    def warm(self, cases: list[Case], replies: list[str]) -> None:
        """Score many (case, reply) pairs in batched embedding passes (``compare`` then reads the cache)."""
        todo = [(c, r) for c, r in zip(cases, replies) if (r, c) not in self._cache]
        sims = self.embedder.similarity([r for _, r in todo], [c.reference for c, _ in todo]) if todo else []
        for (case, reply), sim in zip(todo, sims):
            self._cache[(reply, case)] = self._combine(case, reply, sim)

    def _combine(self, case: Case, reply: str, sim: float) -> float:
        unsupported = len(check_reply(reply, case.question, case.reference, case.context).unsupported)
        penalty = min(self.max_penalty, self.claim_penalty * unsupported)
        return self.w_embed * sim + self.w_rouge * rouge_l(reply, case.reference).f1 - penalty

    def score(self, case: Case, reply: str) -> float:
        """The reply's score (cached)."""
        if (reply, case) not in self._cache:
            self.warm([case], [reply])
        return self._cache[(reply, case)]

    def compare(self, case: Case, first: str, second: str) -> str:
        diff = self.score(case, first) - self.score(case, second)
        return "tie" if abs(diff) < self.margin else "first" if diff > 0 else "second"


_PROMPT = """You compare two replies to a customer support ticket.

Ticket:
{question}
{context}
Reference reply written by an expert agent:
{reference}

Reply A:
{first}

Reply B:
{second}

Which reply is more helpful and more consistent with the reference, without invented details? Answer A or B."""


class LLMJudge:
    """A local causal LM as judge (any HF id or path; slow on CPU, so opt-in).

    Args:
        model: path, HF id or ``smollm2``.
        margin: |log p(A) − log p(B)| below this is a tie.
        max_chars: each text is cut to this many characters before prompting.
    """

    def __init__(self, model: str | Path, margin: float = 0.1, max_chars: int = 1500):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from triagekit.core.backbones import resolve_backbone

        path = resolve_backbone(str(model))
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.margin, self.max_chars = margin, max_chars
        self.ids = [self._token_id(t) for t in ("A", "B")]

    def _token_id(self, letter: str) -> int:
        ids = self.tokenizer(letter, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"the judge's tokenizer splits {letter!r} into {len(ids)} tokens")
        return ids[0]

    def compare(self, case: Case, first: str, second: str) -> str:
        import torch

        from triagekit.sft.data import prompt_text

        cut = self.max_chars
        text = _PROMPT.format(
            question=case.question[:cut],
            reference=case.reference[:cut],
            first=first[:cut],
            second=second[:cut],
            context=f"Context:\n{case.context[:cut]}\n" if case.context else "",
        )
        ids = self.tokenizer(prompt_text(self.tokenizer, text), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            logp = torch.log_softmax(self.model(**ids).logits[0, -1].float(), dim=-1)
        diff = float(logp[self.ids[0]] - logp[self.ids[1]])
        return "tie" if abs(diff) < self.margin else "first" if diff > 0 else "second"


def build_judge(spec: str = "reference", margin: float | None = None) -> Judge:
    """``reference`` (default) or ``llm:MODEL`` (a path, HF id or ``smollm2``)."""
    if spec == "reference":
        return ReferenceJudge(margin=0.02 if margin is None else margin)
    if spec.startswith("llm:") and spec[4:]:
        return LLMJudge(spec[4:], margin=0.1 if margin is None else margin)
    raise ValueError(f"unknown judge {spec!r}; use 'reference' or 'llm:MODEL' (a path, HF id or smollm2)")
