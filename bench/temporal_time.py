"""Cost of a frame after the first ÷ the first frame's, with the default temporal settings.

    python bench/temporal_time.py VIDEO [--max-side 320] [--repeat 5] [--frame 10]

Times, in one process and alternating (so a busy machine slows both alike), the first frame's full
schedule and a later frame's whole work: both flows (DIS), the carried init, the temporal term's
target and the short ascent with the term. Prints the minimum of each over the repeats and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time

from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import VideoSettings
from dreamvid.core.convert import to_tensor, to_unit
from dreamvid.core.imageops import resize_to_max_side
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.transforms import carried_dream
from dreamvid.io.sources import open_source
from dreamvid.pipeline.video import next_schedule
from dreamvid.temporal.carry import carried_target, estimate_flows, temporal_init
from dreamvid.temporal.flow import FlowEstimator


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frame", type=int, default=10, help="the later frame to time (its previous one carries)")
    a = ap.parse_args(argv)
    v = VideoSettings()
    s = settings_from_preset(None)
    d = Dreamer(s, "cpu")
    src = open_source(a.video)
    raws = [to_unit(resize_to_max_side(f, a.max_side)) for f in src.frames(a.frame - 1, a.frame + 1)]
    prev_raw, raw = raws
    prev_dream = d(prev_raw, index=a.frame - 1)
    est = FlowEstimator(v.flow)
    octaves, iterations = next_schedule(s, v)

    def later():
        flows = estimate_flows(est, raw, prev_raw)
        c = temporal_init(raw, prev_raw, prev_dream, None, v.blend, flows=flows)
        extra = None
        if v.temporal_weight or v.temporal_damping or v.temporal_fresh:
            target = carried_target(raw, prev_raw, prev_dream, c.flows, c.mask)
            extra = carried_dream(to_tensor(target, d.device), to_tensor(c.mask[..., None], d.device),
                                  v.temporal_weight, v.temporal_damping, v.temporal_fresh)
        return d(c.init, index=a.frame, octaves=octaves, iterations=iterations, extra=extra)

    first_t, later_t = [], []
    later()  # warm-up
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        d(raw, index=a.frame)
        first_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        later()
        later_t.append(time.perf_counter() - t0)
    f, l = min(first_t), min(later_t)
    h, w = raw.shape[:2]
    print(f"{a.video} at {w}x{h}: first frame {f:.3f} s, later frame {l:.3f} s "
          f"({octaves} octaves x {iterations} iterations + flows + term): later/first {l / f:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
