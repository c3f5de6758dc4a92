"""Support answers: data in one schema, SFT of a small chat model on ticket→reply pairs, generation with
guardrails, and evaluation against the untuned base (win rate, hallucination rate, ROUGE-L, embedding similarity)."""

from triagekit.answer.ingest import load_examples
from triagekit.answer.prepare import AnswerPrepareSummary, load_split, prepare_answers
from triagekit.answer.rubric import check_reply, hallucination_rate
from triagekit.answer.schema import AnswerExample
from triagekit.answer.synth import synth_answer_examples, write_answer_suite

__all__ = [
    "AnswerExample",
    "load_examples",
    "prepare_answers",
    "load_split",
    "AnswerPrepareSummary",
    "check_reply",
    "hallucination_rate",
    "synth_answer_examples",
    "write_answer_suite",
]
