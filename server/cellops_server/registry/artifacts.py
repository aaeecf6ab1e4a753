"""Model artifacts: uploaded as a stream, verified against their sha256, content-addressed.

Bytes go to a temp file inside the blob store's root (same filesystem, so the final
rename is atomic) while being hashed; only a verified upload is renamed into place,
so a half-sent or corrupted upload leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..private import private_dir
from ..store.blobs import BlobNotFound, FileBlobStore, is_sha256


class ChecksumMismatch(ValueError):
    pass


class TooLarge(ValueError):
    pass


class Upload:
    """One artifact upload in progress; ``write`` chunks, then ``finish`` or ``discard``."""

    def __init__(self, blobs: FileBlobStore, expected: str, limit: int) -> None:
        self.blobs = blobs
        self.expected = expected
        self.limit = limit
        self.size = 0
        self._hash = hashlib.sha256()
        # An artifact already stored is only hashed (to verify the client), not written again.
        self.exists = blobs.exists(expected)
        self._file = None
        self._tmp: str | None = None
        if not self.exists:
            uploads = private_dir(blobs.root / ".uploads")
            fd, self._tmp = tempfile.mkstemp(dir=uploads, prefix="upload-")  # created 0600
            self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.discard()
            raise TooLarge(f"artifact larger than the limit of {self.limit} bytes")
        self._hash.update(chunk)
        if self._file is not None:
            self._file.write(chunk)

    def finish(self) -> bool:
        """Verify and keep the artifact; True if it is new."""
        actual = self._hash.hexdigest()
        if actual != self.expected:
            self.discard()
            raise ChecksumMismatch(
                f"checksum mismatch: the body's sha256 is {actual}, the URL says {self.expected}"
            )
        if self._file is None:
            return False
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        self._file = None
        path = self.blobs.path_for(self.expected)
        private_dir(path.parent)
        assert self._tmp is not None
        os.replace(self._tmp, path)
        self._tmp = None
        return True

    def discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None


class ArtifactStore:
    """Artifacts live in the store's blob store, named by their sha256."""

    def __init__(self, blobs: FileBlobStore) -> None:
        self.blobs = blobs

    def upload(self, sha: str, limit: int) -> Upload:
        if not is_sha256(sha):
            raise ValueError("artifacts are named by a lowercase hex sha256")
        return Upload(self.blobs, sha, limit)

    def path(self, sha: str) -> Path:
        """The file of a stored artifact (BlobNotFound if there is none)."""
        path = self.blobs.path_for(sha)  # raises BlobNotFound for anything but a hex digest
        if not path.is_file():
            raise BlobNotFound(sha)
        return path

    def size(self, sha: str) -> int | None:
        try:
            return self.path(sha).stat().st_size
        except BlobNotFound:
            return None
