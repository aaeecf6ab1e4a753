"""Team members the role tests need beyond the ``team`` fixture's (tests/attacks/conftest.py)."""

from __future__ import annotations

from .attacks.conftest import Team
from .support import Api

# One member per role; "cora" is the commenter (the fixture may already have her).
MEMBER_OF_ROLE = {
    "viewer": "vera",
    "commenter": "cora",
    "editor": "alice",
    "approver": "ada",
    "admin": "admin",
}
ROLE_ORDER = ["viewer", "commenter", "editor", "approver", "admin"]


def ensure_member(team: Team, name: str, role: str) -> Api:
    """``name``'s client, adding them with ``role`` to the running backend if absent (tokens
    are looked up per request, so a member added now is known at once)."""
    if name not in team.tokens:
        team.tokens[name] = team.add_user(name, role)
    return team.as_(name)


def ensure_roles(team: Team) -> None:
    for role, name in MEMBER_OF_ROLE.items():
        ensure_member(team, name, role)


def at_least(role: str, needed: str) -> bool:
    return ROLE_ORDER.index(role) >= ROLE_ORDER.index(needed)
