"""The model registry (models, versions, aliases, artifacts) and what cells log."""

from .artifacts import ArtifactStore, ChecksumMismatch, Upload
from .logs import ExecutionLogStore
from .names import check_alias, check_model_name
from .store import Registry

__all__ = [
    "ArtifactStore",
    "ChecksumMismatch",
    "ExecutionLogStore",
    "Registry",
    "Upload",
    "check_alias",
    "check_model_name",
]
