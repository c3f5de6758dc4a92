"""The model registry: versions with checksums and metadata, aliases (production, staging), promotion and rollback.

The store itself lives in ``triagekit.core.registry`` (the router's loader resolves ``registry:NAME@alias`` with it,
and ``core`` imports no capability); this package adds the ``triagekit registry ...`` commands.
"""

from __future__ import annotations

from triagekit.core.registry import (
    IntegrityError,
    ModelRef,
    Registry,
    RegistryError,
    is_registry_ref,
    parse_ref,
    resolve,
)

__all__ = ["Registry", "RegistryError", "IntegrityError", "ModelRef", "parse_ref", "resolve", "is_registry_ref"]
