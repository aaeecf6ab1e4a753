"""Which CI job runs a headless run, read from the environment the CI system sets.

GitHub Actions and GitLab CI name the commit, the branch and the job's page; any other
system that sets the conventional ``CI=true`` is recorded as ``ci`` without them. Outside
CI there is nothing to record (``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRUE = {"1", "true", "yes", "on"}


def _get(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


def _github(env: Mapping[str, str]) -> dict[str, Any]:
    server, repo, run_id = (
        _get(env, "GITHUB_SERVER_URL") or "https://github.com",
        _get(env, "GITHUB_REPOSITORY"),
        _get(env, "GITHUB_RUN_ID"),
    )
    url = f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}" if repo and run_id else None
    return {
        "system": "github",
        "commit": _get(env, "GITHUB_SHA"),
        # A pull request's own branch, else the pushed branch or tag.
        "branch": _get(env, "GITHUB_HEAD_REF") or _get(env, "GITHUB_REF_NAME"),
        "url": url,
    }


def _gitlab(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "system": "gitlab",
        "commit": _get(env, "CI_COMMIT_SHA"),
        "branch": _get(env, "CI_COMMIT_REF_NAME"),
        "url": _get(env, "CI_JOB_URL"),
    }


def ci_identity(env: Mapping[str, str]) -> dict[str, Any] | None:
    """``{"system", "commit", "branch", "url"}`` of the CI job, or None outside CI."""
    if (env.get("GITHUB_ACTIONS") or "").lower() in TRUE:
        return _github(env)
    if (env.get("GITLAB_CI") or "").lower() in TRUE:
        return _gitlab(env)
    if (env.get("CI") or "").lower() in TRUE:
        return {"system": "ci", "commit": None, "branch": None, "url": None}
    return None
