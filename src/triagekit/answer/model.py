"""Tune a chat model on answer examples (through the shared SFT core) and answer with guardrails in front.

``train_answer_model`` turns each example into (user turn, reply) and calls :func:`triagekit.sft.train_sft` (loss
on the reply tokens only). :class:`AnswerModel` is what the CLI, the service and the evaluation use: a tuned run
directory *or* an untuned base (``smollm2``, an HF id, a local folder) with the same system prompt, so a tuned
model and its base are compared on equal terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

from triagekit.answer.guardrails import GuardDecision, Guardrails
from triagekit.answer.prepare import load_split, prepare_answers
from triagekit.answer.schema import AnswerExample

__all__ = ["SYSTEM_PROMPT", "example_prompt", "train_answer_model", "AnswerModel"]

SYSTEM_PROMPT = (
    "You are a customer support agent. Reply to the customer's message politely, helpfully and "
    "concisely. Only state facts given in the message; never invent phone numbers, links, prices, "
    "dates or product names."
)
"""Default system prompt of answer models (recorded in the run; the evaluation gives the base the same one)."""


def example_prompt(example: AnswerExample) -> str:
    """The user turn of an example: its context (when present), a blank line, then the question."""
    q, ctx = example.inputs.question, example.inputs.context
    return f"{ctx}\n\n{q}" if ctx else q


def _splits(data: str | Path, output: Path, console) -> tuple[list[AnswerExample], list[AnswerExample], str]:
    p = Path(data)
    if not p.is_dir():  # a raw file: validated and split into the run folder, like the router's trainer
        summary = prepare_answers(p, output / "data")
        console.print(
            f"prepared {p}: {summary.kept} examples, {summary.rejected} rejected, "
            f"{summary.duplicates} duplicates -> {output / 'data'}"
        )
        p = output / "data"
    train = load_split(p, "train")
    val = load_split(p, "val") if (p / "val.jsonl").is_file() else []
    return train, val, str(p)


def train_answer_model(
    cfg, data: str | Path, output: str | Path, *, resume: bool = False, overwrite: bool = False, console=None
):
    """SFT of ``cfg.base`` on the train split of ``data`` (a prepared folder or a raw file), validated on val.

    Args:
        cfg: a :class:`triagekit.sft.SFTConfig`; ``system_prompt`` None means :data:`SYSTEM_PROMPT`.
        data: output of ``triagekit answer prepare`` or a raw file (prepared into ``output/data``).
        output: the run directory.
        resume: continue from the latest checkpoint.
        overwrite: replace an earlier run in ``output``.
        console: a rich console for progress.

    Returns:
        The core's :class:`triagekit.sft.SFTResult`.
    """
    from rich.console import Console

    from triagekit.sft import train_sft

    console = console or Console(stderr=True)
    output = Path(output)
    if cfg.system_prompt is None:
        cfg = cfg.replace(system_prompt=SYSTEM_PROMPT)
    train, val, data_dir = _splits(data, output, console)
    pairs = [(example_prompt(ex), ex.outputs.answer) for ex in train]
    val_pairs = [(example_prompt(ex), ex.outputs.answer) for ex in val]
    meta = {"data": data_dir, "n_train": len(pairs), "n_val": len(val_pairs)}
    return train_sft(
        cfg,
        pairs,
        output,
        val_pairs=val_pairs,
        task="answer",
        task_meta=meta,
        resume=resume,
        overwrite=overwrite,
        console=console,
    )


class AnswerModel:
    """A causal LM that answers support questions, with guardrails checked before generation.

    Args:
        lm: a loaded :class:`triagekit.sft.CausalLM`.
        guardrails: the rules to apply (default: the built-in ones); pass ``Guardrails({"rules": []})`` for none.
    """

    def __init__(self, lm, guardrails: Guardrails | None = None):
        self.lm = lm
        self.guardrails = guardrails or Guardrails()
        if self.lm.system_prompt is None:
            self.lm.system_prompt = SYSTEM_PROMPT

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        guardrails: Guardrails | None = None,
        device: str | None = None,
        system_prompt: str | None = None,
    ) -> "AnswerModel":
        """A tuned run (``sft.json``) or an untuned base; ``system_prompt`` overrides the recorded one."""
        from triagekit.sft import load

        lm = load(path, device=device)
        if system_prompt is not None:
            lm.system_prompt = system_prompt
        return cls(lm, guardrails)

    @property
    def tuned(self) -> bool:
        return bool(self.lm.meta.get("tuned"))

    @property
    def name(self) -> str:
        return str(self.lm.meta.get("base", "model"))

    def check(self, prompt: str) -> GuardDecision:
        return self.guardrails.check(prompt)

    def answer(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        batch_size: int = 8,
        seed: int | None = 0,
    ) -> list[dict[str, Any]]:
        """``{text, refused, category, rule}`` per prompt; refused prompts get the rule's refusal, unseen by the LM."""
        decisions = [self.check(p) for p in prompts]
        todo = [i for i, d in enumerate(decisions) if d.allowed]
        texts = (
            self.lm.generate(
                [prompts[i] for i in todo],
                max_new_tokens=max_new_tokens,
                temperature=temperature,
                batch_size=batch_size,
                seed=seed,
            )
            if todo
            else []
        )
        generated = dict(zip(todo, texts))
        return [
            {"text": generated[i].strip(), "refused": False, "category": None, "rule": None}
            if d.allowed
            else {"text": d.refusal, "refused": True, "category": d.category, "rule": d.rule}
            for i, d in enumerate(decisions)
        ]

    def stream(self, prompt: str, *, max_new_tokens: int = 256, temperature: float = 0.0) -> Iterator[str]:
        """Pieces of the reply as they are generated (the refusal in one piece when a rule matches)."""
        decision = self.check(prompt)
        if not decision.allowed:
            yield decision.refusal
            return
        yield from self.lm.stream(prompt, max_new_tokens=max_new_tokens, temperature=temperature)
