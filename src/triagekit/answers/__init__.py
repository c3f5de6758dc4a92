"""Support answers: data in one schema, SFT of a small chat model on ticket→reply pairs, generation with
guardrails, and evaluation against the untuned base (win rate, hallucination rate, ROUGE-L, embedding similarity)."""

from triagekit.answers.ingest import load_examples
from triagekit.answers.prepare import AnswerPrepareSummary, load_split, prepare_answers
from triagekit.answers.rubric import check_reply, hallucination_rate
from triagekit.answers.schema import AnswerExample
from triagekit.answers.synth import synth_answer_examples, write_answer_suite

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
