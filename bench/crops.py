"""Look at it: frame 0 and frame N of renders beside frame N dreamed on its own, as 2x crops.

    python bench/crops.py INPUT OUT.png --renders default=runs/pan-default/ [name=DIR/ …]
                          [--start S] [--max-side 320] [--frame 20] [--box X,Y,W,H]

Each row is one render (a PNG folder of its frames, frame 0 = input frame S): its frame 0 and its
frame N, cropped to the box (default: the centre, a quarter of the frame) and enlarged 2x with
nearest-neighbour (no smoothing of our own). The last row is input frame S + N dreamed alone with
the default preset and the render's seed and frame index (what ``--flow none`` gives), beside the
raw input frame. A crisp carried dream looks like the bottom row; a soft one loses its fine lines.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from temporal import read_frames  # noqa: E402

from dreamvid.config.presets import settings_from_preset  # noqa: E402
from dreamvid.core.imageops import resize_to_max_side  # noqa: E402
from dreamvid.core.convert import quantize  # noqa: E402
from dreamvid.engine.dreamer import Dreamer  # noqa: E402


def crop2x(img: np.ndarray, box) -> np.ndarray:
    x, y, w, h = box
    return cv2.resize(img[y:y + h, x:x + w], (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--renders", nargs="+", required=True, metavar="NAME=DIR")
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--max-side", type=int, default=320)
    ap.add_argument("--frame", type=int, default=20)
    ap.add_argument("--box", help="X,Y,W,H of the crop in the dreamed frame (default: the centre quarter)")
    args = ap.parse_args(argv)
    raw = next(read_frames(args.input, 1, args.start + args.frame))
    raw = resize_to_max_side(raw, args.max_side)
    h, w = raw.shape[:2]
    box = tuple(int(v) for v in args.box.split(",")) if args.box else (w // 4, h // 4, w // 2, h // 2)
    rows = []
    for spec in args.renders:
        name, folder = spec.split("=", 1)
        files = sorted(glob.glob(os.path.join(folder, "*.png")))
        f0, fn = (cv2.cvtColor(cv2.imread(files[k]), cv2.COLOR_BGR2RGB) for k in (0, args.frame))
        rows.append([label(crop2x(f0, box), f"{name}: frame 0"), label(crop2x(fn, box), f"{name}: frame {args.frame}")])
    dreamer = Dreamer(settings_from_preset(None), device="cpu")
    alone = quantize(dreamer(raw, index=args.start + args.frame))
    rows.append([label(crop2x(raw, box), f"input frame {args.frame}"),
                 label(crop2x(alone, box), f"frame {args.frame} dreamed alone")])
    sheet = np.concatenate([np.concatenate(r, axis=1) for r in rows], axis=0)
    cv2.imwrite(args.output, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"{args.output}: {len(rows)} rows, crop {box} of {w}x{h}, 2x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
