"""Batch, streaming and interactive prediction on top of ``Router``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Iterator

__all__ = ["predict_texts", "predict_file", "interactive", "prediction_lines"]


def prediction_lines(
    router, rows: list[dict[str, Any] | str], ids: list[Any], top_k: int = 3, batch_size: int = 64
) -> list[dict[str, Any]]:
    """One output record per input: ``{"id", <head>: {label, confidence, top_k, requires_review}, "requires_review",
    "model_version"}``; the top-level ``requires_review`` is true when any head needs a human."""
    out = []
    for id_, result in zip(ids, router.predict(rows, top_k=top_k, batch_size=batch_size)):
        review = router.needs_review(result)
        out.append({"id": id_, **result, "requires_review": review, "model_version": router.model_version})
    return out


def predict_texts(router, texts: list[str], top_k: int = 3) -> list[dict[str, Any]]:
    """Predictions for ``--text`` values; a text that is empty after stripping is an error, never a guess."""
    empty = [i + 1 for i, t in enumerate(texts) if not str(t).strip()]
    if empty:
        raise ValueError(
            f"--text number {', '.join(map(str, empty))} has no text after cleaning; give the ticket's subject or body"
        )
    return prediction_lines(router, list(texts), list(range(len(texts))), top_k=top_k)


def _chunks(records: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for r in records:
        chunk.append(r)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _written(path: Path, field: str | None) -> list:
    """``field`` of each complete JSONL line of ``path`` (a line cut short by a kill is truncated away)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
        data = data[: data.rfind(b"\n") + 1]
    return [json.loads(line).get(field) if field else None for line in data.splitlines() if line.strip()]


CHUNK_SIZE = 1024
"""Records handed to ``prediction_lines`` at once (the model still runs ``batch_size`` at a time): the length sort,
the TF-IDF half and the numpy post-processing then work on a thousand tickets per call, not one batch."""


def predict_file(
    router,
    input: str | Path,
    output: str | Path,
    batch_size: int = 64,
    top_k: int = 3,
    console=None,
    chunk_size: int = CHUNK_SIZE,
    resume: bool = False,
) -> dict[str, int]:
    """Stream ``input`` (any supported format) to JSONL predictions in constant memory.

    Unreadable rows and rows without text are written to ``<output>.rejected.jsonl`` with file, line and reason.
    With ``resume``, the records already in ``output`` (and its rejected file) are skipped and the rest appended,
    so a killed run over a large file picks up where it stopped; the ids written must match the input's.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from triagekit.data.io import RowError, iter_records
    from triagekit.data.text import build_text

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rejected_path = output.with_suffix(output.suffix + ".rejected.jsonl")
    counts = {"predicted": 0, "rejected": 0}
    done = _written(output, "id") if resume else []
    skip_rejected = len(_written(rejected_path, None)) if resume else 0
    progress = Progress(
        TextColumn("[bold]predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=console is None,
    )
    mode = "a" if resume else "w"
    with progress, output.open(mode) as out, rejected_path.open(mode) as rej:
        task = progress.add_task("predict", total=None)
        for chunk in _chunks(iter_records(input), chunk_size):
            good = []
            for rec in chunk:
                bad = isinstance(rec, RowError) or not build_text(rec.data, router.text_fields)
                if bad and skip_rejected:
                    skip_rejected -= 1
                elif isinstance(rec, RowError):
                    rej.write(json.dumps(rec.to_dict(), ensure_ascii=False, default=str) + "\n")
                    counts["rejected"] += 1
                elif not build_text(rec.data, router.text_fields):
                    err = RowError(rec.file, rec.line, f"no text in {router.text_fields} or 'text'", rec.data)
                    rej.write(json.dumps(err.to_dict(), ensure_ascii=False, default=str) + "\n")
                    counts["rejected"] += 1
                else:
                    good.append(rec)
            ids = [r.data.get("id") if r.data.get("id") is not None else f"{Path(r.file).stem}-{r.line}" for r in good]
            if done:  # resuming: the first len(done) good records are already written, in input order
                n = min(len(done), len(good))
                if [str(i) for i in ids[:n]] != [str(i) for i in done[:n]]:
                    raise ValueError(f"--resume: {output} does not hold the predictions of {input} (ids differ)")
                good, ids, done = good[n:], ids[n:], done[n:]
                counts["skipped"] = counts.get("skipped", 0) + n
            for line in prediction_lines(router, [r.data for r in good], ids, top_k=top_k, batch_size=batch_size):
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
            counts["predicted"] += len(good)
            out.flush()
            progress.update(task, advance=len(chunk))
    if rejected_path.stat().st_size == 0:
        rejected_path.unlink()
    elif console is not None:
        console.print(f"[yellow]{counts['rejected']} rows rejected -> {rejected_path}")
    if console is not None:
        console.print(f"{counts['predicted']} predictions -> {output}")
    return counts


def interactive(router, top_k: int = 3) -> None:
    """Read tickets from stdin (one per line) and print each head's prediction until EOF."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print("Type a ticket and press Enter (Ctrl-D to quit).")
    while True:
        try:
            text = input("> ").strip()
        except (EOFError, KeyboardInterrupt):
            return
        if not text:
            continue
        result = router.predict([text], top_k=top_k)[0]
        table = Table(show_header=True)
        for col in ("head", "label", "confidence", "top-k", "review"):
            table.add_column(col)
        for head, r in result.items():
            if "label" in r:
                alts = ", ".join(f"{t['label']} {t['p']:.2f}" for t in r["top_k"])
                table.add_row(head, r["label"], f"{r['confidence']:.3f}", alts, "yes" if r["requires_review"] else "")
            else:
                table.add_row(head, ", ".join(r["labels"]) or "-", "", "", "yes" if r["requires_review"] else "")
        console.print(table)
