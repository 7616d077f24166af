"""Large buffers come from mmap once `return_large_buffers` ran (glibc), so they go back when
freed; glibc's own threshold would have risen after the first big buffer was freed."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import ctypes, sys
from models.memory import return_large_buffers
if sys.argv[1] == "on":
    assert return_large_buffers()
libc = ctypes.CDLL("libc.so.6")

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
libc.free(libc.malloc(4 << 20))  # a freed 4 MB block: glibc raises its threshold to 4 MB
before = libc.mallinfo2().hblks
block = libc.malloc(512 << 10)  # a 512 KB page image
print(libc.mallinfo2().hblks - before)
"""


def _mapped_blocks(setting: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, setting],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(out.stdout.strip())


def test_a_large_buffer_is_mapped_only_with_the_setting() -> None:
    if sys.platform != "linux":
        pytest.skip("glibc only")
    assert _mapped_blocks("off") == 0  # from the heap, where its hole would stay resident
    assert _mapped_blocks("on") == 1  # its own mapping, returned to the system on free
