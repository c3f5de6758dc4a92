"""Reviewer accounts, login sessions and wrong-password throttling for the ``/ui`` review page, in the service's DB.

Passwords are hashed with scrypt (``hashlib.scrypt``, memory-hard, in the standard library: no extra dependency);
sessions are random tokens of which only the SHA-256 is stored, so a copy of the database logs nobody in. Every
replica of the service reads the same tables, so a login, a logout and the failure count hold across replicas.
All calls are blocking (run them on a worker thread).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import Column, DateTime, Integer, String, Table, delete, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from triagekit.serve.db import metadata, utcnow

__all__ = [
    "reviewers",
    "ui_sessions",
    "login_failures",
    "Principal",
    "hash_password",
    "verify_password",
    "add_reviewer",
    "remove_reviewer",
    "list_reviewers",
    "has_reviewers",
    "check_reviewer",
    "reviewer_exists",
    "open_session",
    "read_session",
    "close_session",
    "failures",
    "record_failure",
    "clear_failures",
    "ROLES",
]

ROLES = ("reviewer", "admin")

reviewers = Table(
    "reviewers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("password_hash", String(300), nullable=False, comment="scrypt$n$r$p$salt$hash (base64)"),
    Column("role", String(20), nullable=False, comment="reviewer or admin"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True, comment="sha256 of the cookie value"),
    Column("reviewer", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("csrf", String(64), nullable=False, comment="the token every form of this session must send back"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, index=True, comment="user:<name> or ip:<address>"),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

# scrypt cost: n=2**14, r=8 is the interactive-login setting of the scrypt paper (16 MiB, ~50 ms here).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_DUMMY = None  # a hash to check unknown names against, so they take as long as known ones


@dataclass(frozen=True)
class Principal:
    """Who a request comes from: the reviewer's name (written into feedback rows), role and CSRF token."""

    name: str
    role: str
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; a malformed hash never matches)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8", "replace"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def _dummy_hash() -> str:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password(secrets.token_hex(8))
    return _DUMMY


# -- accounts --------------------------------------------------------------------------------------------------
def add_reviewer(engine: Engine, name: str, password: str, role: str = "reviewer") -> None:
    """Create or replace the account ``name`` (its password and role).

    Raises:
        ValueError: empty name, a password under 8 characters, or an unknown role.
    """
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("a reviewer name needs 1 to 200 characters")
    if len(password) < 8:
        raise ValueError("a reviewer password needs at least 8 characters")
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    row = {"password_hash": hash_password(password), "role": role}
    with engine.begin() as conn:
        if conn.execute(select(reviewers.c.name).where(reviewers.c.name == name)).first():
            conn.execute(update(reviewers).where(reviewers.c.name == name).values(**row))
        else:
            conn.execute(insert(reviewers).values(name=name, created_at=utcnow(), **row))
        conn.execute(delete(ui_sessions).where(ui_sessions.c.reviewer == name))  # a new password logs out


def remove_reviewer(engine: Engine, name: str) -> bool:
    """Delete the account and its sessions; False when there was none. Its feedback rows keep the name."""
    with engine.begin() as conn:
        conn.execute(delete(ui_sessions).where(ui_sessions.c.reviewer == name))
        return conn.execute(delete(reviewers).where(reviewers.c.name == name)).rowcount > 0


def list_reviewers(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = (
            conn.execute(select(reviewers.c.name, reviewers.c.role, reviewers.c.created_at).order_by(reviewers.c.name))
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def has_reviewers(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(reviewers)).scalar_one() > 0


def check_reviewer(engine: Engine, name: str, password: str) -> Optional[str]:
    """The role of ``name`` when ``password`` is right, else None (unknown names cost the same scrypt)."""
    with engine.connect() as conn:
        row = conn.execute(select(reviewers.c.password_hash, reviewers.c.role).where(reviewers.c.name == name)).first()
    ok = verify_password(password, row[0] if row else _dummy_hash())
    return row[1] if row and ok else None


def reviewer_exists(engine: Engine, name: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(reviewers.c.name).where(reviewers.c.name == name)).first() is not None


# -- sessions --------------------------------------------------------------------------------------------------
def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def open_session(engine: Engine, name: str, role: str, ttl: timedelta) -> tuple[str, Principal]:
    """A new session for ``name``; returns the cookie value and the principal. Expired sessions are swept."""
    token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(32), utcnow()
    with engine.begin() as conn:
        conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at < now))
        conn.execute(
            insert(ui_sessions).values(
                token_hash=_token_hash(token), reviewer=name, role=role, csrf=csrf, created_at=now, expires_at=now + ttl
            )
        )
    return token, Principal(name, role, csrf)


def read_session(engine: Engine, token: str) -> Optional[Principal]:
    """The principal of a live session cookie, else None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(ui_sessions.c.reviewer, ui_sessions.c.role, ui_sessions.c.csrf, ui_sessions.c.expires_at).where(
                ui_sessions.c.token_hash == _token_hash(token)
            )
        ).first()
    if row is None or _aware(row[3]) < utcnow():
        return None
    return Principal(row[0], row[1], row[2])


def close_session(engine: Engine, token: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(ui_sessions).where(ui_sessions.c.token_hash == _token_hash(token)))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)  # SQLite gives naive UTC back


# -- wrong-password throttling ---------------------------------------------------------------------------------
def failures(engine: Engine, keys: list[str], window: timedelta) -> tuple[int, Optional[datetime]]:
    """Failed logins under any of ``keys`` within ``window``: (count, time of the oldest of them)."""
    since = utcnow() - window
    with engine.connect() as conn:
        n, oldest = conn.execute(
            select(func.count(), func.min(login_failures.c.created_at)).where(
                or_(*[login_failures.c.key == k for k in keys]), login_failures.c.created_at >= since
            )
        ).one()
    return int(n), (_aware(oldest) if oldest is not None else None)


def record_failure(engine: Engine, keys: list[str], window: timedelta) -> None:
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(delete(login_failures).where(login_failures.c.created_at < now - window))
        conn.execute(insert(login_failures), [{"key": k, "created_at": now} for k in keys])


def clear_failures(engine: Engine, keys: list[str]) -> None:
    with engine.begin() as conn:
        conn.execute(delete(login_failures).where(or_(*[login_failures.c.key == k for k in keys])))
