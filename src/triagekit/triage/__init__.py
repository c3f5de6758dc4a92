"""Triage as strict JSON: a fine-tuned small LLM turns a raw IT ticket into a schema-valid record.

``load_schema(path)`` (default: ``triagekit/presets/triage/schema.it.json``), ``synth_tickets``/``write_triage_synth``,
``train_triage`` (SFT through ``triagekit.sft``), ``Triager.load(DIR).triage(texts)`` with grammar-constrained
decoding (xgrammar, ``triage.grammar``), and ``evaluate_triage`` (validity, per-field accuracy and macro-F1,
ROUGE-L and embedding similarity of the summary).
"""

from triagekit.triage.model import Triager, read_triage_rows, train_triage
from triagekit.triage.schema import DEFAULT_SCHEMA, TriageSchema, load_schema, parse_output
from triagekit.triage.synth import synth_tickets, write_triage_synth

__all__ = [
    "Triager",
    "read_triage_rows",
    "train_triage",
    "DEFAULT_SCHEMA",
    "TriageSchema",
    "load_schema",
    "parse_output",
    "synth_tickets",
    "write_triage_synth",
]
