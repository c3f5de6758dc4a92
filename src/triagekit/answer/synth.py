"""Synthetic question → reference-answer pairs built on the project's synthetic tickets (shippable, seedable).

Each English synthetic ticket gets a reply written from a per-queue template that reuses only facts found in the
ticket (product, order or invoice number, error message), so the reference itself is grounded and a model that
invents other numbers, URLs or products can be caught by the hallucination rubric. The shipped evaluation suite
(``suites/answers-synth-100.jsonl``) is ``synth_answer_examples(100, seed=7)``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from triagekit.answer.schema import AnswerExample
from triagekit.data.prepare import write_jsonl
from triagekit.data.synth import SLOTS, synth_tickets

__all__ = ["synth_answer_examples", "write_answer_suite", "SUITE_SEED"]

SUITE_SEED = 7
_ORDER = re.compile(r"(?:#|ORD-)\d{5,6}\b")
_INVOICE = re.compile(r"\bINV-2024-\d{4}\b")

# queue -> reply templates; {product}, {ref} and {error} are filled from the ticket or replaced by generic words
_REPLIES: dict[str, list[str]] = {
    "Technical Support": [
        "Thank you for reporting the problem with {product}. Please update {product} to the latest version, restart "
        "your device and try again. If {error} still appears, send us the log file so we can investigate.",
        "We are sorry that {product} is not working as expected. Please sign out, clear the app cache and sign in "
        "again. If the issue persists, reply with a screenshot of {error} and we will escalate it.",
    ],
    "Billing and Payments": [
        "Thank you for contacting us about your billing question{ref}. We have forwarded it to our billing team, who "
        "will review the charges and confirm the correction by email within two business days.",
        "We have received your request regarding {product} billing{ref}. Our billing team will check your account "
        "and update the invoice; you will receive a confirmation once the change is applied.",
    ],
    "Customer Service": [
        "Thank you for your message and your feedback. We have shared it with the responsible team and a customer "
        "service agent will contact you shortly to resolve this.",
        "We are sorry for the inconvenience. Your request has been recorded, and a member of our customer service "
        "team will get back to you as soon as possible with the next steps.",
    ],
    "IT Support": [
        "Thank you for contacting IT support. We have opened a ticket for your request and a technician will contact "
        "you to set up access. In the meantime, please restart your computer and check that you are on the company "
        "network.",
        "We have received your IT request. Please make sure your device is connected to the company network; a "
        "technician will reach out to complete the setup and confirm once it is done.",
    ],
    "Returns and Exchanges": [
        "Thank you for your return request{ref}. We will send you a return label by email. Please pack the item in "
        "its original packaging; the refund or exchange is processed once we receive it.",
        "We are sorry the product did not meet your expectations{ref}. We have started the return process and will "
        "email you the return label and instructions.",
    ],
    "Service Outages and Maintenance": [
        "Thank you for reporting the outage affecting {product}. Our engineers are aware of the issue and are working "
        "on a fix. We will update you as soon as the service is restored.",
        "We are sorry for the disruption to {product}. The incident has been escalated to our operations team, and "
        "we will notify you when the service is back to normal.",
    ],
    "Sales and Pre-Sales": [
        "Thank you for your interest in {product}. A member of our sales team will contact you to discuss your "
        "requirements and prepare an offer that fits your team.",
        "We are happy to help you evaluate {product}. Our sales team will reach out to schedule a short call and "
        "answer your questions about plans and pricing.",
    ],
    "Human Resources": [
        "Thank you for your question. The HR team has received your request and will get back to you with the "
        "information within three business days.",
        "We have forwarded your request to the HR team. They will review it and contact you directly with the next "
        "steps.",
    ],
}


def _facts(text: str) -> dict[str, str | None]:
    product = next((p for p in SLOTS["product"] if p in text), None)
    error = next((e for e in SLOTS["error"] if e in text), None)
    ref = _ORDER.search(text) or _INVOICE.search(text)
    return {"product": product, "error": error, "ref": ref.group(0) if ref else None}


def _reply(queue: str, text: str, rng: random.Random) -> str:
    facts = _facts(text)
    template = rng.choice(_REPLIES[queue])
    return template.format(
        product=facts["product"] or "the product",
        error=facts["error"] or "the error",
        ref=f" ({facts['ref']})" if facts["ref"] else "",
    )


def synth_answer_examples(n: int, seed: int = SUITE_SEED) -> list[AnswerExample]:
    """``n`` English synthetic tickets with grounded reference replies, in the unified schema (same seed, same data).

    Args:
        n: number of examples.
        seed: random seed (for the tickets and the choice of reply template).
    """
    rng = random.Random(seed)
    out: list[AnswerExample] = []
    pool_size = n * 2
    while len(out) < n:
        tickets = [t for t in synth_tickets(pool_size, seed=seed) if t["language"] == "en"]
        out = []
        for t in tickets[:n]:
            question = f"{t['subject']}\n\n{t['body']}"
            row: dict[str, Any] = {
                "id": f"synth-{t['id']}",
                "inputs": {"question": question},
                "outputs": {"answer": _reply(t["queue"], question, rng)},
                "meta": {
                    "source": "triagekit-synth",
                    "timestamp": t["created_at"],
                    "tags": t["tags"],
                    "queue": t["queue"],
                    "language": "en",
                },
            }
            out.append(AnswerExample.model_validate(row))
        pool_size *= 2
    return out


def write_answer_suite(out: str | Path, n: int = 100, seed: int = SUITE_SEED) -> Path:
    """Write :func:`synth_answer_examples` as JSONL (byte-identical for a seed)."""
    write_jsonl(out, (ex.to_row() for ex in synth_answer_examples(n, seed)))
    return Path(out)
