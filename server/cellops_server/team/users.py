"""Team users with roles and personal tokens (only a sha256 of each token is stored)."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from ..store.tables import users

ROLES = ["viewer", "commenter", "editor", "approver", "admin"]
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")  # fullmatch: "$" accepts a final "\n"


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class TeamUser:
    name: str
    role: str

    @property
    def username(self) -> str:  # what Jupyter's authorizer API and logs read
        return self.name

    def has_role(self, needed: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "cellops_" + secrets.token_urlsafe(32)


def add_user(engine: sa.Engine, name: str, role: str = "editor") -> str:
    """Create a user; answer their personal token (shown once, stored hashed)."""
    if not _NAME.fullmatch(name):
        raise UserError("a user name is 1-128 letters, digits or . _ @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    token = new_token()
    with engine.begin() as conn:
        if conn.scalar(sa.select(users.c.id).where(users.c.name == name)) is not None:
            raise UserError(
                f"user {name!r} exists; use `cellops users token {name}` for a new token"
            )
        conn.execute(
            users.insert().values(
                name=name,
                role=role,
                token_hash=hash_token(token),
                created_at=datetime.now(timezone.utc),
            )
        )
    return token


def rotate_token(engine: sa.Engine, name: str) -> str:
    token = new_token()
    with engine.begin() as conn:
        done = conn.execute(
            users.update().where(users.c.name == name).values(token_hash=hash_token(token))
        )
    if done.rowcount == 0:
        raise UserError(f"no user {name!r}")
    return token


def set_role(engine: sa.Engine, name: str, role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    with engine.begin() as conn:
        done = conn.execute(users.update().where(users.c.name == name).values(role=role))
    if done.rowcount == 0:
        raise UserError(f"no user {name!r}")


def remove_user(engine: sa.Engine, name: str) -> None:
    with engine.begin() as conn:
        done = conn.execute(users.delete().where(users.c.name == name))
    if done.rowcount == 0:
        raise UserError(f"no user {name!r}")


def list_users(engine: sa.Engine) -> list[TeamUser]:
    with engine.connect() as conn:
        return [
            TeamUser(n, r)
            for n, r in conn.execute(sa.select(users.c.name, users.c.role).order_by(users.c.name))
        ]


def user_for_token(engine: sa.Engine, token: str) -> TeamUser | None:
    if not token:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(users.c.name, users.c.role).where(users.c.token_hash == hash_token(token))
        ).first()
    return TeamUser(row.name, row.role) if row else None
