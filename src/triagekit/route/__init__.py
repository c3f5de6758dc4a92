"""Routing: multi-head classification of tickets (queue, priority, type, tags) with encoders, decoders, TF-IDF
or a hybrid of both, calibrated, with a review threshold.

Public surface: ``Router`` (load / predict / predict_proba), ``HeadSpec``, ``TrainConfig``, ``train``, ``evaluate``.
"""

from __future__ import annotations

__all__ = ["Router", "HeadSpec", "TrainConfig", "train", "evaluate"]


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
    if name == "train":
        from triagekit.route.train import train

        return train
    if name == "evaluate":
        from triagekit.route.evaluate import evaluate

        return evaluate
    raise AttributeError(name)
