"""Write docs/configuration.md from the config dataclasses' field docstrings (``--check``: fail when it is stale).

    python scripts/gen_config_docs.py          # rewrite the page
    python scripts/gen_config_docs.py --check  # exit 1 if the page differs from what the code says
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

HEADER = """# Configuration reference

Generated from the config dataclasses' field docstrings by `python scripts/gen_config_docs.py`; a test fails when
this page is stale. Every key can come from a YAML preset (`--config`) and be overridden with `--set key=value`
(typed by the field: `--set lr=3e-5`, `--set labels=queue,priority`, `--set hybrid=true`); unknown keys are refused
with the list of valid ones. The resolved config is saved as `DIR/config.yaml` in every run.
"""


def render() -> str:
    from triagekit.answer.dpo import DPOSettings
    from triagekit.core.config import reference_markdown
    from triagekit.route.config import TrainConfig
    from triagekit.serve.settings import ServeSettings
    from triagekit.sft.config import SFTConfig

    sections = [
        (TrainConfig, "Router (`triagekit route train`)", "Presets: `configs/router/*.yaml`."),
        (SFTConfig, "SFT: triage and answer models (`triagekit triage train`, `triagekit answer train`)",
         "Presets: `configs/triage/*.yaml`, `configs/answer/*.yaml`."),
        (DPOSettings, "DPO (`triagekit answer dpo --set KEY=VALUE`)", ""),
        (ServeSettings, "Service (`triagekit serve`)", "Set by `triagekit serve`'s flags of the same names."),
    ]
    return HEADER + "".join("\n" + reference_markdown(cls, title, intro) for cls, title, intro in sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if docs/configuration.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is stale: run python scripts/gen_config_docs.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
