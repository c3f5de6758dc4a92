"""``triagekit route export``: registered into the ``route`` group from here, so that ``route`` never imports the
exporters (they import the router's public names). Cheap to import: onnx loads inside the verb."""

from __future__ import annotations

import argparse

from triagekit.core.cli import Alias, Group, Verb, console

__all__ = ["COMMANDS", "ALIASES", "cmd_export"]


def cmd_export(args: argparse.Namespace) -> int:
    from triagekit.exporters.export import export

    fmt = args.format or ("hf" if args.merge else "onnx")
    if args.merge and fmt != "hf":
        raise ValueError("--merge writes merged HF weights (--format hf); ONNX and Triton exports merge LoRA anyway")
    from triagekit.route.router import resolve_model_path

    out = export(
        resolve_model_path(args.model)[0], args.out, format=fmt, quantize=args.quantize, optimize=args.optimize
    )
    console().print(
        f"[green]exported[/] {args.model} as {fmt}{' (' + args.quantize + ')' if args.quantize else ''} -> {out}"
    )
    return 0


def _export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="a run directory or registry:NAME@alias")
    p.add_argument("--format", choices=["onnx", "triton", "hf"], default=None, help="default: onnx (hf with --merge)")
    p.add_argument("--quantize", choices=["int8"], default=None, help="dynamic int8 weights (onnx, triton)")
    p.add_argument(
        "--optimize",
        action="store_true",
        help="fuse attention/LayerNorm/GELU offline with onnxruntime's transformer optimizer (onnx, BERT-like encoders)",
    )
    p.add_argument("--merge", action="store_true", help="merged full weights in HF format (= --format hf)")
    p.add_argument("--out", required=True, help="output directory")


COMMANDS = {
    "route": Group(
        "",
        {
            "export": Verb(
                cmd_export,
                _export_arguments,
                "export a trained router: ONNX (fp32/int8), Triton repository, merged HF weights",
            ),
        },
    )
}

ALIASES = [Alias("export", "route export")]
