"""Support answers: data in one schema, SFT of a small chat model on ticket→reply pairs, generation with
guardrails, and evaluation against the untuned base (win rate, hallucination rate, ROUGE-L, embedding similarity).

The names below load on first use: ``answer.rubric`` pulls in scikit-learn (2.5 s here), which
``triagekit --help`` must not pay for (``triagekit.answer.commands`` is imported at start-up).
"""

from triagekit.core.lazy import lazy_exports

_EXPORTS = {
    "triagekit.answer.ingest": ["load_examples"],
    "triagekit.answer.prepare": ["AnswerPrepareSummary", "load_split", "prepare_answers"],
    "triagekit.answer.rubric": ["check_reply", "hallucination_rate"],
    "triagekit.answer.schema": ["AnswerExample"],
    "triagekit.answer.synth": ["synth_answer_examples", "write_answer_suite"],
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
