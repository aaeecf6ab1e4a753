"""The `cellops` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from cellops_server.store import create_engine
from cellops_server.team.users import user_for_token

from .support import TeamBackend, cellops_cli, free_port


def test_users_lifecycle_and_token_rotation(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    assert cellops_cli("migrate", "--db", db).returncode == 0
    added = cellops_cli("users", "add", "ada", "--role", "admin", "--db", db)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip()
    engine = create_engine(db)
    user = user_for_token(engine, token)
    assert user is not None and (user.name, user.role) == ("ada", "admin")

    assert cellops_cli("users", "add", "ada", "--db", db).returncode == 2  # exists
    assert "ada\tadmin" in cellops_cli("users", "list", "--db", db).stdout
    assert cellops_cli("users", "role", "ada", "viewer", "--db", db).returncode == 0
    rotated = cellops_cli("users", "token", "ada", "--db", db).stdout.strip()
    assert user_for_token(engine, token) is None  # the old token stops working
    assert user_for_token(engine, rotated).role == "viewer"  # type: ignore[union-attr]
    assert cellops_cli("users", "remove", "ada", "--db", db).returncode == 0
    assert user_for_token(engine, rotated) is None
    # Only a hash of each token is stored.
    assert token.encode() not in (tmp_path / "team.db").read_bytes()


def test_clear_errors_for_bad_input(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'team.db'}"
    bad_role = cellops_cli("users", "add", "bo", "--role", "boss", "--db", db)
    assert bad_role.returncode == 2 and "role must be one of viewer" in bad_role.stderr
    bad_name = cellops_cli("users", "add", "a b", "--db", db)
    assert bad_name.returncode == 2 and "user name" in bad_name.stderr
    bad_url = cellops_cli("migrate", "--db", "mysql://x@y/z")
    assert bad_url.returncode == 2 and "sqlite:/// and postgresql://" in bad_url.stderr
    missing = cellops_cli("users", "remove", "ghost", "--db", db)
    assert missing.returncode == 2 and "no user 'ghost'" in missing.stderr


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--sample-rate", "1.5", "not a fraction from 0 to 1: '1.5'"),
        ("--sample-rate", "nan", "not a fraction from 0 to 1: 'nan'"),
        ("--drift-ks-pvalue", "-0.1", "not a fraction from 0 to 1"),
        ("--samples-per-second", "0", "--samples-per-second"),
        ("--drift-window", "ten", "--drift-window"),
        ("--drift-check-interval", "-5", "not a number above 0: '-5'"),
        ("--drift-check-interval", "nan", "not a number above 0: 'nan'"),
        ("--drift-psi-threshold", "inf", "not a number above 0: 'inf'"),
    ],
)
def test_serve_refuses_bad_monitoring_settings(
    tmp_path: Path, flag: str, value: str, words: str
) -> None:
    """Checked before anything starts: a usage error (2) naming the flag and the value."""
    db = f"sqlite:///{tmp_path / 'team.db'}"
    done = cellops_cli("serve", "--db", db, "--port", str(free_port()), flag, value)
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert not (tmp_path / "team.db").exists()  # nothing was created


def test_db_url_defaults_to_the_environment(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'from-env.db'}"
    assert cellops_cli("users", "add", "eve", env={"CELLOPS_DB_URL": db}).returncode == 0
    assert (tmp_path / "from-env.db").exists()
    assert "eve" in cellops_cli("users", "list", "--db", db).stdout


def test_serve_answers_on_sqlite_too(tmp_path: Path) -> None:
    backend = TeamBackend(
        f"sqlite:///{tmp_path / 'serve.db'}", tmp_path / "artifacts", port=free_port()
    )
    token = backend.add_user("sam")
    backend.start()
    try:
        r = requests.get(
            f"{backend.url}/cellops/api/v1/notebooks", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200 and r.json() == {"items": [], "next": None}
    finally:
        backend.stop()
