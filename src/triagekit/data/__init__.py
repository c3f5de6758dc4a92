"""Data ingestion: read ticket files, validate rows, redact PII, deduplicate, split, describe, synthesise."""

from triagekit.data.card import data_card, render_card, stats
from triagekit.data.io import Record, RowError, iter_records
from triagekit.data.pii import redact, redact_row
from triagekit.data.prepare import PrepareSummary, load_prepared, prepare, read_jsonl, split_rows, write_jsonl
from triagekit.data.synth import synth_tickets, write_synth
from triagekit.data.validate import load_records, validate_record

__all__ = [
    "Record",
    "RowError",
    "iter_records",
    "validate_record",
    "load_records",
    "redact",
    "redact_row",
    "PrepareSummary",
    "prepare",
    "split_rows",
    "read_jsonl",
    "write_jsonl",
    "load_prepared",
    "data_card",
    "render_card",
    "stats",
    "synth_tickets",
    "write_synth",
]
