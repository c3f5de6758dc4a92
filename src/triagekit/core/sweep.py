"""Hyperparameter sweeps on Optuna: a search space in YAML over any config's keys, TPE sampling, pruning from the
per-validation scores the training loop already computes, shared storage so several processes or machines work on
one study, and every trial a normal (resumable) run folder.

A search space is a mapping of config key -> one spec::

    lr: {log_uniform: [1e-5, 1e-3]}
    lora_r: {choice: [4, 8, 16, 32]}
    epochs: {int: [2, 8]}            # inclusive; {int: [2, 8, 2]} steps by 2
    label_smoothing: {uniform: [0.0, 0.2]}
    hybrid: {choice: [true, false]}

This module knows nothing of what is trained: a capability passes an ``objective(params, trial_dir, report)``
that trains one run and returns its score, calling ``report(step, value)`` after each validation (which raises
``optuna.TrialPruned`` when the pruner stops the trial).
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import yaml

__all__ = [
    "SPEC_KINDS",
    "SweepSpace",
    "load_space",
    "open_study",
    "run_trials",
    "summarise",
    "require_optuna",
    "storage_url",
]

SPEC_KINDS = ("log_uniform", "uniform", "int", "choice")
PRUNERS = ("median", "hyperband", "none")
STUDY_FILE = "study.db"


def require_optuna():
    try:
        import optuna
    except ImportError as exc:
        raise RuntimeError("sweeps need Optuna: pip install 'triagekit[sweep]'") from exc
    return optuna


@dataclass
class SweepSpace:
    """A checked search space: ``{key: (kind, args)}``, plus the preset it is applied on."""

    params: dict[str, tuple[str, list]]
    base: str | None = None

    def suggest(self, trial) -> dict[str, Any]:
        """One point of the space, drawn by ``trial``'s sampler."""
        out: dict[str, Any] = {}
        for key, (kind, args) in self.params.items():
            if kind == "log_uniform":
                out[key] = trial.suggest_float(key, float(args[0]), float(args[1]), log=True)
            elif kind == "uniform":
                out[key] = trial.suggest_float(key, float(args[0]), float(args[1]))
            elif kind == "int":
                out[key] = trial.suggest_int(key, int(args[0]), int(args[1]), step=int(args[2]) if len(args) > 2 else 1)
            else:
                out[key] = trial.suggest_categorical(key, list(args))
        return out


def load_space(source: str | Path | Mapping[str, Any], valid_keys: Sequence[str] | None = None) -> SweepSpace:
    """A search space from a YAML file or a mapping (``{space: {...}, base: preset}`` or just the space).

    Raises:
        ValueError: naming the key, for an unknown config key, an unknown spec kind or bad bounds.
    """
    where = str(source) if not isinstance(source, Mapping) else "search space"
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"search space {path} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be a YAML mapping of config key -> spec")
    base = data.get("base") if "space" in data else None
    space = data["space"] if "space" in data else data
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"{where}: the search space is empty")
    params: dict[str, tuple[str, list]] = {}
    for key, spec in space.items():
        if valid_keys is not None and key not in valid_keys:
            raise ValueError(f"{where}: unknown config key {key!r}; valid keys: {', '.join(sorted(valid_keys))}")
        if not isinstance(spec, Mapping) or len(spec) != 1 or next(iter(spec)) not in SPEC_KINDS:
            raise ValueError(f"{where}: {key}: give one of {', '.join(SPEC_KINDS)}, e.g. {{log_uniform: [1e-5, 1e-3]}}")
        kind, args = next(iter(spec.items()))
        args = list(args) if isinstance(args, (list, tuple)) else [args]
        if kind == "choice":
            if not args:
                raise ValueError(f"{where}: {key}: choice needs at least one value")
        else:
            if len(args) not in (2, 3) or not all(isinstance(a, (int, float)) for a in args):
                raise ValueError(f"{where}: {key}: {kind} needs [low, high]")
            if float(args[0]) >= float(args[1]):
                raise ValueError(f"{where}: {key}: low must be below high, got {args}")
            if kind == "log_uniform" and float(args[0]) <= 0:
                raise ValueError(f"{where}: {key}: log_uniform needs positive bounds")
        params[key] = (kind, args)
    return SweepSpace(params, base)


def storage_url(study_dir: str | Path, storage: str | None) -> str:
    """The study's storage: an RDB URL as given, or a SQLite file in the study folder."""
    return storage or f"sqlite:///{(Path(study_dir) / STUDY_FILE).resolve()}"


def open_study(
    name: str,
    study_dir: str | Path,
    *,
    storage: str | None = None,
    direction: str = "maximize",
    pruner: str = "median",
    seed: int = 0,
    startup_trials: int = 3,
    heartbeat_interval: int = 30,
    grace_period: int = 120,
):
    """Create or join the study ``name`` (TPE sampler; median or Hyperband pruning).

    A crashed or killed trial is marked failed once its heartbeat (every ``heartbeat_interval`` s) has been silent
    for ``grace_period`` s, and re-queued once with the same parameters (``RetryHeartbeatStaleTrialCallback``,
    optuna >= 4.9), so a sweep survives a lost worker.
    """
    optuna = require_optuna()
    if pruner not in PRUNERS:
        raise ValueError(f"--pruner must be one of {PRUNERS}, got {pruner!r}")
    Path(study_dir).mkdir(parents=True, exist_ok=True)
    url = storage_url(study_dir, storage)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        # Heartbeats and their retry callback are marked experimental since Optuna 2.8; the warning would print at
        # every sweep for a feature it relies on by design.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        store = optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1),
        )
    pruners = {
        "median": optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0),
        "hyperband": optuna.pruners.HyperbandPruner(),
        "none": optuna.pruners.NopPruner(),
    }
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=name,
        storage=store,
        load_if_exists=True,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials),
        pruner=pruners[pruner],
    )


Objective = Callable[[dict[str, Any], Path, Callable[[int, float], None]], float]


class _Surplus(Exception):
    """The study already holds ``n_trials`` live trials: this one is closed without running."""


def run_trials(study, space: SweepSpace, objective: Objective, study_dir: str | Path, n_trials: int) -> None:
    """Work on ``study`` until it holds ``n_trials`` finished trials (complete or pruned), whoever ran them.

    Each trial runs under ``study.optimize(n_trials=1)``, Optuna's loop that records the trial's heartbeat while it
    runs and, before asking for the next one, fails trials whose heartbeat stopped (their worker died) and re-queues
    them (``open_study``'s retry callback); ask/tell alone records no heartbeat, so a lost trial would stay RUNNING
    for ever. A trial whose number comes after the first ``n_trials`` live ones is closed at once as surplus
    (``FAIL``, ``user_attrs["surplus"]``), so several workers never run more than ``n_trials`` trials between them.
    Each trial runs in ``study_dir/trial-N``; a retried trial resumes the folder of the trial it retries.
    """
    optuna = require_optuna()
    TS = optuna.trial.TrialState
    live = (TS.COMPLETE, TS.PRUNED, TS.RUNNING)
    surplus = False

    def one(trial) -> float:
        nonlocal surplus
        ahead = [t.number for t in study.get_trials(deepcopy=False, states=live) if t.number < trial.number]
        frozen = next(t for t in study.get_trials(deepcopy=False) if t.number == trial.number)
        retried = optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen)
        if len(ahead) >= n_trials and retried is None:
            surplus = True
            trial.set_user_attr("surplus", True)
            raise _Surplus(f"the study already holds {n_trials} trials")
        folder = Path(study_dir) / f"trial-{retried if retried is not None else trial.number}"
        trial.set_user_attr("run", str(folder))

        def report(step: int, value: float) -> None:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return
            trial.report(float(value), step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (value {value:.4f})")

        try:
            return float(objective(space.suggest(trial), folder, report))
        except (RuntimeError, ValueError) as exc:  # a bad point of the space: recorded, the sweep goes on
            trial.set_user_attr("error", str(exc)[:500])
            raise

    while not surplus:
        with warnings.catch_warnings():  # heartbeats and retries are "experimental" in Optuna since 2.8
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)  # before counting: a dead worker's trial is not live
            if len(study.get_trials(deepcopy=False, states=live)) >= n_trials:
                break
            study.optimize(one, n_trials=1, catch=(RuntimeError, ValueError, _Surplus))


def summarise(
    study, study_dir: str | Path, base_config: Mapping[str, Any] | None = None, title: str = "sweep"
) -> dict[str, Any]:
    """Write the results table (``results.csv``), the best config as a preset (``best.yaml``) and the plots
    (``history.png``, ``importance.png``) into ``study_dir``; returns what was written and the best trial."""
    optuna = require_optuna()
    study_dir = Path(study_dir)
    trials = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished() and not t.user_attrs.get("surplus")]
    keys = sorted({k for t in trials for k in t.params})
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    done = sorted(trials, key=lambda t: (t.value is None, sign * (t.value if t.value is not None else 0)))
    with (study_dir / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "state", "value", "last_step", *keys, "run", "seconds"])
        for t in done:
            last = max(t.intermediate_values, default=None)
            value = t.value if t.value is not None else (t.intermediate_values.get(last) if last is not None else "")
            secs = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else ""
            w.writerow(
                [
                    t.number,
                    t.state.name,
                    value,
                    last,
                    *[t.params.get(k, "") for k in keys],
                    t.user_attrs.get("run", ""),
                    secs,
                ]
            )
    out: dict[str, Any] = {
        "results": str(study_dir / "results.csv"),
        "trials": len(trials),
        "complete": sum(t.state.name == "COMPLETE" for t in trials),
        "pruned": sum(t.state.name == "PRUNED" for t in trials),
        "failed": sum(t.state.name == "FAIL" for t in trials),
    }
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        out.update(
            best_value=best.value, best_params=best.params, best_trial=best.number, best_run=best.user_attrs.get("run")
        )
        preset = {**(base_config or {}), **best.params}
        (study_dir / "best.yaml").write_text(
            f"# best of {title}: trial {best.number}, value {best.value:.6f}\n"
            + yaml.safe_dump(preset, sort_keys=False)
        )
        out["best_config"] = str(study_dir / "best.yaml")
        out["plots"] = _plots(study, study_dir)
    (study_dir / "summary.json").write_text(json.dumps(out, indent=2, default=str))
    return out


def _plots(study, study_dir: Path) -> list[str]:
    """Optimisation history and parameter importances (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    written = []
    for name, fn in (("history.png", ovm.plot_optimization_history), ("importance.png", ovm.plot_param_importances)):
        try:
            with warnings.catch_warnings():  # Optuna's matplotlib plots are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                ax = fn(study)
        except (ValueError, RuntimeError, ZeroDivisionError):  # importances need >= 2 complete trials that vary
            continue
        fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
        fig.set_size_inches(7, 4)
        fig.tight_layout()
        fig.savefig(study_dir / name, dpi=110)
        plt.close(fig)
        written.append(str(study_dir / name))
    return written
