"""What refusing a decompression bomb costs: a 30000x30000 PNG (900 MP, ~0.9 MB on disk, 2.5 GiB
decoded) given to read_image, in a fresh process each time; peak RSS growth and wall time printed.

    python bench/input_budget.py
"""

import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_input_budget import zero_png  # noqa: E402  (the test's bomb builder)

CHILD = """
import resource, sys, time
from dreamvid.io.images import read_image
from dreamvid.errors import InputTooLarge
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
try:
    read_image(sys.argv[1])
    what = "decoded"
except InputTooLarge:
    what = "refused"
print(what, time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)
"""

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "bomb.png")
        t = time.perf_counter()
        data = zero_png(30000, 30000)
        with open(path, "wb") as f:
            f.write(data)
        print(f"bomb: 30000x30000 PNG, {len(data) / 1e6:.2f} MB, built in {time.perf_counter() - t:.2f} s")
        out = subprocess.run([sys.executable, "-c", CHILD, path], capture_output=True, text=True, check=True).stdout
        what, seconds, kib = out.split()
        print(f"read_image: {what} in {float(seconds) * 1000:.2f} ms, peak RSS growth {int(kib) / 1024:.1f} MiB "
              f"(decoding would need {30000 * 30000 * 3 / 2**30:.1f} GiB for the RGB array alone)")
        print(f"load: {os.getloadavg()[0]:.1f}")
