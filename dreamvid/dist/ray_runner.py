"""One film rendered by many Ray workers: segments in parallel, one bar, one encode on the driver.

The only module of dreamvid that imports Ray, and only when a distributed render starts (the
``ray`` extra: ``pip install 'dreamvid[ray]'``).

How it goes (:func:`render_distributed`):

1. The driver locks the run's checkpoint folder (``out.mp4.dreamvid/``, as a one-process render
   would), so a second driver on the same output is refused, and joins Ray: a local cluster started
   for the run (``ray.init`` with no address), a running one (``ray_address``; ``"auto"`` =
   ``RAY_ADDRESS``), or the session the caller already started.
2. Workers are Ray actors (``num_gpus`` = 1 per worker on GPU clusters, else ``num_cpus`` = torch
   threads): each loads the model once and renders segment after segment.
3. The plan (pipeline/segments.py): scene cuts, found by the workers in parallel (same flows and
   mask as the render), then runs of ``segment_frames``, each started ``warmup`` frames early. It is
   saved in ``plan.json`` in the run's folder, so a rerun uses the same plan without looking again.
4. Each segment renders with :func:`~dreamvid.pipeline.video.render_segment` into its own
   checkpoint ``segments/seg_000120-000240.dreamvid`` inside the run's folder; frames depend on
   (settings, plan, absolute frame index) only, never on the worker or the order.
5. Workers send their events (finished frames, messages) to a small hub actor that the driver
   polls; the driver's ``on_event`` sees one render: start (all frames of the film), frame (film
   index), encode, done. The hub also carries the driver's cancel to the workers, who stop within
   one ascent step with a consistent checkpoint.
6. A worker that dies (its process killed, its node lost) fails its task; the driver starts a new
   worker and gives the segment to the next free one, which resumes it from its checkpoint.
7. An .mp4/.webm output is streamed as a one-process render's is: each segment encodes its kept
   frames into chunks as it goes (store/checkpoint.py), all but the first ``fade`` (cross-faded at
   its seam) and its lead-out, which stay PNGs. When every segment is finished the driver encodes
   each seam's cross-fade (pipeline/segments.py) as a short chunk of its own and joins all chunks
   without re-encoding, audio muxed once, exact fps. Other outputs (frame folders, GIF) are
   encoded once from the segments' PNGs. Then the run's folder is removed (unless ``keep_frames``).

On a cluster the input and the checkpoint folder must be paths every node sees (a shared
filesystem: ``--checkpoint-dir``); a worker that cannot see them says so.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections import deque
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from ..config.presets import settings_from_preset
from ..config.settings import DreamSettings, RunOptions, VideoSettings
from ..config.vary import Varying
from ..core.atomic import TMP_MARK, atomic_write, make_dirs, remove_empty_dirs, remove_path
from ..errors import Cancelled, DreamvidError, SettingError
from ..io.sinks import AudioSpec, FfmpegSink, join_chunks, output_kind
from ..io.sources import open_source
from ..pipeline.events import CancelToken, EventHandler, Reporter
from ..pipeline.job import encode_frames, join_errors
from ..pipeline.segments import (DEFAULT_FADE, DEFAULT_SEGMENT_FRAMES, DEFAULT_WARMUP, Segment,
                                 auto_segment_frames, carries, check_plan_settings, crossfade, plan_segments)
from ..pipeline.video import _open as open_film
from ..pipeline.video import report_early_end
from ..pipeline.video import source_identity
from ..store.checkpoint import LOCK, MANIFEST, Checkpoint, DamagedFrame, checkpoint_folder, describe_differences, lock_folder

PLAN = "plan.json"
SEGMENTS = "segments"
ATTEMPT = ".attempt"  # segments/<name>.attempt: the number of the segment's current attempt
#: A segment whose worker died or stalled this many times stops the render (one line says so).
MAX_ATTEMPTS = 3
#: Seconds without a newly saved frame after which a segment is handed to another worker.
STALL_S = 600.0
#: How often the driver polls the workers' events, and a worker the driver's cancel (seconds).
POLL_S = 0.1
CANCEL_POLL_S = 0.25
REFILL_S = 2.0  # how often a missing worker is looked for room to start

RAY_EXTRA = "distributed rendering needs Ray: pip install 'dreamvid[ray]'"


def import_ray():
    """The ray module, or DreamvidError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise DreamvidError(RAY_EXTRA) from None
    return ray


# ------------------------------------------------------------------------------------ the run folder

class RunFolder:
    """The run's checkpoint folder, locked for the driver's lifetime (flock; the OS releases it when
    the driver dies, even by kill -9). It holds ``lock``, ``plan.json`` and ``segments/``."""

    def __init__(self, folder: str):
        self.folder = folder
        self.segments = os.path.join(folder, SEGMENTS)
        self._lock_file = None
        self._made: List[str] = []

    def __enter__(self) -> "RunFolder":
        if os.path.exists(self.folder) and not os.path.isdir(self.folder):
            raise DreamvidError(f"checkpoint path {self.folder} is a file: move it away or use --checkpoint-dir")
        try:
            self._made = make_dirs(self.folder)
        except OSError as e:
            raise DreamvidError(f"cannot create the checkpoint folder {self.folder} ({e.strerror}): "
                                "use --checkpoint-dir DIR to keep it elsewhere") from None
        self._lock_file = lock_folder(self.folder)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self._made and not self.has_frames():
            self.remove()  # a run that saved nothing leaves nothing
        self._unlock()

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def attempt(self, seg: Segment) -> int:
        """The segment's current attempt (0 until a worker stalled or died on it)."""
        try:
            with open(os.path.join(self.segments, seg.name + ATTEMPT)) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def segment_folder(self, seg: Segment, attempt: Optional[int] = None) -> str:
        """The checkpoint of the segment's current attempt (or of `attempt`)."""
        k = self.attempt(seg) if attempt is None else attempt
        return os.path.join(self.segments, seg.name + (f".a{k}" if k else "") + ".dreamvid")

    def new_attempt(self, seg: Segment) -> int:
        """Fence off the segment's current attempt: the next one gets a folder of its own holding
        hard links to the frames and chunks saved so far (manifest first, so every frame it
        counts is there), and becomes the current one. A stalled worker that wakes up writes on
        into its old folder (atomic renames replace its links, not the new folder's), which nothing
        reads any more. Returns the new attempt's number."""
        old = self.attempt(seg)
        src, k = self.segment_folder(seg, old), old + 1
        dst = self.segment_folder(seg, k)
        remove_path(dst)
        os.makedirs(dst)
        if os.path.isdir(src):
            names = os.listdir(src)
            for name in sorted(names, key=lambda n: n != MANIFEST):
                if name == LOCK or TMP_MARK in name or not os.path.isfile(os.path.join(src, name)):
                    continue
                try:
                    os.link(os.path.join(src, name), os.path.join(dst, name))
                except FileNotFoundError:  # replaced or deleted meanwhile: the manifest was linked first
                    pass
        atomic_write(os.path.join(self.segments, seg.name + ATTEMPT), str(k).encode())
        return k

    def has_frames(self) -> bool:
        """Any frame saved, by a segment or by a one-process render."""
        if not os.path.isdir(self.folder):
            return False
        if any(n.startswith("frame_") or n.startswith("chunk_") for n in os.listdir(self.folder)):
            return True
        return any(Checkpoint.recorded_done(os.path.join(self.segments, s)) > 0 for s in self._segment_names())

    def _segment_names(self) -> List[str]:
        return sorted(os.listdir(self.segments)) if os.path.isdir(self.segments) else []

    def check_not_sequential(self) -> None:
        names = os.listdir(self.folder)
        if MANIFEST in names and any(n.startswith(("frame_", "chunk_")) for n in names):
            raise DreamvidError(f"the checkpoint {self.folder} holds the frames of a one-process render: run the "
                                "same command without --workers/--ray-address to resume it, or add --fresh "
                                "to start over")

    def clear(self) -> None:
        """Discard everything but the lock (``fresh``)."""
        for name in os.listdir(self.folder):
            if name != LOCK:
                remove_path(os.path.join(self.folder, name))

    def read_plan(self) -> Optional[dict]:
        try:
            with open(os.path.join(self.folder, PLAN)) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def write_plan(self, data: dict) -> None:
        atomic_write(os.path.join(self.folder, PLAN), json.dumps(data, indent=1).encode())

    def remove(self) -> None:
        """Delete the folder (segments first, the lock last), and the parents this run made."""
        remove_path(self.segments)
        for name in os.listdir(self.folder):
            if name != LOCK:
                remove_path(os.path.join(self.folder, name))
        remove_path(os.path.join(self.folder, LOCK))
        try:
            os.rmdir(self.folder)
        except OSError:
            return
        remove_empty_dirs(self._made)


def _segment_finished(folder: str, seg: Segment) -> bool:
    """True if the segment's checkpoint holds all its frames, intact (checked, then unlocked)."""
    if Checkpoint.recorded_done(folder) < seg.rendered_end - seg.start:
        return False
    try:
        Checkpoint.open_finished(folder).close()
    except DreamvidError:
        return False
    return True


# ------------------------------------------------------------------------------------ Ray session

def _check_reachable(address: str) -> None:
    """DreamvidError now, rather than Ray retrying for minutes, if host:port does not answer."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SettingError("ray_address", address, f"'{address}' is not an address: give HOST:PORT "
                           "(e.g. 10.0.0.5:6379) or 'auto'", whole=True)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise DreamvidError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): start it with "
                            "'ray start --head' there, or check the address") from None


def connect(ray, address: Optional[str], num_cpus: Optional[int] = None) -> bool:
    """Join or start Ray; returns True if this call started the session (then shut it down after).

    address None: a local cluster for the run (`num_cpus` CPUs); "auto": RAY_ADDRESS or the
    cluster running on this machine; else HOST:PORT (or ray://HOST:PORT). A session the caller
    already started (``ray.is_initialized()``) is used as it is.
    """
    if ray.is_initialized():
        return False
    quiet = dict(log_to_driver=False, logging_level=logging.ERROR, include_dashboard=False)
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, **quiet)
        return True
    target = address
    if address == "auto" and os.environ.get("RAY_ADDRESS"):
        target = os.environ["RAY_ADDRESS"]
    if target != "auto":
        _check_reachable(target)
    try:
        if target.startswith("ray://"):
            ray.init(address=target, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(address=target, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
    except ConnectionError as e:
        where = "RAY_ADDRESS is not set and no Ray cluster runs on this machine" if target == "auto" else str(e)
        token = ("; a cluster with token auth also needs RAY_AUTH_MODE=token and its token (~/.ray/auth_token "
                 "or RAY_AUTH_TOKEN_PATH)" if os.environ.get("RAY_AUTH_MODE", "").lower() != "token" else "")
        raise DreamvidError(f"cannot reach a Ray cluster ({where.splitlines()[0]}): start one with "
                            f"'ray start --head', or give --ray-address HOST:PORT{token}") from None
    return True


class ClusterLost(Exception):
    """The Ray cluster under the driver went away (its raylet or GCS died); what is on disk stays."""


def local_cluster_lost() -> Optional[str]:
    """For the local Ray this process started: which of its processes died (e.g. 'raylet'), else None."""
    try:
        import ray._private.worker as rw
        node = getattr(rw, "_global_node", None)
        dead = node.dead_processes() if node is not None and node.head else []
    except Exception:  # noqa: BLE001 - Ray internals moved: no answer rather than a wrong one
        return None
    return ", ".join(sorted({kind for kind, _ in dead})) or None


def _quiet_worker_deaths() -> None:
    """Ray prints its own lines on the driver's stdout when a worker dies ('(raylet) A worker
    died …'); the driver reports that itself as one message event, so in a session it started
    those lines are dropped (Ray's internal printer, wrapped if present; nothing else changes)."""
    try:
        import ray._private.worker as rw
    except ImportError:  # pragma: no cover
        return
    original = getattr(rw, "print_to_stdstream", None)
    if original is None or getattr(original, "dreamvid_quiet", False):
        return

    def quiet(data, *args, **kw):
        if isinstance(data, dict) and data.get("pid") == "raylet":
            return None
        return original(data, *args, **kw)

    quiet.dreamvid_quiet = True
    rw.print_to_stdstream = quiet


# ------------------------------------------------------------------------------------ actors

class Hub:
    """Where workers drop their events and read the driver's cancel (a Ray actor, no CPU)."""

    def __init__(self):
        self.events, self.stop = [], False

    def frame(self, index, frame):
        self.events.append(("frame", index, frame))

    def message(self, text):
        self.events.append(("message", text, None))

    def drain(self):
        out, self.events = self.events, []
        return out

    def cancel(self):
        self.stop = True

    def cancelled(self):
        return self.stop

    def pid(self):
        return os.getpid()


class Worker:
    """A Ray actor: loads the model once (on its first call), then renders segment after segment."""

    def __init__(self, settings, run, vary, threads, hub):
        self.settings, self.run, self.vary, self.threads, self.hub = settings, run, vary, threads, hub
        self.dreamer, self.load_s = None, 0.0
        if threads:  # on a CPU the torch thread count is part of the plan (it changes the pixels)
            import cv2
            import torch
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)

    def ready(self) -> dict:
        import ray
        from ..pipeline.common import build_dreamer
        if self.dreamer is None:
            t = time.perf_counter()
            self.dreamer = build_dreamer(self.settings, self.run, None)
            self.load_s = time.perf_counter() - t
        return {"pid": os.getpid(), "load_s": self.load_s, "gpus": [str(g) for g in ray.get_gpu_ids()]}

    def pid(self) -> int:
        return os.getpid()

    def cuts(self, input, video, lo, hi) -> List[int]:
        from ..io.sources import open_source
        from ..pipeline.segments import scene_cuts
        _visible(input, "input")
        return scene_cuts(open_source(input, video.fps).frames(lo, hi), video, lo)

    def render(self, input, folder, start, end, warmup, video, keep=None, chunks=None, leadout=0) -> dict:
        """Frames start … end − 1 (warm-up before, not kept); events for the first `keep` only (a
        lead-out's frames are the next segment's, which reports them). chunks: (kind, span) to
        stream those frames into chunks (render_segment); leadout: the last frames, coasted."""
        from ..pipeline.video import render_segment
        _visible(os.path.dirname(folder), "checkpoint folder")
        self.ready()
        hub = self.hub

        def on_event(e):  # fire and forget: a dead hub's events are read back from the checkpoint
            if e.kind == "frame" and (keep is None or e.index < keep):
                hub.frame.remote(start + e.index, e.frame)
            elif e.kind == "message":
                hub.message.remote(f"frames {start}-{end - 1}: {e.text}")

        t = time.perf_counter()
        render_segment(input, folder, start, end, warmup, settings=self.settings, video=video,
                       run=self.run, dreamer=self.dreamer, vary=self.vary, on_event=on_event,
                       cancel=_HubCancel(hub), chunks=chunks, leadout=leadout)
        return {"seconds": time.perf_counter() - t, "pid": os.getpid()}


_REMOTE: Dict[str, object] = {}


def _remote_classes(ray):
    """The Hub and Worker classes as Ray actor classes (made once, when Ray is first used)."""
    if not _REMOTE:
        _REMOTE["hub"], _REMOTE["worker"] = ray.remote(Hub), ray.remote(Worker)
    return _REMOTE["hub"], _REMOTE["worker"]


class _HubCancel:
    """A worker's cancel token: the hub's flag, asked at most every CANCEL_POLL_S seconds."""

    def __init__(self, hub):
        self.hub, self.at, self.flag = hub, 0.0, False

    def is_set(self) -> bool:
        if not self.flag and time.monotonic() - self.at > CANCEL_POLL_S:
            import ray
            self.at = time.monotonic()
            try:
                self.flag = bool(ray.get(self.hub.cancelled.remote(), timeout=30))
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass  # the hub is restarting: the driver sends its cancel again
        return self.flag


def _visible(path: str, what: str) -> None:
    if not os.path.exists(path):
        import ray
        raise DreamvidError(f"a Ray worker (node {ray.get_runtime_context().get_node_id()[:12]}) cannot see the "
                            f"{what} {path}: on a cluster, keep the input and the checkpoint (--checkpoint-dir) "
                            "on a filesystem every node mounts")


# ------------------------------------------------------------------------------------ resources

def worker_shape(resources: Mapping[str, float], workers: Optional[int], threads: Optional[int],
                 device: str, local_cpus: Optional[int] = None) -> Tuple[int, dict, int, bool]:
    """(workers, actor options, torch threads per worker, on GPUs?) for a cluster's resources.

    GPUs (unless the device is cpu): one worker per GPU by default, each with a GPU (a share of
    one when more workers than GPUs are asked). CPUs only: one single-threaded worker per CPU by
    default, else `threads` each (default: the CPUs shared out). SettingError when the cluster
    cannot hold the workers asked for.
    """
    cpus = int(resources.get("CPU", 0)) if local_cpus is None else local_cpus
    gpus = resources.get("GPU", 0) if device != "cpu" else 0
    if device.startswith(("cuda", "mps")) and gpus == 0 and device != "mps":
        raise DreamvidError(f"--device {device}: the Ray cluster has no GPU")
    if gpus >= 1:
        n = workers or int(gpus)
        return n, {"num_gpus": min(1.0, gpus / n), "num_cpus": 1 if cpus >= n else 0}, 0, True
    if cpus < 1:
        raise DreamvidError("the Ray cluster offers no CPU and no GPU to run workers on")
    n = workers or max(1, cpus // (threads or 1))
    t = threads or max(1, cpus // n)
    if n * t > cpus:
        raise SettingError("workers", n, f"({n}) x {t} thread(s) asks for more than the {cpus} CPUs the Ray "
                           "cluster offers: ask for fewer workers", whole=False)
    return n, {"num_cpus": t}, t, False


# ------------------------------------------------------------------------------------ the driver

def render_distributed(input: str, output: str, settings: Optional[DreamSettings] = None,
                       video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None, *,
                       workers: Optional[int] = None, ray_address: Optional[str] = None,
                       segment_frames: Optional[int] = None, warmup: Optional[int] = None,
                       seam_fade: Optional[int] = None, threads: Optional[int] = None, vary: Optional[Mapping[str, Varying]] = None,
                       on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None,
                       stall_timeout: float = STALL_S) -> str:
    """Dream the video `input` into `output` with `workers` Ray workers (see the module doc).

    Arguments as :func:`~dreamvid.pipeline.video.dream_video`, plus: workers (default: one per GPU
    of the cluster, else one per CPU); ray_address (None: a local Ray started for the run;
    "auto": RAY_ADDRESS; HOST:PORT); segment_frames (frames per segment at most; default: the film
    shared out so every worker gets one, at most DEFAULT_SEGMENT_FRAMES); warmup (frames dreamed
    before a segment, not kept; default DEFAULT_WARMUP); seam_fade (frames cross-faded at a seam that
    is not at a scene cut; default DEFAULT_FADE; 0 = a hard cut); threads (torch threads per CPU worker:
    on a CPU they change the last bits of the pixels, so they are part of the plan); stall_timeout
    (seconds without a newly saved frame after which a segment is handed to another worker).
    A Ray session already started by the caller is used as it is (and left running).
    Returns `output`. Bad input raises DreamvidError; a stop raises Cancelled (rerun resumes).
    """
    video = (video or VideoSettings()).validate()
    run = (run or RunOptions()).validate()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise SettingError("workers", workers, "must be at least 1")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise SettingError("threads", threads, "must be at least 1")
    w = DEFAULT_WARMUP if warmup is None else warmup
    k = DEFAULT_FADE if seam_fade is None else seam_fade
    check_plan_settings(DEFAULT_SEGMENT_FRAMES if segment_frames is None else segment_frames, w, k)
    output_kind(output)
    ray = import_ray()
    settings = (settings or settings_from_preset()).validate()
    source, start, end = open_film(input, video, run.max_pixels)
    reporter = Reporter(on_event, cancel)
    report_early_end(source, start=start, end=end, reporter=reporter)
    input = os.path.abspath(input) if os.path.exists(input) else input
    with RunFolder(checkpoint_folder(output, run.checkpoint_dir)) as rf:
        if run.fresh:
            rf.clear()
        rf.check_not_sequential()
        local_cpus = None
        if ray_address is None and not ray.is_initialized():
            local_cpus = max(os.cpu_count() or 1, (workers or 1) * (threads or 1))
        for restart in range(2):
            own = connect(ray, ray_address, local_cpus)
            if own:
                _quiet_worker_deaths()
            try:
                driver = _Driver(ray, rf, input, output, settings, video, run, vary, reporter, source, start, end,
                                 workers, threads, segment_frames, w, k, local_cpus, stall_timeout, own)
                return driver.run()
            except ClusterLost as e:
                where = f"the finished frames are kept in {rf.segments}"
                if not (own and ray_address is None) or restart:
                    raise DreamvidError(f"the Ray cluster was lost ({e}); {where}: run the same command again "
                                        "to resume") from None
                reporter.message(f"the local Ray cluster started for this render was lost ({e}); starting a "
                                 "new one, which resumes from the checkpoints")
            finally:
                if own:
                    ray.shutdown()


class _Driver:
    def __init__(self, ray, rf, input, output, settings, video, run, vary, reporter, source, start, end,
                 workers, threads, segment_frames, warmup, fade, local_cpus, stall_s=STALL_S, own=False):
        self.ray, self.rf, self.input, self.output = ray, rf, input, output
        self.settings, self.video, self.run_options, self.vary = settings, video, run, vary
        self.reporter, self.source, self.start, self.end = reporter, source, start, end
        self.total = end - start
        self.segment_frames, self.warmup, self.fade = segment_frames, warmup, fade
        self.n, self.actor_options, self.threads, self.gpu = worker_shape(
            ray.cluster_resources(), workers, threads, run.device, local_cpus)
        self.hub, self._hub_lost = None, False
        self.stall_s, self.own = stall_s, own
        self.actors: List[object] = []
        self.run_id, self._started = uuid.uuid4().hex[:8], 0
        self.reported: set = set()
        kind = output_kind(output)
        # mp4/webm outputs are streamed: segments encode chunks, the driver joins them.
        self.stream = kind if kind in ("mp4", "webm") and run.chunk_frames else None

    def _chunks(self, seg: Segment) -> Optional[Tuple[str, range]]:
        """What a segment streams: its kept frames but the cross-faded first ones (0 = seg.start)."""
        return (self.stream, range(seg.fade, seg.frames)) if self.stream else None

    # -- workers ---------------------------------------------------------------------------

    def _new_worker(self):
        _, Worker = _remote_classes(self.ray)
        # Named (dreamvid-worker-<run>-<k>, e.g. for `ray list actors`); a second thread answers pid()
        # while a segment renders. Not restarted by Ray: the driver starts a new worker instead.
        self._started += 1
        actor = Worker.options(name=f"dreamvid-worker-{self.run_id}-{self._started}", max_concurrency=2,
                               max_restarts=0, max_task_retries=0, **self.actor_options).remote(
            self.settings, self.run_options, self.vary, None if self.gpu else self.threads, self.hub)
        self.actors.append(actor)
        return actor

    def _kill_all(self) -> None:
        for a in self.actors + ([self.hub] if self.hub is not None else []):
            try:
                self.ray.kill(a)
            except Exception:  # already gone
                pass
        self.actors, self.hub = [], None

    # -- events ----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Pass the hub's events on. A hub that died is restarted by Ray (its state is soft: the
        events it lost are read back from the checkpoints when their segment finishes)."""
        try:
            events = self.ray.get(self.hub.drain.remote(), timeout=30)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.GetTimeoutError):
            if not self._hub_lost:
                self._hub_lost = True
                self.reporter.message("the progress hub died; Ray restarts it, and the frames it did not "
                                      "pass on are read from the checkpoints")
            return
        self._hub_lost = False
        for kind, a, b in events:
            if kind == "frame":
                self._frame(a, b)
            else:
                self.reporter.message(a)

    def _frame(self, index: int, frame) -> None:
        if index in self.reported:
            return
        self.reported.add(index)
        self.reporter.emit("frame", index=index - self.start, total=self.total, frame=frame)

    def _reconcile(self, seg: Segment) -> None:
        """Frame events a dead worker never sent (saved just before it died): read from disk."""
        missing = [i for i in range(seg.start, seg.end) if i not in self.reported]
        if not missing:
            return
        ck = Checkpoint.open_finished(self.rf.segment_folder(seg))
        try:
            for i in missing:
                self._frame(i, _segment_frame(ck, i - seg.start))
        finally:
            ck.close()

    # -- plan ------------------------------------------------------------------------------

    def _plan_key(self) -> dict:
        key = {"input": source_identity(self.source, self.input), "video": self.video.to_dict(),
               "settings": self.settings.to_dict(), "weights": self.run_options.weights,
               "warmup": self.warmup, "fade": self.fade, "threads": None if self.gpu else self.threads,
               "vary": sorted(self.vary or {})}
        if self.stream:  # the segments' chunks are the output's: their format is part of the plan
            key["stream"] = {"kind": self.stream, "chunk_frames": self.run_options.chunk_frames,
                             "quality": self.run_options.quality}
        return json.loads(json.dumps(key))

    def _plan(self, idle: Sequence[object]) -> List[Segment]:
        key = self._plan_key()
        old = self.rf.read_plan()
        if old is not None:
            same = old.get("key") == key and (self.segment_frames is None
                                              or old.get("segment_frames") == self.segment_frames)
            if same:
                return [Segment(**s) for s in old["segments"]]
            if self.rf.has_frames():
                diff = describe_differences(old.get("key") or {}, key)
                if self.segment_frames is not None and old.get("segment_frames") != self.segment_frames:
                    diff = "; ".join(filter(None, [f"segment_frames was {old.get('segment_frames')}, "
                                                   f"now {self.segment_frames}", diff]))
                raise DreamvidError(f"the checkpoint {self.rf.folder} is from a different distributed run "
                                    f"({diff}): run the same command as before to resume it, or add --fresh "
                                    "to start over")
            self.rf.clear()
        cuts: List[int] = []
        if carries(self.video):
            # The workers look for scene cuts in parallel, one stretch each (overlapping by a frame).
            edges = [self.start + round(i * self.total / len(idle)) for i in range(len(idle) + 1)]
            refs = [a.cuts.remote(self.input, self.video, lo, min(hi + 1, self.end))
                    for a, lo, hi in zip(idle, edges, edges[1:]) if hi > lo]
            for found in self._get_all(refs):
                cuts.extend(found)
        f = self.segment_frames or auto_segment_frames(self.total, self.n)
        plan = plan_segments(self.start, self.end, cuts, f, self.warmup, carries(self.video), self.fade)
        self.rf.write_plan({"key": key, "segment_frames": f, "cuts": sorted(cuts),
                            "segments": [s.to_dict() for s in plan]})
        return plan

    def _get_all(self, refs):
        """ray.get of several refs, polling events and the cancel token meanwhile."""
        pending = list(refs)
        while True:
            ready, pending_now = self.ray.wait(pending, num_returns=len(pending), timeout=POLL_S)
            if not pending_now:
                return [self._result(r) for r in refs]
            self._check_cancel()
            pending = pending_now + ready

    def _result(self, ref):
        try:
            return self.ray.get(ref)
        except (self.ray.exceptions.RayActorError, self.ray.exceptions.WorkerCrashedError):
            raise DreamvidError("a Ray worker died while looking for scene cuts: run the same command "
                                "again") from None
        except self.ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            raise (cause if isinstance(cause, BaseException) else e) from None

    def _check_cancel(self) -> None:
        if self.reporter.cancelled:
            raise Cancelled("stopped")

    # -- the render ------------------------------------------------------------------------

    def run(self) -> str:
        HubClass, _ = _remote_classes(self.ray)
        # On the driver's node (soft: elsewhere if it must), restarted by Ray when it dies.
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        here = NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=True)
        self.hub = HubClass.options(num_cpus=0, name=f"dreamvid-hub-{self.run_id}", max_restarts=-1,
                                    max_task_retries=0, scheduling_strategy=here).remote()
        try:
            for _ in range(self.n):
                self._new_worker()
            plan = None
            plan = self._plan(self.actors)
            self._render(plan)
        except Cancelled:
            done = sum(Checkpoint.recorded_done(self.rf.segment_folder(seg)) for seg in plan or ())
            raise Cancelled(f"stopped; the {done} finished frames are kept in {self.rf.segments}: run the "
                            "same command again to resume") from None
        finally:
            self._kill_all()
        self._encode(plan)
        if not self.run_options.keep_frames:
            self.rf.remove()
        self.reporter.emit("done", output=self.output)
        return self.output

    def _encode(self, plan: List[Segment]) -> None:
        """The output from the segments' checkpoints, seams cross-faded, audio of the whole range."""
        ckpts: List[Checkpoint] = []
        try:
            for seg in plan:
                ckpts.append(Checkpoint.open_finished(self.rf.segment_folder(seg)))
            fps, audio = self.source.fps, None
            if self.run_options.audio and self.source.has_audio:
                audio = AudioSpec(self.source.path, float(self.start / fps), float(self.total / fps))
            film = _Film(plan, ckpts, os.path.join(self.rf.folder, "seams"))
            if self.stream:
                self._join(film, fps, audio)
            else:
                encode_frames(film, range(self.total), self.output, fps, audio, self.run_options, self.reporter)
        finally:
            for c in ckpts:
                c.close()

    def _join(self, film: "_Film", fps, audio) -> None:
        """The output from the segments' chunks and one short chunk per cross-faded seam, joined
        without re-encoding (the driver encodes only the seams' frames)."""
        parts = []
        with join_errors(self.output, f"the dreamed frames are kept in {self.rf.folder}"):
            for n, (seg, ck) in enumerate(zip(film.plan, film.ckpts)):
                if seg.fade:
                    parts.append(self._seam_chunk(film, n, fps))
                parts += [ck.chunk_path(c) for c in range(ck.chunks)]
                self.reporter.check()
            join_chunks(parts, self.output, self.total, fps, audio)
            self.reporter.emit("encode", index=self.total, total=self.total)

    def _seam_chunk(self, film: "_Film", n: int, fps) -> str:
        """Segment n's cross-faded first frames encoded as a chunk (made once: it is written under
        a temporary name and renamed, and a rerun reuses it)."""
        seg = film.plan[n]
        path = os.path.join(film.scratch, f"fade_{seg.start:06d}.{self.stream}")
        if os.path.exists(path):
            return path
        os.makedirs(film.scratch, exist_ok=True)
        first = seg.start - film.first
        frames = [film.frame(first + k) for k in range(seg.fade)]
        height, width = frames[0].shape[:2]
        with FfmpegSink(path, self.stream, fps, width, height, quality=self.run_options.quality, chunk=True) as sink:
            for f in frames:
                sink.write(f)
        return path

    def _render(self, plan: List[Segment]) -> None:
        ray = self.ray
        done_frames, todo = 0, []
        for seg in plan:
            folder = self.rf.segment_folder(seg)
            if _segment_finished(folder, seg):
                done_frames += seg.frames
                self.reported.update(range(seg.start, seg.end))
            else:
                done = min(Checkpoint.recorded_done(folder), seg.frames)
                done_frames += done
                self.reported.update(range(seg.start, seg.start + done))
                todo.append(seg)
        if done_frames:
            self.reporter.message(f"resuming: {done_frames} of {self.total} frames are done "
                                  f"({len(plan) - len(todo)} of {len(plan)} segments finished)")
        what = f"{self.threads} CPU thread{'s' if self.threads > 1 else ''}" if not self.gpu else "1 GPU"
        self.reporter.message(f"rendering {self.total} frames in {len(plan)} segments on {self.n} Ray "
                              f"worker{'s' if self.n > 1 else ''} ({what} each)")
        self.reporter.emit("start", total=self.total, resumed_at=done_frames, output=self.output)
        # Longest work first: the last segments to finish are then the short ones.
        pending = deque(sorted(todo, key=lambda s: (-(s.frames + s.warmup), s.start)))
        os.makedirs(self.rf.segments, exist_ok=True)
        self._attempts: Dict[int, int] = {}
        self._refilled = time.monotonic()
        idle = deque(self.actors)
        running: Dict[object, _Attempt] = {}
        stale: Dict[object, _Attempt] = {}  # attempts handed to another worker, still awaited
        while pending or running:
            self._check_cancel_workers(list(running) + list(stale))
            self._refill(idle, running, stale)
            while pending and idle:
                seg, actor = pending.popleft(), idle.popleft()
                folder = self.rf.segment_folder(seg)
                ref = actor.render.remote(self.input, folder, seg.start, seg.rendered_end,
                                          seg.warmup, self.video, seg.frames, self._chunks(seg), seg.leadout)
                running[ref] = _Attempt(actor, seg, self.rf.attempt(seg), folder)
            ready, _ = ray.wait(list(running) + list(stale), num_returns=1, timeout=POLL_S)
            self._pump()
            for ref in ready:
                if ref in stale:  # a stalled worker woke and finished: its folder is fenced off
                    att = stale.pop(ref)
                    try:
                        ray.get(ref)
                        idle.append(att.actor)
                    except Exception:  # noqa: BLE001 - whatever it did, nothing reads its folder
                        self._forget(att.actor)
                    continue
                att = running.pop(ref)
                seg = att.seg
                try:
                    ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
                    self._check_cluster()
                    self._retry(seg, f"a worker died while rendering frames {seg.start}-{seg.end - 1}", e)
                    self._forget(att.actor)
                    pending.appendleft(seg)
                    continue
                except ray.exceptions.RayTaskError as e:
                    cause = getattr(e, "cause", None)
                    raise (cause if isinstance(cause, BaseException) else e) from None
                self._pump()
                self._reconcile(seg)
                idle.append(att.actor)
            for ref, att in list(running.items()):
                if att.stalled(self.stall_s):
                    running.pop(ref)
                    stale[ref] = att
                    self._retry(att.seg, f"the worker rendering frames {att.seg.start}-{att.seg.end - 1} saved "
                                f"nothing for {self.stall_s:.0f} s", None)
                    pending.appendleft(att.seg)

    def _check_cluster(self) -> None:
        """ClusterLost when the local Ray this driver started has lost a process (its raylet, its
        GCS), or when the cluster no longer answers."""
        if self.own:
            dead = local_cluster_lost()
            if dead:
                raise ClusterLost(f"its {dead} died")
        try:
            self.ray.get(self.hub.pid.remote(), timeout=60)
        except (self.ray.exceptions.GetTimeoutError, self.ray.exceptions.RaySystemError) as e:
            raise ClusterLost(str(e).splitlines()[0][:200]) from None
        except self.ray.exceptions.RayActorError:
            pass  # the hub restarting: the cluster is there

    def _retry(self, seg: Segment, what: str, error) -> None:
        """Count a failed attempt; a new attempt (its own folder, resuming from the frames saved so
        far) or, after MAX_ATTEMPTS, one line that stops the render."""
        n = self._attempts[seg.start] = self._attempts.get(seg.start, 0) + 1
        if n >= MAX_ATTEMPTS:
            why = f" ({str(error).splitlines()[0][:200]})" if error is not None else ""
            raise DreamvidError(f"frames {seg.start}-{seg.end - 1} failed {n} times: {what}{why}; the finished "
                                "frames are kept: run the same command again to resume") from None
        k = self.rf.new_attempt(seg)
        self.reporter.message(f"{what}; another worker resumes them from their checkpoint (attempt {k + 1})")

    def _refill(self, idle, running, stale) -> None:
        """Start workers while fewer than asked for are alive and the cluster has room (a lost
        node's resources are gone: the render goes on with the workers that are left). With no
        worker left at all, one is started and waits for room."""
        alive = len(idle) + len(running) + len(stale)
        if alive >= self.n or time.monotonic() - self._refilled < REFILL_S and alive:
            return
        self._refilled = time.monotonic()
        free = self.ray.available_resources()
        room = (free.get("CPU", 0) >= self.actor_options.get("num_cpus", 0)
                and free.get("GPU", 0) >= self.actor_options.get("num_gpus", 0))
        if room or not alive:
            idle.append(self._new_worker())

    def _forget(self, actor) -> None:
        try:
            self.ray.kill(actor)
        except Exception:
            pass
        self.actors = [a for a in self.actors if a is not actor]

    def _check_cancel_workers(self, running) -> None:
        if not self.reporter.cancelled:
            return
        deadline = time.monotonic() + 120
        refs = list(running)
        while refs and time.monotonic() < deadline:  # each worker stops within one ascent step
            self.hub.cancel.remote()  # again each poll: a restarted hub has forgotten it
            _, refs = self.ray.wait(refs, num_returns=len(refs), timeout=POLL_S)
            self._pump()
        raise Cancelled("stopped")


class _Attempt:
    """One segment given to one worker: which attempt, its folder, and when it last saved a frame."""

    def __init__(self, actor, seg: Segment, attempt: int, folder: str):
        self.actor, self.seg, self.attempt, self.folder = actor, seg, attempt, folder
        self.done, self.at, self.looked = Checkpoint.recorded_done(folder), time.monotonic(), time.monotonic()

    def stalled(self, limit: float) -> bool:
        """True when no frame was saved for `limit` seconds (the manifest is read once a second)."""
        now = time.monotonic()
        if now - self.looked < 1.0:
            return False
        self.looked = now
        done = Checkpoint.recorded_done(self.folder)
        if done != self.done:
            self.done, self.at = done, now
        return now - self.at > limit


def _segment_frame(ck: Checkpoint, k: int):
    """Frame k of a finished segment checkpoint: its PNG, or decoded from the chunk holding it
    (a streamed segment keeps PNGs only of the frames it did not encode)."""
    frame = ck.load(k)
    if frame is not None or not ck.chunk_frames:
        return frame
    for c in range(ck.chunks):
        span = ck.chunk_range(c)
        if k in span:
            return next(open_source(ck.chunk_path(c)).frames(k - span.start, k - span.start + 1), None)
    return None


class _Film:
    """The film's frames read from finished segment checkpoints, each seam that is not exact
    cross-faded from the previous segment's lead-out (what encode_frames reads)."""

    def __init__(self, plan: Sequence[Segment], ckpts: Sequence[Checkpoint], scratch: str):
        self.plan, self.ckpts, self.scratch = list(plan), list(ckpts), scratch
        self.folder = os.path.dirname(ckpts[0].folder)
        self.first = plan[0].start

    def _locate(self, p: int) -> Tuple[int, int]:
        i = p + self.first
        for n, seg in enumerate(self.plan):
            if seg.start <= i < seg.end:
                return n, i - seg.start
        raise IndexError(p)

    def _load(self, n: int, k: int):
        frame = self.ckpts[n].load(k)
        if frame is None:
            raise DamagedFrame(f"checkpoint frame {self.ckpts[n].frame_path(k)} is damaged: run the same "
                               "command again to redo it")
        return frame

    def frame(self, p: int):
        n, k = self._locate(p)
        seg = self.plan[n]
        b = self._load(n, k)
        if k >= seg.fade:
            return b
        a = self._load(n - 1, self.plan[n - 1].frames + k)  # the previous segment's lead-out
        return crossfade(a, b, k, seg.fade)

    def frames(self, order):
        for p in order:
            yield self.frame(p)

    def frame_path(self, p: int) -> str:
        """A PNG of frame p (folder outputs link them): the checkpoint's, or a cross-faded one."""
        n, k = self._locate(p)
        if k >= self.plan[n].fade:
            return self.ckpts[n].frame_path(k)
        import cv2
        os.makedirs(self.scratch, exist_ok=True)
        path = os.path.join(self.scratch, f"frame_{p:06d}.png")
        if not cv2.imwrite(path, self.frame(p)[..., ::-1]):
            raise DreamvidError(f"could not write {path}")
        return path
