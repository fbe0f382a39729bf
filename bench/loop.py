"""How seamless a zoom loop is.

    python bench/loop.py OUTPUT.gif|.mp4|.webm|folder/

Decodes the loop and prints
  seam ratio   mean |last − first| / median over consecutive pairs of mean |f_{t+1} − f_t|
               (1 = the wrap-around is an ordinary step; target <= 1.5)
  worst step   the largest step, the seam included, / the same median (a hidden seam: the
               cross-fade that closes the loop shows up here if it is abrupt)
  drift        mean brightness of the middle frame vs the first, in percent (target within 5%)
The computation is dreamvid.temporal.metrics.loop_stats (the tests call it too).
"""

from __future__ import annotations

import argparse
import sys

from dreamvid.errors import DreamvidError
from dreamvid.pipeline.zoom import read_loop
from dreamvid.temporal.metrics import loop_stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Seam ratio and brightness drift of a zoom loop.")
    p.add_argument("output", help="a loop: .gif, .mp4, .webm or a folder of frames")
    a = p.parse_args(argv)
    try:
        s = loop_stats(read_loop(a.output))
    except DreamvidError as e:
        print(f"loop.py: error: {e}", file=sys.stderr)
        return 2
    print(f"frames       {s.frames}")
    print(f"median step  {s.median_step:.4f}  (mean |f[t+1] - f[t]|, 0..1 scale)")
    print(f"seam ratio   {s.seam_ratio:.2f}  (|last - first| / median step; target <= 1.5)")
    print(f"worst step   {s.worst_step_ratio:.2f}  (largest step incl. the seam / median step)")
    print(f"drift        {s.drift_percent:+.1f}%  (mean brightness, middle vs first frame; target within 5%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
