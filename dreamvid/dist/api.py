"""One film rendered by many Ray workers: segments in parallel, one bar, one encode on the driver.

dreamvid.dist is the only package of dreamvid that imports Ray, and only when a distributed render starts (the
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
6. Any one process may die. A worker that dies (its process killed, its node's raylet lost) fails
   its task; a worker that saves no frame for ``stall_timeout`` seconds (stopped, partitioned) has
   its segment taken away. Either way the segment gets a new attempt: a checkpoint folder of its
   own holding hard links to the frames saved so far (run_folder.py), so a stalled worker that
   wakes up writes only into its old folder, which nothing reads (fencing). The next free worker
   resumes it; a replacement worker is started where the cluster has room. A segment that fails
   MAX_ATTEMPTS times stops the render in one line. The hub is restarted by Ray; events it lost
   are read back from the checkpoints. A local Ray started for the run that loses its raylet or
   GCS is started again once; any other cluster loss is one line (the same command resumes).
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

import os
from typing import Mapping, Optional

from ..config.presets import settings_from_preset
from ..config.settings import DreamSettings, MaskSettings, RunOptions, VideoSettings
from ..config.vary import Varying
from ..errors import DreamvidError, SettingError
from ..io.sinks import output_kind
from ..pipeline.events import CancelToken, EventHandler, Reporter
from ..pipeline.mask import MaskInput, open_mask
from ..pipeline.segments import DEFAULT_FADE, DEFAULT_SEGMENT_FRAMES, DEFAULT_WARMUP, check_plan_settings
from ..pipeline.video import open_film
from ..pipeline.video import report_early_end
from ..store.checkpoint import checkpoint_folder
from .driver import Driver
from .failure import STALL_S
from .run_folder import RunFolder
from .session import ClusterLost, connect, import_ray, quiet_worker_deaths


def render_distributed(input: str, output: str, settings: Optional[DreamSettings] = None,
                       video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None, *,
                       workers: Optional[int] = None, ray_address: Optional[str] = None,
                       segment_frames: Optional[int] = None, warmup: Optional[int] = None,
                       seam_fade: Optional[int] = None, threads: Optional[int] = None, vary: Optional[Mapping[str, Varying]] = None,
                       on_event: Optional[EventHandler] = None, cancel: Optional[CancelToken] = None,
                       stall_timeout: float = STALL_S, mask: Optional[MaskInput] = None,
                       mask_settings: Optional[MaskSettings] = None) -> str:
    """Dream the video `input` into `output` with `workers` Ray workers (see the module doc).

    Arguments as :func:`~dreamvid.pipeline.video.dream_video`, plus: workers (default: one per GPU
    of the cluster, else one per CPU); ray_address (None: a local Ray started for the run;
    "auto": RAY_ADDRESS; HOST:PORT); segment_frames (frames per segment at most; default: the film
    shared out so every worker gets one, at most DEFAULT_SEGMENT_FRAMES); warmup (frames dreamed
    before a segment, not kept; default DEFAULT_WARMUP); seam_fade (frames cross-faded at a seam that
    is not at a scene cut; default DEFAULT_FADE; 0 = a hard cut); threads (torch threads per CPU worker:
    on a CPU they change the last bits of the pixels, so they are part of the plan); stall_timeout
    (seconds without a newly saved frame after which a segment is handed to another worker);
    mask, mask_settings: as for dream_video (a mask path must be one every node sees).
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
    fmask = open_mask(mask, mask_settings, source, (start, end), run.max_pixels)  # checked here, read by workers
    if fmask is not None and not hasattr(mask, "shape"):
        mask = os.path.abspath(mask) if os.path.exists(mask) else mask
    shipped = None if fmask is None else (mask, mask_settings, fmask.identity())
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
                quiet_worker_deaths()
            try:
                driver = Driver(ray, rf, input, output, settings, video, run, vary, reporter, source, start, end,
                                 workers, threads, segment_frames, w, k, local_cpus, stall_timeout, own,
                                 mask=shipped)
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
