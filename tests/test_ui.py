"""The web page (dreamvid ui): a real server, a real browser, the API through gradio_client.

One server per module (``python -m dreamvid ui`` in a subprocess, on a free port, its own work
folder, uploads limited to 1 MB), headless Chromium (Debian's /usr/bin/chromium) driven by
Playwright, and tiny renders (96-128 px, one octave, a few frames) so the module runs in about a
minute on two busy cores. The last test stops the server with Ctrl-C (SIGINT) mid-job.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from dreamvid.io.images import read_image  # noqa: E402
from dreamvid.io.sources import open_source  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COFFEE, BUNNY = ROOT / "samples" / "coffee.jpg", ROOT / "samples" / "bunny.mp4"
CHROMIUM = os.environ.get("DREAMVID_CHROMIUM", "/usr/bin/chromium")
MAX_UPLOAD = "1mb"
TINY = dict(iterations="1", octaves="1")  # one octave: a 96 px frame is enough for block8/block10

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""


class Server:
    def __init__(self, work: Path):
        self.work, self.port = work, _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dreamvid", "ui", "--port", str(self.port), "--work-dir", str(work),
             "--device", "cpu", "--max-file-size", MAX_UPLOAD],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        deadline = started + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dreamvid ui exited: {self.proc.communicate()}"
            try:
                if _get(self.url)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            pytest.fail("dreamvid ui did not answer within 120 s")
        self.cold_start = time.monotonic() - started

    def stop(self, sig=signal.SIGINT, timeout=90):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("ui-work"))
    print(f"\ndreamvid ui cold start: {s.cold_start:.1f} s")
    yield s
    if s.proc.poll() is None:
        s.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False, download_files=str(server.work / "client"))


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory):
    """What the browser's fake camera shows: the bunny sample as Y4M at 320x180 (Chromium loops it)."""
    from conftest import ffmpeg
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    ffmpeg("-i", str(BUNNY), "-vf", "scale=320:180", "-pix_fmt", "yuv420p", str(path))
    return path


@pytest.fixture(scope="module")
def browser(camera_clip):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        # A fake camera fed from a video file, granted without a prompt (the Live tab's test).
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_clip}"])
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the server; any request off this machine is refused and recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                  permissions=["camera"])
    pg = context.new_page()
    pg.offsite = []

    def guard(route):
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            pg.offsite.append(route.request.url)
            route.abort()

    pg.route("**/*", guard)
    pg.set_default_timeout(60_000)
    pg.goto(server.url)
    pg.wait_for_selector("#image-dream")
    yield pg
    context.close()


def fill(pg, elem_id: str, text: str) -> None:
    """Type into a field and leave it; again if the page re-rendered it meanwhile (a field in an
    accordion that just opened can be mounted anew, dropping the value: 1 preview in 3 ran with the
    default frames)."""
    for _ in range(5):
        box = pg.locator(f"#{elem_id} textarea, #{elem_id} input").first
        box.fill(text)
        box.press("Tab")
        time.sleep(0.2)
        if pg.locator(f"#{elem_id} textarea, #{elem_id} input").first.input_value() == text:
            return
    raise AssertionError(f"#{elem_id} did not keep {text!r}")


def status(pg, kind: str):
    s = pg.locator(f"#{kind}-status .dv-status")
    return {k: s.get_attribute(f"data-{k}") for k in ("state", "done", "total", "resumed")}, s.inner_text()


def wait_state(pg, kind: str, states, timeout=90_000):
    sel = ", ".join(f"#{kind}-status .dv-status[data-state={s}]" for s in states)
    try:
        pg.wait_for_selector(sel, timeout=timeout)
    except Exception:  # say where the page got to instead of a bare timeout
        raise AssertionError(f"{kind} never reached {states}: {status(pg, kind)}") from None
    return status(pg, kind)


def read_image_size(path):
    src = open_source(str(path))
    return src.width, src.height


def checkpoints(work: Path):
    return set(work.glob("jobs/*/*.dreamvid"))


def frames_in(folder: Path):
    return sorted(folder.glob("frame_*.png"))


def new_checkpoint(work: Path, before, timeout=90):
    """The checkpoint folder a job started after `before` (a checkpoints() set) made."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        made = checkpoints(work) - before
        if made:
            return made.pop()
        time.sleep(0.1)
    pytest.fail("the job made no checkpoint")


# ----------------------------------------------------------------------------------- in a browser

def test_page_is_titled_offline_and_has_four_tabs(page, server):
    assert page.title() == "dreamvid"
    for name in ("Image", "Video", "Zoom loop", "Live"):
        assert page.get_by_role("tab", name=name).is_visible()
    # Not "networkidle": the Live tab's stream event keeps Gradio's heartbeat connection open.
    page.wait_for_load_state("load")
    page.get_by_role("tab", name="Live").click()
    page.wait_for_selector("#live-camera")
    time.sleep(2)
    assert page.offsite == [], "the page asked for assets off this machine"


def test_dream_the_bundled_photo_and_download_it(page, server, tmp_path):
    page.locator("#image-upload input[type=file]").set_input_files(str(COFFEE))
    page.wait_for_selector("#image-probe:has-text('coffee.jpg: 600×400')")
    fill(page, "image-max-side", "128")
    fill(page, "image-iterations", "2")
    fill(page, "image-octaves", "1")
    page.click("#image-dream")
    st, text = wait_state(page, "image", ["done"])
    assert st["done"] == st["total"] == "2" and "done" in text
    img = page.locator("#image-result img")
    img.wait_for()
    assert img.evaluate("i => i.complete && i.naturalWidth") == 128
    with page.expect_download() as dl:
        page.locator("#image-download a").first.click()
    saved = tmp_path / dl.value.suggested_filename
    dl.value.save_as(saved)
    assert saved.name == "coffee-dream.png"
    dreamed = read_image(str(saved))
    assert dreamed.shape == (85, 128, 3)
    # It dreamed: not just the photo shrunk.
    assert np.abs(dreamed.astype(int) - 128).mean() > 10


def test_video_progress_preview_cancel_and_resume(page, server):
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-samples button, #video-samples td, #video-samples .gallery-item").first.click()  # the sample
    page.wait_for_selector("#video-probe:has-text('bunny.mp4: 426×240, 50 frames')")
    fill(page, "video-max-side", "160")
    fill(page, "video-iterations", "2")
    fill(page, "video-octaves", "1")
    # Later frames long enough (~0.3 s each on a quiet machine) that Cancel lands mid-render:
    # with 2 iterations the 14 frames took 1 s and the render could finish before the click.
    fill(page, "video-next-iterations", "30")
    fill(page, "video-end", "14")
    before = checkpoints(server.work)
    page.click("#video-dream")
    # Progress and a live preview while it runs.
    page.wait_for_selector("#video-status .dv-status[data-state=running]")
    page.wait_for_selector("#video-preview img", timeout=60_000)
    st, text = status(page, "video")
    assert st["total"] == "14" and "frame" in text
    page.click("#video-cancel")
    st, text = wait_state(page, "video", ["stopped"])
    stopped_at = int(st["done"])
    assert 0 < stopped_at < 14, text
    assert "press Dream again with the same settings to resume" in text
    ckpt = new_checkpoint(server.work, before)
    assert len(frames_in(ckpt)) == stopped_at  # what the page said is what is kept
    page.wait_for_timeout(300)
    page.click("#video-dream")
    page.wait_for_selector(f"#video-status:has-text('resuming at frame {stopped_at} of 14')")
    st, text = wait_state(page, "video", ["done"], timeout=120_000)
    assert st["resumed"] == str(stopped_at) and st["done"] == "14", text
    src = page.locator("#video-result video").get_attribute("src")
    assert src and "bunny-dream.mp4" in src
    assert not ckpt.exists()  # the checkpoint is gone once the video is encoded
    out = next(server.work.glob("jobs/video-*/bunny-dream.mp4"))
    assert open_source(str(out)).num_frames == 14


def test_garbage_upload_shows_the_message(page, server, tmp_path):
    garbage = tmp_path / "holiday.mp4"
    garbage.write_text("this is text, not a video\n")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-upload input[type=file]").set_input_files(str(garbage))
    page.wait_for_selector("#video-probe:has-text('⚠ cannot read holiday.mp4')")
    page.click("#video-dream")
    st, text = wait_state(page, "video", ["error"])
    assert "cannot read holiday.mp4" in text and "/jobs/" not in text
    toast = page.locator("[data-testid=toast-body]").filter(has_text="cannot read holiday.mp4")
    toast.first.wait_for()
    # The server keeps serving: the image tab still probes an upload.
    page.get_by_role("tab", name="Image").click()
    page.locator("#image-upload input[type=file]").set_input_files(str(COFFEE))
    page.wait_for_selector("#image-probe:has-text('coffee.jpg: 600×400')")


def test_upload_over_the_limit_is_refused_in_the_page(page, server, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (1 << 20) * 2)
    page.locator("#image-upload input[type=file]").set_input_files(str(big))
    page.locator("[data-testid=toast-body]").filter(has_text="1").first.wait_for()
    text = page.locator("[data-testid=toast-body]").first.inner_text().lower()
    assert "size" in text or "large" in text, text


def test_video_preview_sheet_before_the_render(page, server):
    """Preview: a few frames dreamed at a small size, in a labelled grid, before the long render."""
    page.get_by_role("tab", name="Video").click()
    page.locator("#video-samples button, #video-samples td, #video-samples .gallery-item").first.click()
    page.wait_for_selector("#video-probe:has-text('bunny.mp4: 426×240, 50 frames')")
    fill(page, "video-max-side", "96")
    fill(page, "video-iterations", "1")
    fill(page, "video-octaves", "1")
    page.locator("#video-preview-settings").get_by_text("Preview sheet").click()
    fill(page, "video-preview-frames", "0, 40")
    page.click("#video-preview-button")
    st, text = wait_state(page, "video", ["done"])
    assert st["done"] == st["total"] == "2", text
    img = page.locator("#video-sheet img")
    img.wait_for()
    page.wait_for_function("() => { const i = document.querySelector('#video-sheet img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    # Two cells of 96 px side by side, with 4 px gaps: frames 0 and 40 of the one preset.
    assert img.evaluate("i => i.naturalWidth") == 2 * 96 + 3 * 4
    sheet = next(server.work.glob("jobs/preview-*/bunny-preview.png"))
    cells = read_image(str(sheet))
    assert cells.shape[1] == 2 * 96 + 3 * 4
    assert not list(server.work.glob("jobs/preview-*/*-dream.mp4"))  # a preview renders no video


# ---------------------------------------------------------------------------------------- the API

def _live_stats(pg):
    s = pg.locator("#live-stats")
    return {k: s.get_attribute(f"data-{k}") for k in ("fps", "latency", "state")}, s.inner_text()


def test_live_tab_dreams_the_camera_records_and_stops(page, server):
    """The fake camera streams into the Live tab: dreamed frames (at the live size, changing) for
    20 s, frames/s and latency on the page, a recording that decodes, and Stop stops."""
    import cv2
    page.get_by_role("tab", name="Live").click()
    page.click("#live-camera [title='grant webcam access'] button")
    page.click("#live-camera button.capture-button")
    page.wait_for_selector("#live-stats[data-latency]", timeout=60_000)  # the first dream
    seen, fps, latency, t0 = {}, [], [], time.monotonic()
    # Record from about 5 s for about 7 s. Each is decided once, by elapsed time, not inside a
    # one-second window: on a loaded machine one pass of this loop can take longer than that.
    record_at = unrecord_at = None
    while time.monotonic() - t0 < 20:
        src = page.eval_on_selector("#live-output img", "e => e.src")
        if src not in seen:
            status_code, body = _get(src)
            assert status_code == 200
            seen[src] = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        stats, text = _live_stats(page)
        if stats["latency"] is not None:
            fps.append(float(stats["fps"]))
            latency.append(float(stats["latency"]))
        now = time.monotonic()
        if record_at is None and now - t0 > 5 and len(fps) > 3:
            page.click("#live-record")
            record_at = now
        if unrecord_at is None and record_at is not None and now - record_at > 7 \
                and page.inner_text("#live-record") == "Stop recording":
            page.click("#live-record")
            unrecord_at = now
        time.sleep(0.25)
    assert record_at is not None, f"no frames/s shown after 5 s: {fps}"
    if unrecord_at is None:  # the loop ended first: stop the recording now
        page.wait_for_function("document.querySelector('#live-record').innerText.trim() == 'Stop recording'")
        page.click("#live-record")
    frames = list(seen.values())
    assert len(frames) >= 10, f"the page showed {len(frames)} dreams in 20 s"
    assert all(f.shape == (90, 160, 3) for f in frames)  # the default live size, long side 160
    changes = [np.abs(a.astype(int) - b).mean() for a, b in zip(frames, frames[1:])]
    assert min(changes) > 0.5 and "frames/s" in text and "latency" in text
    assert np.median(fps) > 0.5 and 0 < np.median(latency) < 5, (fps, latency)
    page.wait_for_function("document.querySelector('#live-files').innerText.includes('.mp4')")
    recording = next(server.work.glob("jobs/live-*/live-*.mp4"))
    cap, n = cv2.VideoCapture(str(recording)), 0
    while cap.read()[0]:
        n += 1
    assert n >= 20  # about 7 s at 10 frames/s, each dream held for as long as it was shown
    page.click("#live-stop")
    page.wait_for_selector("#live-stats[data-state=stopped]")
    page.wait_for_selector("#live-camera [title='start recording']")  # the camera's stream stopped too
    time.sleep(2)
    assert _live_stats(page)[0]["state"] == "stopped"  # and nothing restarted it
    page.screenshot(path=str(server.work / "live_tab.png"))


def test_api_dream_image(client, server):
    out = client.predict(handle_file(str(COFFEE)), "dreamy", max_side="96", **TINY, api_name="/dream_image")
    assert read_image(out).shape == (64, 96, 3)
    # The same job again: the finished result, at once.
    t = time.monotonic()
    again = client.predict(handle_file(str(COFFEE)), "dreamy", max_side="96", **TINY, api_name="/dream_image")
    assert time.monotonic() - t < 10
    np.testing.assert_array_equal(read_image(again), read_image(out))


def test_api_zoom_loop_and_video_with_schedules(client):
    loop = client.predict(handle_file(str(COFFEE)), "", max_side="96", frames="3", zoom="0:(1.02), 2:(1.08)",
                          **TINY, api_name="/zoom_loop")
    assert loop.endswith(".gif") and open_source(loop).num_frames == 3 and read_image_size(loop) == (96, 64)
    video = client.predict(handle_file(str(BUNNY)), max_side="96", end="3", blend="0:(0.5), 2:(0.8)", **TINY,
                           api_name="/dream_video")
    src = open_source(video)
    assert video.endswith(".mp4") and src.num_frames == 3 and src.width == 96


def test_api_masked_image_keeps_the_input_where_the_mask_is_black(client, tmp_path):
    import cv2
    photo = read_image(str(COFFEE))[100:196, 200:328]  # 128 x 96, dreamed at full size
    cv2.imwrite(str(tmp_path / "cup.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    mask = np.zeros((96, 128), np.uint8)
    mask[:, :64] = 255  # dream the left half only
    cv2.imwrite(str(tmp_path / "left.png"), mask)
    out = read_image(client.predict(handle_file(str(tmp_path / "cup.png")), "dreamy", mask=handle_file(
        str(tmp_path / "left.png")), octaves="1", iterations="3", api_name="/dream_image"))
    np.testing.assert_array_equal(out[:, 64:], photo[:, 64:])
    assert np.abs(out[:, :64].astype(int) - photo[:, :64]).mean() > 5
    # Inverted: the other half is dreamed.
    inv = read_image(client.predict(handle_file(str(tmp_path / "cup.png")), "dreamy", mask=handle_file(
        str(tmp_path / "left.png")), invert_mask=True, octaves="1", iterations="3",
        api_name="/dream_image"))
    np.testing.assert_array_equal(inv[:, :64], photo[:, :64])
    assert np.abs(inv[:, 64:].astype(int) - photo[:, 64:]).mean() > 5


def test_api_mask_that_is_not_an_image_is_one_clear_error(client, tmp_path):
    (tmp_path / "mask.png").write_text("not a picture")
    with pytest.raises(Exception) as e:
        client.predict(handle_file(str(COFFEE)), mask=handle_file(str(tmp_path / "mask.png")), **TINY,
                       api_name="/dream_image")
    assert "mask" in str(e.value).lower() and "traceback" not in str(e.value).lower(), str(e.value)


@pytest.mark.parametrize("case, expect", [
    ("garbage", "cannot read notes.mp4"),
    ("empty", "is empty"),
    ("too small", "too small for layer"),
    ("bad setting", "Blend must be in [0, 1)"),
    ("bad schedule", "Step: at character"),
    ("too big", "size"),
])
def test_api_bad_input_is_a_clear_error_and_the_server_keeps_serving(client, server, tmp_path, case, expect):
    if case == "garbage":
        (tmp_path / "notes.mp4").write_text("hello")
        args, api = dict(video=handle_file(str(tmp_path / "notes.mp4"))), "/dream_video"
    elif case == "empty":
        (tmp_path / "empty.mp4").write_bytes(b"")
        args, api = dict(video=handle_file(str(tmp_path / "empty.mp4"))), "/dream_video"
    elif case == "too small":
        import cv2
        cv2.imwrite(str(tmp_path / "dot.png"), np.full((24, 24, 3), 128, np.uint8))
        args, api = dict(image=handle_file(str(tmp_path / "dot.png")), iterations="1"), "/dream_image"
    elif case == "bad setting":
        args, api = dict(video=handle_file(str(BUNNY)), blend="1"), "/dream_video"
    elif case == "bad schedule":
        args, api = dict(video=handle_file(str(BUNNY)), step="0:(0.01), 5:(1/0"), "/dream_video"
    else:
        (tmp_path / "huge.png").write_bytes(b"\0" * (3 << 20))
        args, api = dict(image=handle_file(str(tmp_path / "huge.png"))), "/dream_image"
    with pytest.raises(Exception, match=None) as e:
        client.predict(api_name=api, **args)
    assert expect.lower() in str(e.value).lower(), str(e.value)
    assert _get(server.url)[0] == 200


def test_api_cancel_stops_the_render_and_the_next_job_runs(client, server):
    before = checkpoints(server.work)
    job = client.submit(handle_file(str(BUNNY)), max_side="96", end="30", iterations="2", octaves="1",
                        api_name="/dream_video")
    folder = new_checkpoint(server.work, before)
    while len(frames_in(folder)) < 1:
        time.sleep(0.1)
    assert job.cancel()
    time.sleep(3)  # within one ascent step (a fraction of a second here), and then some
    kept = len(frames_in(folder))
    time.sleep(2)
    assert len(frames_in(folder)) == kept < 30, "the render went on after the client cancelled"
    # The device is free again: the next job does not wait for the cancelled one's frames.
    t = time.monotonic()
    client.predict(handle_file(str(COFFEE)), max_side="80", **TINY, api_name="/dream_image")
    assert time.monotonic() - t < 20


def test_serves_only_its_own_files(server, client):
    base = server.url + "gradio_api/file="
    secret = server.work.parent / "secret.txt"  # beside the work folder, in the temp dir
    secret.write_text("not for the page")
    for path in ("/etc/passwd", str(ROOT / "README.md"), str(secret), str(server.work / "jobs" / ".." / ".." / "secret.txt")):
        assert _get(base + path)[0] in (403, 404), path
    job_file = next(server.work.glob("jobs/image-*/coffee-dream.png"))
    assert _get(base + str(job_file))[0] == 200


def _request(server, method, path, host=None, origin=None, body=b"", content_type=None):
    """One real HTTP request to the server with forged Host / Origin headers; returns the status."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Host": f"127.0.0.1:{server.port}" if host is None else host}
    if origin is not None:
        headers["Origin"] = origin
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in {**headers, "Content-Length": str(len(body))}.items():
            conn.putheader(k, v)
        conn.endheaders(body or None)
        return conn.getresponse().status
    finally:
        conn.close()


def _multipart(name, data):
    boundary = "dreamvidtestboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_answers_only_its_own_host_names(server):
    """DNS rebinding: a request naming another host is refused; loopback names with the port pass."""
    p = server.port
    for host in (f"127.0.0.1:{p}", f"localhost:{p}", f"[::1]:{p}"):
        assert _request(server, "GET", "/", host=host) == 200, host
    for host in ("rebind.evil.example", f"rebind.evil.example:{p}", f"127.0.0.1:{p + 1}", "127.0.0.1", ""):
        assert _request(server, "GET", "/", host=host) == 400, host
    # the attacker's page after rebinding: its own name as Host and as Origin
    evil = f"rebind.evil.example:{p}"
    body, ctype = _multipart("x.png", (ROOT / "samples" / "coffee.jpg").read_bytes())
    assert _request(server, "POST", "/gradio_api/upload", host=evil, origin=f"http://{evil}",
                    body=body, content_type=ctype) == 400


def test_cross_origin_uploads_and_calls_are_refused(server):
    """A state-changing request from another site's page (Origin) gets 403 and stores nothing;
    the page's own origin and clients without an Origin (curl, gradio_client) pass."""
    p = server.port
    uploads = server.work / "uploads"
    before = sorted(uploads.rglob("*"))
    data = (ROOT / "samples" / "coffee.jpg").read_bytes()
    body, ctype = _multipart("coffee.jpg", data)
    for origin in ("https://evil.example", "null", f"http://127.0.0.1:{p + 1}", f"http://evil.example:{p}"):
        assert _request(server, "POST", "/gradio_api/upload", origin=origin, body=body, content_type=ctype) == 403
        join = json.dumps({"data": [], "fn_index": 0, "session_hash": "x"}).encode()
        assert _request(server, "POST", "/gradio_api/queue/join", origin=origin, body=join,
                        content_type="application/json") == 403
    assert sorted(uploads.rglob("*")) == before
    assert _request(server, "POST", "/gradio_api/upload", origin=f"http://localhost:{p}", body=body,
                    content_type=ctype) == 200
    assert _request(server, "POST", "/gradio_api/upload", body=body, content_type=ctype) == 200


def test_a_remote_host_is_served_only_when_asked_with_a_warning(monkeypatch, capsys):
    from dreamvid.app import cli, ui
    calls = []
    monkeypatch.setattr(ui, "serve", lambda *a, **kw: calls.append((a, kw)))
    assert cli.main(["ui"]) == 0
    assert calls[-1][0][:2] == ("127.0.0.1", 7860)
    assert "warning" not in capsys.readouterr().err
    assert cli.main(["ui", "--host", "0.0.0.0", "--port", "8000"]) == 0
    assert calls[-1][0][:2] == ("0.0.0.0", 8000)
    err = capsys.readouterr().err.strip().splitlines()
    assert len([l for l in err if "warning" in l]) == 1 and "anyone" in err[0]


def test_ctrl_c_cancels_the_running_job_and_stops(server, client):
    """Last: SIGINT while a video job runs -> the job stops with a consistent checkpoint, the server
    exits 0 without a traceback, and the same job resumes from the frames it kept."""
    before = checkpoints(server.work)
    job = client.submit(handle_file(str(BUNNY)), max_side="96", end="40", iterations="2", octaves="1",
                        api_name="/dream_video")
    folder = new_checkpoint(server.work, before)
    deadline = time.monotonic() + 90
    while len(frames_in(folder)) < 2:
        assert time.monotonic() < deadline and not job.done(), "no frame saved"
        time.sleep(0.2)
    code, out, err = server.stop(signal.SIGINT)
    assert code == 0, err
    assert "Traceback" not in err and "stopped" in err
    frames = frames_in(folder)
    assert [f.name for f in frames] == [f"frame_{i:06d}.png" for i in range(len(frames))]
    assert 2 <= len(frames) < 40
    assert not [n for n in os.listdir(folder) if ".tmp" in n]
    assert json.loads((folder / "manifest.json").read_text())
    # The same page values make the same job folder: the render resumes there.
    from dreamvid.app.ui import Jobs
    from dreamvid.errors import Cancelled
    jobs = Jobs(str(server.work), "cpu")
    values = dict(upload=str(BUNNY), preset="dreamy", max_side="96", end="40", iterations="2", octaves="1",
                  flow="dis")
    prepared = jobs.prepare("video", values)
    assert prepared.folder == folder.parent
    events, stop = [], threading.Event()

    def on_event(e):
        events.append(e)
        if e.kind == "frame":
            stop.set()

    with pytest.raises(Cancelled):
        prepared.call(on_event=on_event, cancel=stop)
    assert [e.text for e in events if e.kind == "message"] == [f"resuming at frame {len(frames)} of 40"]
