"""The stand-in benchmark runs and reports what the GPU-first pipeline's target is read from.

bench/pipeline.py --dream-ms wraps the render's own functions in timers; if the render stops
calling what it wraps, or the report loses a line, the target can no longer be checked. This
renders a few small frames both ways (the GPU model and the carry on this CPU) and reads the
report back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_pipeline_stand_in_reports_both_pipelines_and_a_rate():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "pipeline.py"), "--size", "256x144",
                          "--dream-ms", "5", "--frames", "5", "--repeat", "1"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "GPU model: overlapped, the carry too is a 2 ms wait" in text
    assert "carry on CPU: overlapped, the carry computed on this CPU" in text
    rates = {m: float(r) for m, r in re.findall(r"^(GPU model|carry on CPU): 5 frames in [\d.]+ s, frames/s ([\d.]+)$",
                                                   text, re.MULTILINE)}
    assert set(rates) == {"GPU model", "carry on CPU"} and all(r > 0 for r in rates.values())
    main = re.findall(r"^frames/s ([\d.]+)$", text, re.MULTILINE)
    assert main == [f"{rates['GPU model']:.1f}"]
    # Every stage was observed in the carry-on-CPU render (its carry and motion took time there)
    # and the modelled carry took none of the CPU's.
    rows = dict(re.findall(r"^(\w+)\s+([\d. ()]+)$", text, re.MULTILINE))
    carry = [float(v) for v in re.findall(r"[\d.]+", rows["carry"])]
    assert carry[2] > 0 and carry[1] < carry[3]
