"""Progress on the terminal for long jobs (tqdm), silent when asked or when not a terminal."""

from __future__ import annotations

import io
import sys
from typing import BinaryIO

from tqdm import tqdm


def progress_bar(total: int | None, desc: str, unit: str = "B", enabled: bool | None = None) -> tqdm:
    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=True,
        unit_divisor=1024 if unit == "B" else 1000,
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


class CountingReader(io.RawIOBase):
    """A raw binary stream that reports the bytes it reads, so a text reader can drive a progress bar."""

    def __init__(self, raw: BinaryIO, on_read) -> None:
        self._raw = raw
        self._on_read = on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        if size:
            self._on_read(size)
        return size
