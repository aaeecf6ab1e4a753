"""Servers shared by the attack modules: a team backend per store, and members' servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import Api, JupyterServer, TeamBackend

API = "cellops/api/v1"
ROLES = {"admin": "admin", "alice": "editor", "bob": "editor", "ada": "approver", "vera": "viewer"}


class Team(TeamBackend):
    """A running `cellops serve` with one member per role; ``as_(name)`` is their client."""

    tokens: dict[str, str]

    def as_(self, name: str) -> Api:
        return self.api(self.tokens[name])


def start_team(db_url: str, tmp: Path) -> Team:
    team = Team(db_url, tmp / "artifacts")
    team.tokens = {name: team.add_user(name, role) for name, role in ROLES.items()}
    team.start()
    return team


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def team(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    """One team backend per module and store, shared by the module's attacks."""
    tmp = tmp_path_factory.mktemp(f"team-{request.param}")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'team.db'}"
    else:
        db_url = request.getfixturevalue("module_pg_url")
    backend = start_team(db_url, tmp)
    yield backend
    backend.stop()


def member_server(team: Team, tmp: Path, name: str) -> JupyterServer:
    """A member's Jupyter server in team-client mode (forwards to ``team``)."""
    env = {"CELLOPS_BACKEND_URL": team.url, "CELLOPS_TOKEN": team.tokens[name]}
    return JupyterServer(tmp / name, env=env).start()
