"""Content-addressed blob storage for binary outputs (images, PDFs) and, later, artifacts.

A blob's name is the sha256 of its bytes, so storing the same image twice costs
nothing. (Cell code and version listings are small text and live in the database's
``texts`` table, written in the same transaction as the rows that use them.) Files live
at ``<root>/ab/cd/<sha256>``; the path is built only from a validated hex digest, never
from anything a client sends. Folders are 0700 and files 0600 (see ``private.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from ..private import private_dir

_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobNotFound(KeyError):
    pass


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_sha256(value: str) -> bool:
    # fullmatch: a pattern ending in "$" would also accept the digest plus a newline.
    return bool(_SHA256.fullmatch(value))


class FileBlobStore:
    """Immutable blobs on local disk; writes are atomic (temp file + rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = private_dir(root)
        self._seen: set[str] = set()

    def path_for(self, sha: str) -> Path:
        """Where the blob named ``sha`` lives (or would); BlobNotFound for a non-digest."""
        if not is_sha256(sha):
            raise BlobNotFound(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def put(self, data: bytes) -> str:
        sha = sha256_hex(data)
        if sha in self._seen:
            return sha
        path = self.path_for(sha)
        if not path.exists():
            private_dir(path.parent)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # created 0600
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        if len(self._seen) < 100_000:
            self._seen.add(sha)
        return sha

    def get(self, sha: str) -> bytes:
        try:
            return self.path_for(sha).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(sha) from None

    def exists(self, sha: str) -> bool:
        return is_sha256(sha) and self.path_for(sha).exists()
