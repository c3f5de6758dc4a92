"""triagekit: fine-tune small models to route, triage and answer support tickets."""

__version__ = "0.1.0"

__all__ = ["Router", "HeadSpec", "__version__"]


def __getattr__(name):
    # Lazy so that `import triagekit` (and the CLI's --help) does not pay for torch/transformers.
    if name == "Router":
        from triagekit.route.router import Router

        return Router
    if name == "HeadSpec":
        from triagekit.route.heads import HeadSpec

        return HeadSpec
    raise AttributeError(name)
