"""The C allocator's settings (engine/cpu_memory.py): freed tensor memory is reused, not re-faulted."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from dreamvid.engine.cpu_memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_freed_tensor_memory_is_reused_without_page_faults():
    # In a fresh process: the allocator's settings are process-wide and set once.
    code = textwrap.dedent("""
        import resource, torch
        from dreamvid.engine.cpu_memory import keep_freed_memory

        def faults():
            # 20 network-pass-like rounds: a few 20 MiB tensors made, written, freed
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(20):
                a = torch.ones(5 << 20)
                b = a * 2
                del a, b
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

        faults()  # glibc's own adjustment, for a fair "before"
        before = faults()
        assert keep_freed_memory()
        faults()
        after = faults()
        print(before, after)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    before, after = (int(v) for v in out.stdout.split())
    assert before > 20 * 5000  # each round faulted its 40 MiB in again (4 KiB pages)
    assert after < before / 20


def test_keep_freed_memory_is_set_once_and_says_whether_it_applied():
    assert keep_freed_memory() is keep_freed_memory() is GLIBC
