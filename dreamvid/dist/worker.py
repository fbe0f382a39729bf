"""The worker actor: loads the model once, then renders segment after segment into the folders
the driver names (render_segment), sending its events to the hub."""

from __future__ import annotations

import os
import time
from typing import Dict, List

from ..errors import DreamvidError
from .hub import Hub, HubCancel


class Worker:
    """A Ray actor: loads the model once (on its first call), then renders segment after segment."""

    def __init__(self, settings, run, vary, threads, hub, mask=None):
        self.settings, self.run, self.vary, self.threads, self.hub = settings, run, vary, threads, hub
        self.mask = mask or (None, None)  # (the mask: a path every node sees, or an array; MaskSettings)
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
        check_visible(input, "input")
        return scene_cuts(open_source(input, video.fps).frames(lo, hi), video, lo)

    def render(self, input, folder, start, end, warmup, video, keep=None, chunks=None, leadout=0) -> dict:
        """Frames start … end − 1 (warm-up before, not kept); events for the first `keep` only (a
        lead-out's frames are the next segment's, which reports them). chunks: (kind, span) to
        stream those frames into chunks (render_segment); leadout: the last frames, coasted."""
        from ..pipeline.video import render_segment
        check_visible(os.path.dirname(folder), "checkpoint folder")
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
                       cancel=HubCancel(hub), chunks=chunks, leadout=leadout, mask=self.mask[0],
                       mask_settings=self.mask[1])
        return {"seconds": time.perf_counter() - t, "pid": os.getpid()}


_REMOTE: Dict[str, object] = {}


def remote_classes(ray):
    """The Hub and Worker classes as Ray actor classes (made once, when Ray is first used)."""
    if not _REMOTE:
        _REMOTE["hub"], _REMOTE["worker"] = ray.remote(Hub), ray.remote(Worker)
    return _REMOTE["hub"], _REMOTE["worker"]


def check_visible(path: str, what: str) -> None:
    if not os.path.exists(path):
        import ray
        raise DreamvidError(f"a Ray worker (node {ray.get_runtime_context().get_node_id()[:12]}) cannot see the "
                            f"{what} {path}: on a cluster, keep the input and the checkpoint (--checkpoint-dir) "
                            "on a filesystem every node mounts")
