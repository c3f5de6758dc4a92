"""Experiment tracking through Accelerate's trackers (``Accelerator(log_with=...)``) for every training run.

TensorBoard is the default (event files under ``DIR/tb/<tracker_project>``); MLflow and Weights & Biases are there
for teams that already use them, and both work without a server: MLflow writes a file store in ``DIR/mlruns`` unless
``MLFLOW_TRACKING_URI`` points elsewhere, W&B runs offline with ``WANDB_MODE=offline`` (``wandb sync`` uploads later).
Each run logs its resolved config and parameter counts once at the start, the loop's per-step and per-validation
records as it goes (the same numbers as ``metrics.jsonl``), and its final metrics once at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from triagekit.core.extras import available, require

__all__ = ["TRACKERS", "check_trackers", "start_trackers", "log_metrics", "log_final", "run_config"]

TRACKERS = ("tensorboard", "mlflow", "wandb")
"""The trackers a config's ``trackers`` may name (Accelerate's names for them)."""

_EXTRAS = {"mlflow": "mlflow", "wandb": "wandb"}  # tracker -> the triagekit extra that installs it


def check_trackers(names: Sequence[str]) -> None:
    """Fail before training when a tracker's package is missing, naming the extra that brings it.

    Raises:
        RuntimeError: with the ``pip install`` to run, or ``trackers: []`` to train without one.
    """
    for name in names:
        if name in _EXTRAS:
            require(name, extra=_EXTRAS[name])
        elif not available(name):
            raise RuntimeError(
                f"{name} not installed (a dependency of triagekit): `pip install {name}`, or set trackers: []"
            )


def _scalar(value: Any) -> int | float | str | bool:
    """A config value every tracker stores: TensorBoard's hparams take only numbers, strings and booleans."""
    if isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)


def run_config(config: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The values logged once per run: the resolved config and the parameter counts (``parameters_trainable``...)."""
    values = {key: _scalar(value) for key, value in config.items()}
    values.update({f"parameters_{key}": value for key, value in parameters.items()})
    return values


def _init_kwargs(names: Sequence[str], output: Path) -> dict[str, dict[str, Any]]:
    """Per-tracker options: the run folder's name as the run name, W&B's files inside the run folder."""
    kwargs: dict[str, dict[str, Any]] = {}
    if "mlflow" in names:
        import mlflow

        # MLflow 3's default store is a SQLite database in the working directory (it needs the full `mlflow`
        # package); a file store inside the run folder keeps every run self-contained and works with mlflow-skinny.
        # MLflow >= 3.10 refuses file stores unless MLFLOW_ALLOW_FILE_STORE is set ("maintenance mode"): it is set
        # only here, where no tracking URI was asked for.
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((output / "mlruns").resolve().as_uri())
        kwargs["mlflow"] = {"run_name": output.name}
    if "wandb" in names:
        kwargs["wandb"] = {"name": output.name, "dir": str(output)}
    return kwargs


def start_trackers(accelerator, cfg, output: Path, parameters: Mapping[str, Any]) -> None:
    """Start the accelerator's trackers with the run's config and parameter counts (no-op without trackers)."""
    names = [str(t) for t in accelerator.log_with]  # LoggerType members print as their value
    if not names:
        return
    config = cfg.to_dict()
    config.pop("tensorboard", None)  # the deprecated switch, already folded into trackers
    if config.get("lr") is None and hasattr(cfg, "resolved_lr"):
        config["lr"] = cfg.resolved_lr  # the rate the run used, not "None: the method's default"
    accelerator.init_trackers(
        cfg.tracker_project,
        config=run_config(config, parameters),
        init_kwargs=_init_kwargs(names, Path(output)),
    )


def _names(tracker: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` under the names ``tracker`` can store. MLflow's file store keeps a metric in a file named after
    it, so ``val_macro_f1`` and ``val_macro_f1/queue`` cannot both exist there: MLflow gets ``val_macro_f1.queue``
    (on every MLflow store, so the names do not depend on the backend). TensorBoard and W&B keep the ``/`` groups."""
    if tracker != "mlflow":
        return dict(values)
    return {key.replace("/", "."): value for key, value in values.items()}


def log_metrics(accelerator, values: Mapping[str, Any], step: int) -> None:
    """``values`` (numbers only) at ``step`` to every tracker of ``accelerator`` (main process; no-op without)."""
    if not accelerator.is_main_process:
        return
    numbers = {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    for tracker in accelerator.trackers:
        tracker.log(_names(str(tracker.name), numbers), step=step)


def log_final(accelerator, state: Mapping[str, Any]) -> None:
    """The run's final metrics, once: the best validation's metrics, its step, the steps run and the time taken."""
    final = {f"final/{k}": v for k, v in state.get("best_metrics", {}).items() if isinstance(v, (int, float))}
    final.update(
        {
            "final/best_step": state["best_step"],
            "final/steps": state["global_step"],
            "final/train_seconds": state["train_seconds"],
            "final/stopped_early": int(bool(state["stopped_early"])),
        }
    )
    log_metrics(accelerator, final, state["global_step"])
