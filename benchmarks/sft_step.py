"""Seconds per SFT training step: logits for every position vs for the answer tokens only.

``--task answer`` (default): the answer preset (``smollm2-lora``: SmolLM2-135M-Instruct, LoRA r 16, bf16 autocast)
on the shared support tickets (subject + body -> the reference ``answer``, with the answer model's system prompt).
``--task triage``: the triage preset (``smollm2``) on synthetic tickets -> their JSON (``triagekit triage synth``,
the prompt ``triagekit triage train`` builds). Both encoded and batched as training does (length buckets of the
preset's batch size). Each step is forward, backward and AdamW, timed for both losses on the same batches, interleaved
round by round, after a warm-up step each:

- ``labels=``: ``model(..., labels=...)``, the causal LM's own loss (a vocabulary projection at every position).
- answer tokens: ``triagekit.sft.train.answer_token_loss`` (what training uses): logits only at positions that
  predict an answer token in some row of the batch.

It prints seconds per step, the ratio, the share of positions kept, and the two losses of the first batch (equal).

    flock /tmp/triagekit-cpu.lock python benchmarks/sft_step.py
    flock /tmp/triagekit-cpu.lock python benchmarks/sft_step.py --task triage
    python benchmarks/sft_step.py --config smollm2-full --steps 6
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TICKETS = Path(__file__).resolve().parents[2] / "shared" / "data" / "support-tickets" / "tickets.csv"


def answer_pairs(path: Path, n: int) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if (r.get("answer") or "").strip()]
    return [(f"{r['subject']}\n\n{r['body']}".strip(), r["answer"].strip()) for r in rows[:n]]


def triage_pairs(n: int) -> list[tuple[str, str]]:
    from triagekit.triage.model import train_pairs
    from triagekit.triage.schema import load_schema
    from triagekit.triage.synth import synth_tickets

    schema = load_schema()
    return train_pairs(synth_tickets(n, seed=0, schema=schema), schema, seed=0)


def main() -> None:
    import torch

    from triagekit.answer.model import SYSTEM_PROMPT
    from triagekit.core.batching import BucketBatchSampler
    from triagekit.core.presets import resolve_preset
    from triagekit.core.training import native_bf16
    from triagekit.sft.config import load_sft_config
    from triagekit.sft.data import IGNORE_INDEX, SFTCollator, encode_pairs
    from triagekit.sft.train import _build, _keeps_logits, answer_token_loss

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=("answer", "triage"), default="answer")
    parser.add_argument("--config", help="a preset of the task or a YAML path (default: smollm2-lora / smollm2)")
    parser.add_argument("--data", type=Path, default=TICKETS)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per loss (after one warm-up each)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    args.config = args.config or {"answer": "smollm2-lora", "triage": "smollm2"}[args.task]
    cfg = load_sft_config(resolve_preset(args.config, task=args.task))
    with tempfile.TemporaryDirectory() as tmp:
        model, tokenizer = _build(cfg, Path(tmp), write_base=False)
    n = 64 * cfg.batch_size
    if args.task == "answer":
        examples, _ = encode_pairs(tokenizer, answer_pairs(args.data, n), cfg.max_length, system=SYSTEM_PROMPT)
    else:
        examples, _ = encode_pairs(tokenizer, triage_pairs(n), cfg.max_length, system=cfg.system_prompt)
    sampler = BucketBatchSampler([len(e["input_ids"]) for e in examples], cfg.batch_size, seed=cfg.seed)
    collate = SFTCollator(tokenizer.pad_token_id)
    batches = [collate([(i, examples[i]) for i in b]) for b in sampler][: args.steps + 1]
    bf16 = cfg.mixed_precision == "bf16" or (cfg.mixed_precision == "native" and native_bf16(cpu=True))
    keeps = _keeps_logits(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.resolved_lr)

    def labels_loss(batch):
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss

    def answer_loss(batch):
        return answer_token_loss(model, batch, keeps)

    losses = {"labels= (every position)": labels_loss, "answer tokens only": answer_loss}
    model.train()

    def step(fn, batch) -> tuple[float, float]:
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = fn(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return time.perf_counter() - started, float(loss.detach())

    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = {}
    for name, fn in losses.items():  # the same first batch and weights: the same loss
        model.load_state_dict(state)
        first[name] = step(fn, batches[0])[1]
    seconds = {name: [] for name in losses}
    for batch in batches[1:]:
        for name, fn in losses.items():
            seconds[name].append(step(fn, batch)[0])
    kept = [float((b["labels"][:, 1:] != IGNORE_INDEX).any(0).float().mean()) for b in batches[1:]]
    tokens = statistics.mean(int(b["attention_mask"].sum()) for b in batches[1:])
    print(
        f"{args.task}, {args.config}: {cfg.base}, {cfg.method}, batch {cfg.batch_size}, max_length {cfg.max_length}, "
        f"{'bf16 autocast' if bf16 else 'fp32'}, {args.threads} threads; {len(batches) - 1} timed steps per loss, "
        f"{tokens:.0f} tokens per batch; positions with logits: {100 * statistics.mean(kept):.0f} %"
    )
    print("| loss | s/step (median) | s/step (mean) | first-batch loss |")
    print("|---|---|---|---|")
    for name in losses:
        s = seconds[name]
        print(f"| {name} | {statistics.median(s):.3f} | {statistics.mean(s):.3f} | {first[name]:.5f} |")
    ref, new = (statistics.median(seconds[n]) for n in losses)
    print(f"\nanswer tokens only: {ref / new:.2f}x the steps per second of labels=")


if __name__ == "__main__":
    main()
