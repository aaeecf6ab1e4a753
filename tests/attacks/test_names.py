"""Names that differ from real ones by a trailing newline (``%0A`` in the URL).

Patterns ending in ``$`` also accept the string plus one final newline, so ``iris\\n``
and ``champion\\n`` could be created beside ``iris`` and ``champion`` and be mistaken
for them. Every name is matched whole now.
"""

from __future__ import annotations

import pytest

from ..support import cellops_cli
from .conftest import Team
from .seed import API, register


@pytest.fixture(scope="module")
def iris(team: Team) -> Team:
    """The team's real model ``iris``, version 1, alias ``champion``."""
    r = register(team.as_("alice"), "iris", alias="champion")
    assert r.status_code == 201, r.text
    return team


def models(team: Team) -> dict[str, dict[str, int]]:
    page = team.as_("vera").get(f"{API}/models")
    return {m["name"]: m["aliases"] for m in page["items"]}


def test_registering_a_model_named_like_another_plus_a_newline(iris: Team) -> None:
    r = register(iris.as_("alice"), "iris%0A")
    assert r.status_code == 400, r.text
    assert "invalid model name" in r.json()["error"]
    assert models(iris) == {"iris": {"champion": 1}}


def test_setting_an_alias_named_like_another_plus_a_newline(iris: Team) -> None:
    r = iris.as_("alice").request(
        "PUT", f"{API}/models/iris/aliases/champion%0A", json={"version": 1}
    )
    assert r.status_code == 400, r.text
    assert "invalid alias" in r.json()["error"]
    assert models(iris) == {"iris": {"champion": 1}}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "models/iris%0A"),
        ("GET", "models/iris%0A/versions"),
        ("GET", "models/iris%0A/versions/1"),
        ("GET", "models/iris%0A/versions/1/notebook"),
        ("PATCH", "models/iris%0A/versions/1"),
        ("DELETE", "models/iris/aliases/champion%0A"),
        ("DELETE", "models/iris%0A/aliases/champion"),
    ],
)
def test_naming_a_model_or_alias_with_a_trailing_newline(
    iris: Team, method: str, path: str
) -> None:
    """Answered 400 (a name that cannot exist), never as the real model or alias."""
    r = iris.as_("alice").request(method, f"{API}/{path}", json={})
    assert r.status_code == 400, r.text
    assert "invalid" in r.json()["error"]
    assert models(iris) == {"iris": {"champion": 1}}


def test_adding_a_user_named_like_another_plus_a_newline(iris: Team) -> None:
    added = cellops_cli("users", "add", "alice\n", "--db", iris.db_url)
    assert added.returncode == 2, added.stdout
    listed = cellops_cli("users", "list", "--db", iris.db_url)
    assert sorted(line.split("\t")[0] for line in listed.stdout.splitlines()) == sorted(iris.tokens)


@pytest.mark.parametrize(("check", "name"), [("check_name", "iris\n"), ("check_alias", "prod\n")])
def test_the_kernel_library_refuses_a_name_with_a_trailing_newline(check: str, name: str) -> None:
    from cellops import registry

    with pytest.raises(ValueError, match="not valid"):
        getattr(registry, check)(name)
