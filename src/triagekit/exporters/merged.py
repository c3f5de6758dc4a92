"""Merged full weights in Hugging Face format: a LoRA run without its adapter (``triagekit route export --merge``).

The backbone becomes a plain ``save_pretrained`` folder (``AutoModel.from_pretrained`` loads it with no peft),
the heads stay in ``heads.safetensors``, and ``Router.load(out_dir)`` serves it like any full fine-tune.
"""

from __future__ import annotations

from pathlib import Path

from triagekit.exporters.common import copy_lexical, copy_tokenizer, load_merged, read_run, write_info

__all__ = ["export_merged", "MODEL_DIR"]

MODEL_DIR = "model"


def export_merged(run_dir: str | Path, out_dir: str | Path) -> Path:
    """Write ``out_dir/model/{backbone/, heads.safetensors, model.json, tokenizer/}`` and ``router.json``.

    Args:
        run_dir: a trained encoder run; a run without adapters is copied as is (same weights, fresh layout).
        out_dir: the export directory.

    Returns:
        ``out_dir``.
    """
    from triagekit.route.modeling import save_model

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    info = read_run(run_dir)
    model = load_merged(run_dir, info)
    save_model(model, out_dir / MODEL_DIR, adapter=False)
    copy_tokenizer(run_dir, info, out_dir / MODEL_DIR / "tokenizer")
    copy_lexical(run_dir, info, out_dir)
    method = info.get("meta", {}).get("method")
    write_info(
        info, out_dir, run_dir, "encoder", {"format": "hf", "merged_lora": method == "lora"}, model_dir=MODEL_DIR
    )
    return out_dir
