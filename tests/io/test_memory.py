"""Freed heap memory goes back to the operating system when the writer asks for it."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAGMENTED_HEAP = """
import ctypes
from bandfusion.io.memory import _malloc_trim, release_freed_memory

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

blocks = [ctypes.create_string_buffer(100_000) for _ in range(3000)]  # ~300 MB, heap
del blocks[:-1]  # all freed but the last, which pins the heap's top: no shrinking by brk
before = rss_mb()
release_freed_memory()
print(_malloc_trim() is not None, round(before - rss_mb()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_returns_freed_heap_pages() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FRAGMENTED_HEAP], capture_output=True, text=True, check=True
    )
    found, released_mb = result.stdout.split()
    assert found == "True"
    assert int(released_mb) > 200
