"""What every capability uses: accelerator setup, run folders, checkpoints, the training loop, typed config
loading, optional-extra checks, backbone resolution and padding/batching helpers.

``core`` imports no capability (``route``, ``triage``, ``answer``, ``serve``, ``exporters``); ``tests/test_layering.py``
enforces it.
"""
