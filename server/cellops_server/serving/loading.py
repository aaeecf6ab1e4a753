"""An artifact to a model a worker can serve, or a refusal a person can act on.

The artifact is read from the content-addressed blob store by its digest (validated before
any path is built), hashed while it is read, and the very bytes that were hashed are what
gets loaded: nothing can swap the file between the check and the load. Only skops files are
loaded (pickle never is), through ``cellops.serialize.loads``, which runs the same ``check``
as ``cellops.load`` against the server's own allow-list (``cellops.allowlist``) with no
trusted names at all: a list shipped with the artifact is never consulted.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..store.blobs import BlobNotFound, FileBlobStore, is_sha256

_CHUNK = 1 << 20
# Opcode PROTO (0x80) starts every pickle since protocol 2; joblib files are pickles too.
_PICKLE_MAGIC = b"\x80"
_ZIP_MAGIC = b"PK\x03\x04"


class RefusedModel(Exception):
    """The model cannot be served; the message says why and what to do about it.

    ``refused``: the type names the allow-list did not accept (empty for other reasons).
    """

    def __init__(self, message: str, refused: list[str] | None = None) -> None:
        super().__init__(message)
        self.refused = list(refused or [])


def load_verified(artifacts_dir: str | os.PathLike[str], sha256: str) -> Any:
    """The model stored under ``sha256`` in ``artifacts_dir``; RefusedModel if it cannot be
    served safely (not found, altered, not skops, or naming types outside the allow-list)."""
    data = _read_verified(artifacts_dir, sha256)
    if data[:1] == _PICKLE_MAGIC:
        raise RefusedModel(
            f"artifact {sha256[:12]} is a pickle file, and pickle is never loaded by the "
            "serving workers (loading a pickle runs whatever code it names). Register the "
            "model again with cellops.register, which saves it with skops."
        )
    from cellops.serialize import UnsafeModelError, is_skops_file, loads

    if data[:4] != _ZIP_MAGIC or not is_skops_file(data):
        raise RefusedModel(
            f"artifact {sha256[:12]} is not a skops file; only models saved with skops "
            "(cellops.register does this) can be deployed."
        )
    try:
        model = loads(data)  # runs cellops.serialize.check with no trusted names
    except UnsafeModelError as err:
        raise RefusedModel(f"model {sha256[:12]} was refused: {err}", err.refused) from None
    except Exception as err:  # skops failed to build what check accepted: a damaged file
        raise RefusedModel(
            f"model {sha256[:12]} could not be loaded ({type(err).__name__}: {err}); "
            "register it again from the notebook."
        ) from None
    if not callable(getattr(model, "predict", None)):
        raise RefusedModel(
            f"model {sha256[:12]} is a {type(model).__name__}, which has no predict method, "
            "so it cannot serve predictions."
        )
    return model


def _read_verified(artifacts_dir: str | os.PathLike[str], sha256: str) -> bytes:
    if not isinstance(sha256, str) or not is_sha256(sha256):
        shown = repr(sha256)[:80]
        raise RefusedModel(f"{shown} is not an artifact id (a lowercase hex sha256 digest)")
    try:
        if not Path(artifacts_dir).is_dir():  # FileBlobStore would create it
            raise BlobNotFound(sha256)
        path = FileBlobStore(artifacts_dir).path_for(sha256)
        if not path.is_file():
            raise BlobNotFound(sha256)
    except BlobNotFound:
        raise RefusedModel(
            f"artifact {sha256[:12]} is not in the artifact store at {artifacts_dir}: "
            "was the model registered against another store?"
        ) from None
    digest = hashlib.sha256()
    chunks = []
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            chunks.append(chunk)
    if digest.hexdigest() != sha256:
        raise RefusedModel(
            f"artifact {sha256[:12]} was altered on disk: its sha256 is "
            f"{digest.hexdigest()[:12]}…, so it is not the model that was registered. "
            "Register the model again."
        )
    return b"".join(chunks)


def check_prediction(model: Any, signature: dict[str, Any] | None) -> None:
    """Predict once on the signature's example rows (or zeros of its shape); RefusedModel
    with the reason when the model cannot predict on input of the shape it declares."""
    from .protocols import InferenceRequest, example_body, infer

    body = example_body(model, signature)
    if body is None:
        return  # nothing says what its input looks like: the first request will tell
    request = InferenceRequest("mlflow", body, "application/json", "smoke-check", 0, signature)
    result = infer(model, request)
    if result.status != 200:
        reason = result.body.decode("utf-8", "replace")[:500]
        raise RefusedModel(
            "the model failed its check prediction on the example input of its signature "
            f"(HTTP {result.status}: {reason}); it was not deployed."
        )
