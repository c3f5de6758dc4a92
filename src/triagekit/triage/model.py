"""``Triager``: raw ticket text in, a schema-valid triage record out. Also the training-data reader and
``train_triage`` (SFT with short, varied instructions; the schema is enforced at inference by the grammar)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

from triagekit.triage.schema import TriageSchema, load_schema, parse_output

__all__ = ["Triager", "read_triage_rows", "train_triage", "DEFAULT_INSTRUCTION"]

DEFAULT_INSTRUCTION = "Triage this ticket as JSON."


def build_prompt(text: str, instruction: str = DEFAULT_INSTRUCTION, schema: TriageSchema | None = None) -> str:
    """The user turn: the instruction, the schema's fields and values when given (untuned models), the ticket."""
    parts = [instruction] + ([schema.describe()] if schema is not None else []) + [f"Ticket: {text}"]
    return "\n".join(parts)


def row_text(row: dict[str, Any]) -> str:
    """The ticket text of a row: ``text``, or ``subject`` and ``body`` joined."""
    if isinstance(row.get("text"), str) and row["text"].strip():
        return row["text"]
    return "\n".join(str(row[k]) for k in ("subject", "body") if isinstance(row.get(k), str) and row[k].strip())


def read_triage_rows(path: str | Path, schema: TriageSchema) -> tuple[list[dict[str, Any]], list[str]]:
    """Labelled rows of a JSONL file (``text`` or ``subject``/``body``, and the gold record under ``triage`` or as
    top-level fields); returns ``(rows, errors)`` with ``file:line: reason`` for every row left out."""
    rows, errors = [], []
    with Path(path).open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{where}: not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict) or not row_text(row):
                errors.append(f"{where}: no ticket text (need 'text' or 'subject'/'body')")
                continue
            gold = (
                row.get("triage")
                if isinstance(row.get("triage"), dict)
                else {k: row[k] for k in schema.fields if k in row}
            )
            problems = schema.validate(gold)
            if problems:
                errors.append(f"{where}: gold record does not validate: {problems[0]}")
                continue
            rows.append(
                {
                    "text": row_text(row),
                    "instruction": row.get("instruction"),
                    "triage": gold,
                    "id": row.get("id", line_no),
                }
            )
    return rows, errors


def train_pairs(rows: Sequence[dict[str, Any]], schema: TriageSchema, seed: int = 0) -> list[tuple[str, str]]:
    """``(prompt, answer)`` for SFT: the row's instruction (or a rotating one) + ticket -> compact JSON."""
    from triagekit.triage.synth import INSTRUCTIONS

    rng = random.Random(seed)
    return [
        (build_prompt(r["text"], r.get("instruction") or rng.choice(INSTRUCTIONS)), schema.dumps(r["triage"]))
        for r in rows
    ]


def train_triage(
    cfg,
    data: str | Path,
    output: str | Path,
    *,
    schema: TriageSchema | None = None,
    val: str | Path | None = None,
    val_fraction: float = 0.1,
    resume: bool = False,
    overwrite: bool = False,
    console=None,
):
    """SFT of ``cfg.base`` on labelled tickets; the schema is saved in the run (``sft.json``).

    Args:
        cfg: an ``SFTConfig``.
        data: JSONL of labelled tickets (``triagekit triage synth`` writes one).
        val: a validation JSONL; otherwise ``val_fraction`` of ``data`` (seeded shuffle).
    """
    from rich.console import Console

    from triagekit.sft import train_sft

    console = console or Console(stderr=True)
    schema = schema or load_schema()
    rows, errors = read_triage_rows(data, schema)
    if errors:
        console.print(f"[yellow]{len(errors)} rows of {data} left out; first: {errors[0]}")
    if val is not None:
        val_rows, val_errors = read_triage_rows(val, schema)
        if val_errors:
            console.print(f"[yellow]{len(val_errors)} rows of {val} left out; first: {val_errors[0]}")
    else:
        order = list(range(len(rows)))
        random.Random(cfg.seed).shuffle(order)
        cut = int(round(val_fraction * len(rows)))
        val_rows, rows = [rows[i] for i in order[:cut]], [rows[i] for i in order[cut:]]
    if not rows:
        raise ValueError(f"{data}: no valid training rows")
    return train_sft(
        cfg,
        train_pairs(rows, schema, cfg.seed),
        output,
        val_pairs=train_pairs(val_rows, schema, 1),
        task="triage",
        task_meta={
            "schema": schema.raw,
            "instruction": DEFAULT_INSTRUCTION,
            "rejected_rows": errors[:100],
            "n_rejected": len(errors),
        },
        resume=resume,
        overwrite=overwrite,
        console=console,
    )


class Triager:
    """A causal LM that writes triage records. ``Triager.load(DIR)`` for a ``triage train`` run (its
    schema), or ``Triager.load("smollm2", schema=...)`` for an untuned model (the schema goes into the prompt)."""

    def __init__(
        self, lm, schema: TriageSchema, *, schema_in_prompt: bool, instruction: str = DEFAULT_INSTRUCTION, guide=None
    ):
        self.lm, self.schema, self.schema_in_prompt, self.instruction = lm, schema, schema_in_prompt, instruction
        self.guide = guide
        self._constraint = None

    @classmethod
    def load(
        cls,
        path_or_name: str | Path,
        *,
        schema: str | Path | TriageSchema | None = None,
        device: str | None = None,
        schema_in_prompt: bool | None = None,
        router: str | Path | None = None,
        field_map: str | Path | dict | None = None,
        unsure: str = "router",  # triage.guided.DEFAULT_UNSURE (a test ties them)
        top_k: int = 3,
    ) -> "Triager":
        """A tuned run or an untuned model; ``router`` (a router run directory) fills the schema's enum fields
        (see ``triagekit.triage.guided``), mapped by head name or by ``field_map``."""
        from triagekit.sft import load

        lm = load(path_or_name, device=device)
        tuned = lm.meta.get("task") == "triage"
        if schema is None and tuned:
            schema = TriageSchema(lm.meta["task_meta"]["schema"], f"{path_or_name}/sft.json")
        elif not isinstance(schema, TriageSchema):
            schema = load_schema(schema)
        guide = None
        if router is not None:
            from triagekit.triage.guided import RouterGuide

            guide = RouterGuide.load(router, schema, field_map, unsure=unsure, top_k=top_k)
        return cls(
            lm, schema, schema_in_prompt=not tuned if schema_in_prompt is None else schema_in_prompt, guide=guide
        )

    @property
    def model_version(self) -> str:
        kind = "triage" if self.lm.meta.get("tuned") else "base"
        return f"{Path(str(self.lm.meta.get('base', 'model'))).name}-{kind}"

    def prompt(self, text: str) -> str:
        return build_prompt(text, self.instruction, self.schema if self.schema_in_prompt else None)

    def constraint(self, jump_forward: bool = True):
        from triagekit.triage.grammar import GrammarConstraint

        if self._constraint is None or self._constraint.jump_forward != jump_forward:
            self._constraint = GrammarConstraint.for_model(self.schema, self.lm, jump_forward=jump_forward)
        return self._constraint

    def triage(
        self,
        texts: Sequence[str],
        *,
        constrained: bool = True,
        jump_forward: bool = True,
        batch_size: int = 8,
        max_new_tokens: int = 160,
        guide=None,
        guided: bool = True,
    ) -> list[dict[str, Any]]:
        """One result per text: ``{"triage": record | None, "valid": bool, "errors": [...], "raw": output}``, and
        with a router guide ``"_meta"``: per routed field its source (router / llm_topk / llm), the router's
        confidence, top-k and ``requires_review`` — beside the record, so the record itself stays schema-valid.

        Constrained, ``max_new_tokens`` is raised to the schema's bound when it has one (``max_output_bytes``), so
        a model that writes long strings is never cut before the closing brace; rows stop as soon as the grammar
        is complete, so the bound costs nothing to a model that writes short ones.

        Args:
            guide: a ``RouterGuide`` (default: the one given to ``load``); ``guided=False`` ignores it.
        """
        guide = (guide or self.guide) if guided else None
        if guide is not None and not constrained:
            raise ValueError("router-guided triage needs constrained decoding (the grammar forces the routed values)")
        bound = self.schema.max_output_bytes() if constrained else None
        if bound is not None:
            max_new_tokens = max(max_new_tokens, bound + 1)
        constraint = self.constraint(jump_forward) if constrained else None
        decisions = guide.decide(texts) if guide is not None else None
        if decisions is not None:
            from triagekit.triage.guided import GuidedConstraint

            constraint = GuidedConstraint(constraint, [{f: d.values for f, d in dec.items()} for dec in decisions])
        outputs = self.lm.generate(
            [self.prompt(t) for t in texts],
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            constraint=constraint,
            overlap=False,
        )
        results = []
        for i, raw in enumerate(outputs):
            record, errors = parse_output(raw, self.schema)
            result = {"triage": record, "valid": record is not None and not errors, "errors": errors, "raw": raw}
            if decisions is not None:
                result["_meta"] = {f: d.meta((record or {}).get(f)) for f, d in decisions[i].items()}
            results.append(result)
        return results
