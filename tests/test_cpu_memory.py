"""The C allocator's settings (engine/cpu_memory.py): freed tensor memory is reused, not re-faulted."""

import ctypes
import os
import subprocess
import sys
import textwrap

import pytest

from dreamvid.engine.cpu_memory import keep_freed_memory

GLIBC = sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")

# Real network passes, as a later video frame makes them (Lite0 to block10, at 640x360 and
# 457x257), in a fresh process (the allocator's settings are process-wide and set once); prints
# the minor page faults of 6 passes.
PASSES = textwrap.dedent("""
    import resource, sys, torch
    from dreamvid.engine.cpu_memory import keep_freed_memory
    from dreamvid.engine.models import load_model

    # fp32: the allocator behaves alike in bf16 (the engine's CPU default where the CPU has native
    # bf16), but bf16 is emulated and ~6x slower on CPUs without it (measured 236 s vs 39 s here).
    model = load_model("efficientnet_lite0", "random", "cpu", precision="fp32")

    def passes(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for size in [(360, 640), (257, 457)] * n:
            x = torch.rand(1, 3, *size).contiguous(memory_format=torch.channels_last).requires_grad_(True)
            y = model(x, ["block10"])["block10"]
            y.float().pow(2).mean().backward()
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    passes(1)  # first-use costs, and glibc's own threshold adjustment
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
        passes(1)
    print(passes(3))
""")


def faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PASSES, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    return int(out.stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_network_passes_stop_page_faulting_their_memory_in_again():
    before = faults("default")
    if before < 20000:  # e.g. transparent huge pages set to "always": glibc's default costs little there
        pytest.skip(f"this system faults only {before} times by default")
    # glibc handed the memory back: each pass faulted ~40 MiB in again (measured 49-64k)
    after = faults("keep")
    assert after < before / 5  # measured 2-4k


def test_keep_freed_memory_is_set_once_and_says_whether_it_applied():
    assert keep_freed_memory() is keep_freed_memory() is GLIBC
