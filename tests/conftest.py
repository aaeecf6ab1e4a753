"""Shared fixtures: a store on SQLite and on PostgreSQL, real Jupyter servers, a team backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cellops_server.store import Store

from .attacks.conftest import Team, start_team, team_db_url
from .postgres import fresh_postgres_database, require_postgres  # noqa: F401 - re-exported
from .support import JupyterServer, zero_config_server
from .xdist_groups import pytest_itemcollected  # noqa: F401 - a hook


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_pg_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'cellops.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[Store]:
    s = Store(db_url, str(tmp_path / "artifacts"))
    yield s
    s.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def kernel_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JupyterServer]:
    """A module's zero-configuration Jupyter server (kernels get only what cellops gives
    them; CELLOPS_AUTOLOG is dropped too), once per store."""
    db_url = request.getfixturevalue("module_pg_url") if request.param == "postgresql" else None
    tmp = tmp_path_factory.mktemp(f"kernels-{request.param}")
    with zero_config_server(tmp, db_url, drop=("CELLOPS_AUTOLOG",)) as srv:
        yield srv


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def team(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    """A running `cellops serve` per module and store, with one member per role
    (tests/attacks/conftest.py), shared by the module's tests."""
    tmp = tmp_path_factory.mktemp(f"team-{request.param}")
    backend = start_team(team_db_url(request, tmp / "team.db"), tmp)
    yield backend
    backend.stop()
