"""Cost of a frame after the first ÷ the first frame's, with the default temporal settings.

    python bench/temporal_time.py VIDEO [--max-side 320] [--repeat 5] [--frame 10]

Times, in one process and alternating (so a busy machine slows all alike), the first frame's full
schedule and a later frame's whole work: both flows (DIS), the carry, the temporal term's target
and the short ascent with the term; the later frame both as the default does it (the anchor
followed one more frame and sampled, the band-limited pull) and as the one-step carry of version
0.2 did (``--carry-anchor 0 --temporal-band 0``). Prints the minimum of each over the repeats and
the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time

from dreamvid.config.presets import settings_from_preset
from dreamvid.config.settings import VideoSettings
from dreamvid.core.convert import quantize_tensor, to_tensor
from dreamvid.core.imageops import resize_to_max_side
from dreamvid.engine.dreamer import Dreamer
from dreamvid.engine.transforms import carried_dream
from dreamvid.io.sources import open_source
from dreamvid.pipeline.video import next_schedule
from dreamvid.temporal.anchor import Anchor
from dreamvid.temporal.carry import carry_anchored, carry_one_step, estimate_flows
from dreamvid.temporal.flow import FlowEstimator
from dreamvid.temporal.motion import Motion


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
    rgbs = [resize_to_max_side(f, a.max_side) for f in src.frames(a.frame - 1, a.frame + 1)]
    prev_raw, raw = (to_tensor(f, d.device) for f in rgbs)
    prev_dream = quantize_tensor(d.dream_tensor(prev_raw, index=a.frame - 1)).float() / 255.0
    est = FlowEstimator(v.flow, max_side=v.flow_max_side)
    octaves, iterations = next_schedule(s, v)

    def motion():
        flows = estimate_flows(est, rgbs[1], rgbs[0])
        return Motion(flows.backward, flows.forward, tuple(raw.shape[-2:]), raw.device)

    def term(c, band):
        return carried_dream(c.target, c.mask, v.temporal_weight, v.temporal_damping, v.temporal_fresh, band)

    def later_old():
        c = carry_one_step(raw, prev_raw, prev_dream, motion(), v.blend)
        return d.dream_tensor(c.init, index=a.frame, octaves=octaves, iterations=iterations, extra=term(c, 0.0))

    def later_new():
        m = motion()
        anchor = Anchor(a.frame - 1, prev_dream - prev_raw, v.carry_kernel, m.flow_size)
        anchor.follow(m)
        c = carry_anchored(raw, prev_raw, prev_dream, m, anchor, v.blend)
        return d.dream_tensor(c.init, index=a.frame, octaves=octaves, iterations=iterations,
                              fine_iterations=v.next_fine_iterations, extra=term(c, v.temporal_band))

    times = {"first": [], "later": [], "later, 0.2's carry": []}
    later_new(), later_old()  # warm-up
    for _ in range(a.repeat):
        for name, fn in (("first", lambda: d.dream_tensor(raw, index=a.frame)), ("later", later_new),
                         ("later, 0.2's carry", later_old)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    f = min(times["first"])
    h, w = raw.shape[-2:]
    print(f"{a.video} at {w}x{h}: first frame {f:.3f} s; later frames ({octaves} octaves x {iterations} "
          "iterations + flows + carry + term):")
    for name in ("later", "later, 0.2's carry"):
        print(f"  {name:<20} {min(times[name]):.3f} s  later/first {min(times[name]) / f:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
