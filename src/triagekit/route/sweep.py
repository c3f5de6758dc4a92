"""``triagekit route sweep``: an Optuna study over a router preset's keys; each trial is a normal run folder,
scored by its best validation macro-F1 and pruned from the per-validation scores (``triagekit.core.sweep``)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

__all__ = ["sweep_router", "sweep_router_workers"]


def sweep_router(
    space: str | Path | Mapping[str, Any],
    data: str | Path,
    study_dir: str | Path,
    *,
    config: str | Path | None = None,
    n_trials: int = 12,
    storage: str | None = None,
    name: str | None = None,
    pruner: str = "median",
    seed: int = 0,
    val: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    console=None,
) -> dict[str, Any]:
    """Run (or join) a sweep of router trials until the study holds ``n_trials`` finished ones.

    Args:
        space: the search space (YAML file or mapping; see ``triagekit.core.sweep``); its ``base`` names the preset
            when ``config`` is not given.
        data: a prepared directory (recommended: every trial sees the same split) or a raw file.
        study_dir: trials go to ``study_dir/trial-N``; the SQLite study file, results and plots too.
        storage: an RDB URL (e.g. PostgreSQL) shared by several machines; default SQLite in ``study_dir``.
        overrides: fixed config keys for every trial (``--set``).

    Returns:
        the summary (results CSV, best value, params, config and plots).
    """
    from triagekit.core.sweep import load_space, open_study, run_trials, summarise
    from triagekit.core.training import latest_checkpoint
    from triagekit.route.config import TrainConfig, load_config
    from triagekit.route.train import train

    valid = [f.name for f in fields(TrainConfig)]
    sp = load_space(space, valid_keys=valid)
    preset = config or sp.base
    base = load_config(preset, **dict(overrides or {}))
    study = open_study(
        name or Path(study_dir).resolve().name,
        study_dir,
        storage=storage,
        direction="maximize",
        pruner=pruner,
        seed=seed,
    )

    def objective(params: dict[str, Any], folder: Path, report) -> float:
        cfg = base.replace(**params, trackers=[])
        resume = latest_checkpoint(folder) is not None
        result = train(
            cfg, data, folder, val=val, resume=resume, overwrite=not resume, console=console, on_validate=report
        )
        return result.best_score

    run_trials(study, sp, objective, study_dir, n_trials)
    fixed = {k: v for k, v in base.to_dict().items() if k not in sp.params}
    return summarise(study, study_dir, base_config=fixed, title=f"router sweep {study.study_name}")


def _worker(kwargs: dict[str, Any]) -> None:
    sweep_router(**kwargs)


def sweep_router_workers(workers: int, **kwargs: Any) -> dict[str, Any]:
    """``sweep_router`` in ``workers`` local processes on one study (they share its storage), then the summary.

    The study is created first, so the processes only join it; a worker that dies loses nothing but its running
    trial, which the others retry.
    """
    import multiprocessing

    from triagekit.core.sweep import open_study

    if workers < 1:
        raise ValueError("--workers must be at least 1")
    if workers == 1:
        return sweep_router(**kwargs)
    study_dir = kwargs["study_dir"]
    open_study(
        kwargs.get("name") or Path(study_dir).resolve().name,
        study_dir,
        storage=kwargs.get("storage"),
        pruner=kwargs.get("pruner", "median"),
        seed=kwargs.get("seed", 0),
    )
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for i in range(workers):
        # Different sampler seeds, so two workers starting together do not draw the same first points.
        procs.append(
            ctx.Process(target=_worker, args=({**kwargs, "seed": kwargs.get("seed", 0) + i, "console": None},))
        )
        procs[-1].start()
    for proc in procs:
        proc.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise RuntimeError(f"{len(failed)} sweep worker(s) failed (exit codes {failed}); rerun to continue the study")
    return sweep_router(**kwargs)  # the study is complete: this only writes the summary
