"""Live dreams on this machine: frames/s, latency and drops, and flicker against an offline render.

    python bench/live.py [--sizes 160,192,240] [--seconds 8] [--flicker-size 160]
                         [--eval-python .venv-eval/bin/python] [--clips bunny,world,pan,cut]
    python bench/live.py --page [--seconds 20]     # the web page's Live tab in Chromium

--page: starts ``dreamvid ui`` and Debian's Chromium (Playwright, the ``[test]`` extra) with a fake
camera fed from the bunny clip (320x180 Y4M), streams into the Live tab for --seconds and prints the
frames/s and latency the page shows (once a second, and their medians). The browser runs on the
same machine, so its own work is part of the figure.

Each clip is played in real time (``run_live(..., realtime=True)``, the default model and preset,
the default LiveSettings but the size) and the run reports frames/s (dreamed frames over the run),
latency (a frame's due time → its dream ready: median and 90th percentile), the share of the
clip's frames dropped, and the cuts (frames dreamed afresh, the first included).

Flicker: the frames the live run at --flicker-size actually dreamed are taken from the clip (at
the live size) and rendered offline by ``dream_video`` with the preset's video settings (the
render's full temporal carry), and once with ``flow none`` (independent frames, the scale of R).
For the live and the offline dream it prints E_warp, R = (E − E_in) / (E_none − E_in), the dream
strength S and the fine-detail strength Shf (Laplacian energy of out − in) ÷ the none render's,
and live ÷ offline of the excess flicker E − E_in. The evaluation flow is DeepFlow on the input
(bench/eval_flows.py in an environment with OpenCV-contrib, --eval-python), not the render's DIS;
without --eval-python it falls back to DIS and says so.

Clips (all made from files on this machine; none was used to choose LiveSettings' defaults):
bunny (samples/bunny.mp4 played forward and back: slow motion over grass), world (Gradio's
media_assets world.mp4 when installed: a globe turning on black, a moving object on a textureless
static background), pan (samples/coffee.jpg panned 3 px a frame: a camera pan over a real photo),
cut (bunny then world: a scene change).
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dreamvid.config.presets import DEFAULT_PRESET, get_preset  # noqa: E402
from dreamvid.config.settings import LiveSettings, RunOptions, VideoSettings  # noqa: E402
from dreamvid.core.imageops import resize_to_max_side  # noqa: E402
from dreamvid.io.sinks import open_sink  # noqa: E402
from dreamvid.pipeline.common import build_dreamer  # noqa: E402
from dreamvid.pipeline.live import run_live  # noqa: E402
from dreamvid.pipeline.video import dream_video  # noqa: E402
from dreamvid.temporal.flow import FlowEstimator  # noqa: E402
from dreamvid.temporal.metrics import coherence_stats  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = os.path.join(ROOT, "samples")


def decode(path, limit=None):
    cap, out = cv2.VideoCapture(path), []
    while limit is None or len(out) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return out


def write_clip(path, frames, fps):
    h, w = frames[0].shape[:2]
    with open_sink(path, Fraction(fps), w, h, quality=12) as sink:
        for f in frames:
            sink.write(f)
    return path


def make_clips(folder, seconds):
    """{name: (path, fps)} of the clips (see the module doc), each `seconds` long."""
    clips = {}
    bunny = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in decode(os.path.join(SAMPLES, "bunny.mp4"))]
    n = int(seconds * 25)
    loop = []
    while len(loop) < n:
        loop += bunny if len(loop) // len(bunny) % 2 == 0 else bunny[::-1]
    clips["bunny"] = (write_clip(os.path.join(folder, "bunny.mp4"), loop[:n], 25), 25)
    import importlib.util
    spec = importlib.util.find_spec("gradio")
    world = None
    if spec is not None:
        p = os.path.join(os.path.dirname(spec.origin), "media_assets", "videos", "world.mp4")
        if os.path.exists(p):
            world = [cv2.resize(f, (320, 180), interpolation=cv2.INTER_AREA) for f in decode(p, int(seconds * 30))]
            clips["world"] = (write_clip(os.path.join(folder, "world.mp4"), world, 30), 30)
    photo = cv2.cvtColor(cv2.imread(os.path.join(SAMPLES, "coffee.jpg")), cv2.COLOR_BGR2RGB)
    photo = resize_to_max_side(photo, 960)
    ph, pw = photo.shape[:2]
    crop_w, crop_h = min(pw - 3 * n // 4, 640), 360
    pan = [cv2.resize(photo[(ph - crop_h) // 2:(ph - crop_h) // 2 + crop_h, x:x + crop_w], (320, 180),
                      interpolation=cv2.INTER_AREA) for x in [min(3 * t, pw - crop_w) for t in range(n)]]
    clips["pan"] = (write_clip(os.path.join(folder, "pan.mp4"), pan, 25), 25)
    if world is not None:
        half = n // 2
        clips["cut"] = (write_clip(os.path.join(folder, "cut.mp4"), loop[:half] + world[:half], 25), 25)
    return clips


def speed(path, size, dreamer, out=None, video=None):
    r = run_live(path, out, live=LiveSettings(size=size), dreamer=dreamer, realtime=True, video=video)
    lat = np.asarray(r.latency)
    return r, dict(fps=r.fps, lat50=float(np.median(lat)), lat90=float(np.percentile(lat, 90)),
                   dropped=r.dropped / max(1, r.received), cuts=r.cuts, dreamed=len(r.dreamed))


def flicker(name, path, result, live_dir, work, dreamer, eval_python):
    """E_warp, R, S, Shf of the live dream and of an offline render of the same input frames."""
    raw_dir = os.path.join(work, f"{name}-raw")
    os.makedirs(raw_dir, exist_ok=True)
    live_frames = [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in sorted(glob.glob(os.path.join(live_dir, "*.png")))]
    h, w = live_frames[0].shape[:2]
    all_raw = decode(path)
    raws = [cv2.resize(all_raw[i], (w, h), interpolation=cv2.INTER_AREA) for i in result.dreamed]
    for k, f in enumerate(raws):
        cv2.imwrite(os.path.join(raw_dir, f"frame_{k + 1:06d}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    video = VideoSettings(**get_preset(DEFAULT_PRESET).video)
    offline, none = os.path.join(work, f"{name}-offline") + "/", os.path.join(work, f"{name}-none") + "/"
    run = RunOptions(device=dreamer.device.type, fresh=True)
    dream_video(raw_dir, offline, dreamer.settings, video, run, dreamer)
    dream_video(raw_dir, none, dreamer.settings, video.replace(flow="none"), run, dreamer)
    flows, how = None, "DIS (the render's own flow: not independent; give --eval-python)"
    if eval_python:
        cache = os.path.join(work, f"{name}-flows.npz")
        subprocess.run([eval_python, os.path.join(ROOT, "bench", "eval_flows.py"), os.path.join(raw_dir, "frame_%06d.png"),
                        cache, "--size", f"{w}x{h}", "--frames", str(len(raws))], check=True, stdout=subprocess.DEVNULL)
        data = np.load(cache)
        fl = {k: data[k] for k in data.files}
        flows, how = (lambda t, k: (fl[f"f{k}"][t].astype(np.float32), fl[f"g{k}"][t].astype(np.float32))), "DeepFlow"

    def frames_of(folder):
        return [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in sorted(glob.glob(os.path.join(folder, "*.png")))]

    est = FlowEstimator("dis")
    stats = {k: coherence_stats(raws, frames, est, flows=flows)
             for k, frames in (("live", live_frames), ("offline", frames_of(offline)), ("none", frames_of(none)))}
    return stats, how


def page(seconds: float) -> int:
    """The Live tab's frames/s and latency as the page shows them (see the module doc)."""
    import shutil
    import socket
    import urllib.request
    from playwright.sync_api import sync_playwright
    with tempfile.TemporaryDirectory(prefix="dreamvid-live-page-") as work:
        cam = os.path.join(work, "camera.y4m")
        from dreamvid.io.ffmpeg import ffmpeg_exe
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", os.path.join(SAMPLES, "bunny.mp4"), "-vf",
                        "scale=320:180", "-pix_fmt", "yuv420p", cam], check=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        server = subprocess.Popen([sys.executable, "-m", "dreamvid", "ui", "--port", str(port), "--work-dir",
                                   os.path.join(work, "ui")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url, timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                b = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True,
                                      args=["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                                            f"--use-file-for-fake-video-capture={cam}"])
                pg = b.new_context(permissions=["camera"]).new_page()
                pg.goto(url)
                pg.click("#live-tab-button")
                pg.click("#live-camera [title='grant webcam access'] button")
                pg.click("#live-camera button.capture-button")
                pg.wait_for_selector("#live-stats[data-latency]", timeout=120_000)
                fps, lat = [], []
                t0 = time.monotonic()
                while time.monotonic() - t0 < seconds:
                    time.sleep(1)
                    el = pg.locator("#live-stats")
                    fps.append(float(el.get_attribute("data-fps") or 0))
                    lat.append(float(el.get_attribute("data-latency") or 0))
                    print(f"  {time.monotonic() - t0:5.1f} s  {pg.inner_text('#live-stats')}", flush=True)
                pg.click("#live-stop")
                b.close()
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"page, default Live settings (160 px), {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}: "
          f"median {np.median(fps):.1f} frames/s, latency {np.median(lat):.3f} s")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="160,192,240")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--flicker-size", type=int, default=160)
    ap.add_argument("--eval-python", help="a Python with opencv-contrib for DeepFlow evaluation flows")
    ap.add_argument("--clips", help="comma-separated subset of bunny,world,pan,cut")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--page", action="store_true", help="measure the web page's Live tab instead")
    ap.add_argument("--carry-anchor", type=int, help="the live carry's anchor interval (0 = the one-step carry; "
                    f"default {VideoSettings.carry_anchor}); the offline render keeps the preset's")
    a = ap.parse_args(argv)
    if a.page:
        return page(a.seconds if a.seconds != 8.0 else 20.0)
    sizes = [int(s) for s in a.sizes.split(",")]
    dreamer = build_dreamer(None, RunOptions(device=a.device), None)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="dreamvid-live-bench-") as work:
        clips = make_clips(work, a.seconds)
        if a.clips:
            clips = {k: v for k, v in clips.items() if k in a.clips.split(",")}
        print(f"dreamvid live bench: {dreamer.model.name}, {dreamer.device.type}, precision {dreamer.precision.name}, "
              f"torch threads {__import__('torch').get_num_threads()}, {os.cpu_count()} cores, load {load:.1f} at start")
        print(f"{'clip':<7} {'size':>5} {'frames/s':>9} {'latency p50':>12} {'p90':>7} {'dropped':>8} {'cuts':>5}")
        kept = {}
        for name, (path, fps) in clips.items():
            for size in sizes:
                live_dir = os.path.join(work, f"{name}-{size}-live") + "/"
                live_video = None if a.carry_anchor is None else VideoSettings(carry_anchor=a.carry_anchor)
                r, s = speed(path, size, dreamer, live_dir if size == a.flicker_size else None, live_video)
                print(f"{name:<7} {size:>5} {s['fps']:>9.1f} {s['lat50']:>10.3f} s {s['lat90']:>5.3f} s "
                      f"{s['dropped']:>7.0%} {s['cuts']:>5}", flush=True)
                if size == a.flicker_size:
                    kept[name] = (path, r, live_dir)
        print(f"load {os.getloadavg()[0]:.1f} at the end of the speed runs")
        print(f"\nflicker at {a.flicker_size} px, the frames the live run dreamed (live) vs dream_video of the same "
              "frames (offline) and with flow none (none):")
        print(f"{'clip':<7} {'frames':>6} {'E_in':>9} {'E live':>9} {'E offline':>9} {'R live':>7} {'R off':>6} "
              f"{'S live':>7} {'S off':>6} {'Shf live':>8} {'Shf off':>7} {'live/off':>8}")
        for name, (path, r, live_dir) in kept.items():
            if name == "cut":
                continue  # a scene change: no flow across it to measure flicker with
            st, how = flicker(name, path, r, live_dir, work, dreamer, a.eval_python)
            lv, off, none = st["live"], st["offline"], st["none"]

            def R(s):
                return (s.e_warp_output - s.e_warp_input) / max(1e-12, none.e_warp_output - none.e_warp_input)

            ratio = (lv.e_warp_output - lv.e_warp_input) / max(1e-12, off.e_warp_output - off.e_warp_input)
            print(f"{name:<7} {len(r.dreamed):>6} {lv.e_warp_input:>9.5f} {lv.e_warp_output:>9.5f} {off.e_warp_output:>9.5f} "
                  f"{R(lv):>7.3f} {R(off):>6.3f} {lv.strength / none.strength:>7.3f} {off.strength / none.strength:>6.3f} "
                  f"{lv.detail / none.detail:>8.3f} {off.detail / none.detail:>7.3f} {ratio:>8.2f}", flush=True)
        print(f"(evaluation flow: {how if kept else '-'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
