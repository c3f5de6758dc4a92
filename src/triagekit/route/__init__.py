"""Routing: multi-head classification of tickets (queue, priority, type, tags) with encoders, decoders, TF-IDF
or a hybrid of both, calibrated, with a review threshold.

Public surface: ``Router`` (load / predict / predict_proba), ``HeadSpec``, ``TrainConfig``; training and evaluation
are ``triagekit.route.train.train`` and ``triagekit.route.evaluate.evaluate`` (a package attribute named like its
submodule would be replaced by the module on first import).
"""

from __future__ import annotations

__all__ = ["Router", "HeadSpec", "TrainConfig"]


def __getattr__(name):
    # Lazy: `import triagekit.route` (and the CLI's --help) stays free of torch/transformers.
    if name == "Router":
        from triagekit.route.router import Router

        return Router
    if name == "HeadSpec":
        from triagekit.route.heads import HeadSpec

        return HeadSpec
    if name == "TrainConfig":
        from triagekit.route.config import TrainConfig

        return TrainConfig
    raise AttributeError(name)
