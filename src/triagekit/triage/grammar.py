"""Grammar-constrained decoding from a JSON Schema with xgrammar: every output parses and validates.

The grammar is compiled once per (tokenizer, schema) and cached (compiling takes about a second; filling a token
mask about 5 microseconds). ``GrammarConstraint`` plugs into ``triagekit.sft.decode``: it masks each row's
logits and hands back the tokens of the text the grammar forces next (jump-forward decoding: the JSON keys,
separators and the rest of an enum value once its prefix is unique), which the model then reads in one forward
pass instead of generating them one by one.
"""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import torch

from triagekit.triage.schema import TriageSchema

__all__ = ["GrammarConstraint", "compile_schema", "require_xgrammar"]

_COMPILERS: dict[tuple, object] = {}
_GRAMMARS: dict[tuple, object] = {}
_NO_CONTROL: dict[tuple, np.ndarray] = {}


def _no_control_mask(tokenizer, vocab_size: int, stop_ids: Sequence[int]) -> np.ndarray:
    """A packed token bitmask (int32, like xgrammar's) of every token whose text has no raw control character.

    xgrammar lets a free JSON string contain raw U+0000-U+001F, which JSON forbids (they must be escaped). With
    no free whitespace in the grammar nothing else needs them, so these tokens are masked out everywhere.
    """
    key = _tokenizer_key(tokenizer, vocab_size, stop_ids)
    if key not in _NO_CONTROL:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        ok = np.zeros(((vocab_size + 31) // 32) * 32, dtype=np.uint8)
        ok[: len(texts)] = [not any(ord(c) < 0x20 for c in t) for t in texts]
        ok[list(stop_ids)] = 1
        _NO_CONTROL[key] = np.packbits(ok, bitorder="little").view(np.int32).copy()
    return _NO_CONTROL[key]


def require_xgrammar():
    try:
        import xgrammar
    except ImportError as exc:
        raise RuntimeError("constrained decoding needs xgrammar: pip install 'triagekit[triage]'") from exc
    return xgrammar


def _tokenizer_key(tokenizer, vocab_size: int, stop_ids: Sequence[int]) -> tuple:
    return (getattr(tokenizer, "name_or_path", ""), len(tokenizer), vocab_size, tuple(sorted(stop_ids)))


def _check_writable(schema: TriageSchema, tokenizer) -> None:
    """Every property name and enum value must survive encode/decode, or the grammar would ask for bytes this
    tokenizer cannot produce (a dead end at decoding time)."""
    for name, prop in schema.raw["properties"].items():
        for value in [name] + [v for v in prop.get("enum", []) if isinstance(v, str)]:
            ids = tokenizer(value, add_special_tokens=False)["input_ids"]
            if tokenizer.decode(ids) != value:
                raise ValueError(
                    f"{schema.source}: {value!r} (field {name!r}) cannot be written by this model's "
                    f"tokenizer; use characters it can encode"
                )


def compile_schema(schema: TriageSchema, tokenizer, vocab_size: int, stop_ids: Sequence[int]):
    """The compiled grammar of ``schema`` for this tokenizer (cached): compact JSON, keys in schema order, the
    separators ``", "`` and ``": "`` of ``json.dumps`` (what the model was trained on)."""
    xgr = require_xgrammar()
    _check_writable(schema, tokenizer)
    tkey = _tokenizer_key(tokenizer, vocab_size, stop_ids)
    if tkey not in _COMPILERS:
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=sorted(stop_ids))
        _COMPILERS[tkey] = xgr.GrammarCompiler(info, max_threads=2)
    text = json.dumps(schema.grammar_schema(), ensure_ascii=False)  # key order is the output order
    gkey = (tkey, text)
    if gkey not in _GRAMMARS:
        _GRAMMARS[gkey] = _COMPILERS[tkey].compile_json_schema(text, any_whitespace=False, separators=(", ", ": "))
    return _GRAMMARS[gkey]


class GrammarConstraint:
    """A ``triagekit.sft.decode.Constraint`` from a compiled grammar: one xgrammar matcher per row.

    Args:
        jump_forward: return the forced continuation after each token (fewer model calls); False masks only.
    """

    def __init__(self, compiled, tokenizer, vocab_size: int, stop_ids: Sequence[int], jump_forward: bool = True):
        self.xgr = require_xgrammar()
        self.compiled, self.tokenizer, self.vocab_size = compiled, tokenizer, vocab_size
        self.stop_ids, self.jump_forward = sorted(stop_ids), jump_forward
        self.matchers: list = []
        self.bitmask = None
        self.no_control = _no_control_mask(tokenizer, vocab_size, stop_ids)

    @classmethod
    def for_model(cls, schema: TriageSchema, lm, jump_forward: bool = True) -> "GrammarConstraint":
        """For a ``triagekit.sft.CausalLM``: its tokenizer, the model's vocabulary size and its stop tokens."""
        vocab = int(lm.model.get_output_embeddings().weight.shape[0])
        compiled = compile_schema(schema, lm.tokenizer, vocab, lm.stop_ids)
        return cls(compiled, lm.tokenizer, vocab, lm.stop_ids, jump_forward)

    def begin(self, n: int) -> None:
        self.matchers = [self.xgr.GrammarMatcher(self.compiled) for _ in range(n)]
        self.bitmask = self.xgr.allocate_token_bitmask(n, self.vocab_size)

    def prepare(self, rows: Sequence[int]) -> None:
        for r in rows:
            self.matchers[r].fill_next_token_bitmask(self.bitmask, r)
        bits = self.bitmask.numpy()  # numpy: also fine from a worker thread outside torch's inference mode
        bits[list(rows)] &= self.no_control

    def mask_(self, logits: torch.Tensor, rows: Sequence[int]) -> None:
        mask = self.bitmask[list(rows)]
        if bool((mask == 0).all(dim=1).any()):
            raise RuntimeError("the grammar allows no next token (a schema this tokenizer cannot write)")
        if logits.device.type == "cpu":
            self.xgr.apply_token_bitmask_inplace(logits, mask, vocab_size=self.vocab_size)
        else:
            self.xgr.apply_token_bitmask_inplace(
                logits, mask.to(logits.device, non_blocking=True), vocab_size=self.vocab_size
            )

    def advance(self, row: int, token: int) -> list[int]:
        if not self.matchers[row].accept_token(token):
            raise RuntimeError(f"the grammar rejected token {token} that its own mask allowed")
        return self.jump(row)

    def jump(self, row: int) -> list[int]:
        """Accept and return the tokens of the text the grammar forces next (none without jump-forward)."""
        if not self.jump_forward:
            return []
        m = self.matchers[row]
        try:
            forced = m.find_jump_forward_string()
        except UnicodeDecodeError:  # the forced bytes end inside a multi-byte character: generate them instead
            return []
        if not forced:
            return []
        out = []
        for tid in self.tokenizer(forced, add_special_tokens=False)["input_ids"]:
            if not m.accept_token(tid):  # a tokenisation the grammar does not take: decode the rest normally
                break
            out.append(tid)
        return out

    def finished(self, row: int) -> bool:
        """Terminated, or complete with only stop tokens allowed next (no model call needed to end the row)."""
        m = self.matchers[row]
        if m.is_terminated():
            return True
        if not m.is_completed():
            return False
        bits = np.unpackbits(self.bitmask[row].numpy().view(np.uint8), bitorder="little")[: self.vocab_size]
        return int(bits.sum()) == int(bits[self.stop_ids].sum())
