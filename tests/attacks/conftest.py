"""Servers shared by the attack modules: a team backend per store, and members' servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ..support import Api, JupyterServer, TeamBackend

API = "cellops/api/v1"
ROLES = {
    "admin": "admin",
    "alice": "editor",
    "bob": "editor",
    "ada": "approver",
    "cora": "commenter",
    "vera": "viewer",
}


class Team(TeamBackend):
    """A running `cellops serve` with one member per role; ``as_(name)`` is their client."""

    tokens: dict[str, str]

    def as_(self, name: str) -> Api:
        return self.api(self.tokens[name])


def team_db_url(request: pytest.FixtureRequest, sqlite_file: Path) -> str:
    """The database of a ``team`` fixture's param: a SQLite file, or a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{sqlite_file}"
    return request.getfixturevalue("module_pg_url")


def start_team(db_url: str, tmp: Path) -> Team:
    team = Team(db_url, tmp / "artifacts")
    team.tokens = {name: team.add_user(name, role) for name, role in ROLES.items()}
    team.start()
    return team


def member_server(team: Team, tmp: Path, name: str) -> JupyterServer:
    """A member's Jupyter server in team-client mode (forwards to ``team``)."""
    env = {"CELLOPS_BACKEND_URL": team.url, "CELLOPS_TOKEN": team.tokens[name]}
    return JupyterServer(tmp / name, env=env).start()


@pytest.fixture(scope="module")
def alice(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """alice's Jupyter server in team-client mode, shared by a module's attacks."""
    server = member_server(team, tmp_path_factory.mktemp("members"), "alice")
    yield server
    server.stop()
