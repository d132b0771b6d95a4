"""Storing an incident's documents: copied into the private incident storage, hashed on the way, recorded.

A document is never rewritten: generating again adds new rows and files (the storage picks a free name),
so what was sent to an insurer stays available with the SHA-256 it was sent with.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from django.core.files import File
from django.db import transaction

from rempart.incidents.models import Document, Incident, Scope

CHUNK = 1024 * 1024


class _HashingFile(File):
    """A File whose chunks feed a SHA-256 and a byte count as the storage copies them (bounded memory)."""

    def __init__(self, handle, name: str) -> None:
        super().__init__(handle, name=name)
        self.digest = hashlib.sha256()
        self.copied = 0

    def chunks(self, chunk_size=None):
        self.seek(0)
        self.digest = hashlib.sha256()
        self.copied = 0
        while chunk := self.read(chunk_size or CHUNK):
            self.digest.update(chunk)
            self.copied += len(chunk)
            yield chunk

    def multiple_chunks(self, chunk_size=None) -> bool:
        return True


def store_document(
    incident: Incident,
    *,
    kind: str,
    filename: str,
    content_type: str,
    path_or_bytes: str | os.PathLike | bytes,
    insurer=None,
    scope: Scope | None = None,
    by=None,
) -> Document:
    """Copy a file (a path, or bytes already in memory) into the incident's storage and record it.

    The file lands under "<incident id>/" in the private storage (REMPART_INCIDENT_DIR); its SHA-256 and
    size are those of the bytes actually written. If the row cannot be saved the copy is removed.
    """
    if kind not in Document.Kind.values:
        raise ValueError(f"unknown document kind: {kind!r}")
    if scope is not None and scope.incident_id != incident.pk:
        raise ValueError("the scope belongs to another incident")
    filename = Path(filename).name  # a name to download under, never a path
    if not filename:
        raise ValueError("a document needs a file name")
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        handle = io.BytesIO(bytes(path_or_bytes))
    else:
        handle = open(path_or_bytes, "rb")  # closed below, after the copy
    document = Document(
        incident=incident,
        scope=scope,
        insurer=insurer,
        kind=kind,
        filename=filename[:200],
        content_type=content_type,
        created_by=by,
        sha256="",
        size=0,
    )
    with handle:
        source = _HashingFile(handle, filename)
        document.file.save(filename, source, save=False)
    try:
        document.sha256 = source.digest.hexdigest()
        document.size = source.copied
        stored = document.file.storage.size(document.file.name)
        if stored != source.copied:
            raise OSError(f"stored {stored} bytes of {source.copied}")
        with transaction.atomic():
            document.save()
    except BaseException:
        document.file.storage.delete(document.file.name)
        raise
    return document


def file_sha256(document: Document) -> str:
    """Hash the stored file again (to show a document is the one recorded)."""
    digest = hashlib.sha256()
    with document.file.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
