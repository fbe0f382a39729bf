"""Pixel fingerprints of the three default renders, to prove a refactor changed no output.

    python bench/pixels.py OUT.json [--repo DIR]     render with the dreamvid in DIR (default: this one)
    python bench/pixels.py --compare A.json B.json   frame-by-frame comparison of two fingerprints

Renders, with the CLI of the chosen checkout (a subprocess with DIR first on PYTHONPATH):
the default video render of samples/bunny.mp4 into a PNG folder, the default zoom loop of
samples/coffee.jpg into a PNG folder, and the default dream of samples/coffee.jpg as a PNG.
Every frame is decoded and the SHA-256 of its RGB pixels recorded, so two checkouts compare by
pixels, not by file bytes (PNG compression settings may differ).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "video": ["{samples}/bunny.mp4", "-o", "{out}/video/"],
    "zoom": ["zoom", "{samples}/coffee.jpg", "-o", "{out}/zoom/"],
    "image": ["{samples}/coffee.jpg", "-o", "{out}/image.png"],
}


def _pixels_sha(path: str) -> str:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return hashlib.sha256(img.tobytes()).hexdigest()


def fingerprint(repo: str) -> dict:
    result = {}
    env = dict(os.environ, PYTHONPATH=repo)
    with tempfile.TemporaryDirectory() as out:
        for name, args in CASES.items():
            argv = [a.format(samples=os.path.join(HERE, "samples"), out=out) for a in args]
            t = time.perf_counter()
            # cwd=repo: the working folder comes first on sys.path, before PYTHONPATH
            subprocess.run([sys.executable, "-m", "dreamvid", *argv, "--quiet"], env=env, check=True, cwd=repo)
            seconds = time.perf_counter() - t
            target = argv[argv.index("-o") + 1]
            files = ([os.path.join(target, f) for f in sorted(os.listdir(target))]
                     if os.path.isdir(target) else [target])
            result[name] = {"seconds": round(seconds, 1), "frames": [_pixels_sha(f) for f in files]}
            print(f"{name}: {len(files)} frames in {seconds:.1f} s", file=sys.stderr)
    return result


def compare(a: dict, b: dict) -> bool:
    same = True
    for name in CASES:
        fa, fb = a[name]["frames"], b[name]["frames"]
        differ = [i for i, (x, y) in enumerate(zip(fa, fb)) if x != y]
        ok = len(fa) == len(fb) and not differ
        same &= ok
        print(f"{name:6s} {len(fa)} vs {len(fb)} frames, {len(differ)} differ"
              f"{'' if ok else ' (first: %s)' % (differ[:1] or 'count')}  -> {'IDENTICAL' if ok else 'DIFFERENT'}")
    return same


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?")
    p.add_argument("--repo", default=HERE)
    p.add_argument("--compare", nargs=2, metavar=("A", "B"))
    a = p.parse_args()
    if a.compare:
        with open(a.compare[0]) as f, open(a.compare[1]) as g:
            return 0 if compare(json.load(f), json.load(g)) else 1
    result = fingerprint(os.path.abspath(a.repo))
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
