"""The per-frame loop of a video render: source → temporal carry → dream → checkpoint → encode.

Frame t starts from the raw frame plus the previous dream's residual carried along optical flow
(flow.temporal_init); the first frame gets the preset's full schedule, later frames a shorter one.
Each finished frame is quantised to uint8, saved in the checkpoint and carried *as saved*, so a
resumed render continues from exactly the pixels an uninterrupted one would have had. The output
is encoded from the checkpoint frames at the end (audio muxed), then the checkpoint is removed.
"""

from __future__ import annotations

import math
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
from tqdm import tqdm

from ..config.presets import settings_from_preset
from ..config.settings import DreamSettings, RunOptions, VideoSettings
from ..core.convert import quantize, to_unit
from ..core.imageops import resize_to_max_side
from ..engine.dreamer import Dreamer
from ..errors import DreamvidError, Interrupted
from ..io.sinks import AudioSpec, open_sink, output_kind
from ..io.sources import FrameSource, open_source
from ..store.checkpoint import Checkpoint, DamagedFrame, checkpoint_folder
from ..store.identity import input_fingerprint
from ..temporal.carry import estimate_flows, temporal_init
from ..temporal.flow import FlowEstimator


def next_schedule(settings: DreamSettings, video: VideoSettings):
    """(octaves, iterations) for frames after the first: they start from a carried dream."""
    iterations = video.next_iterations
    if iterations is None:
        iterations = max(1, math.ceil(settings.iterations * video.next_iteration_ratio))
    octaves = min(video.next_octaves or settings.octaves, settings.octaves)
    return octaves, iterations


def _source_identity(source: FrameSource, spec: str) -> dict:
    return {**input_fingerprint(spec, getattr(source, "files", None)), "frames": source.num_frames,
            "fps": str(source.fps), "size": [source.width, source.height]}


def _frame_range(source: FrameSource, video: VideoSettings, spec: str):
    if video.start >= source.num_frames:
        raise DreamvidError(f"--start {video.start} is past the end of {spec}, which has "
                            f"{source.num_frames} frames (0..{source.num_frames - 1})")
    end = source.num_frames if video.end is None else min(video.end, source.num_frames)
    return video.start, end


def dream_video(input: str, output: str, settings: Optional[DreamSettings] = None,
                video: Optional[VideoSettings] = None, run: Optional[RunOptions] = None,
                dreamer: Optional[Dreamer] = None) -> str:
    """Dream a video file, frame folder or glob into `output` (.mp4, .webm, .gif or folder/).

    Resumes from the checkpoint beside the output when the same render was stopped before.
    Returns the output path. Bad input raises DreamvidError; Ctrl-C raises errors.Interrupted
    after the checkpoint is consistent.
    """
    settings = settings or settings_from_preset()
    video = (video or VideoSettings()).validate()
    run = run or RunOptions()
    kind = output_kind(output)  # an unknown extension fails before any work
    source = open_source(input, video.fps)
    if video.fps is not None and source.is_video:
        raise DreamvidError(f"--fps sets the rate of frame folders and globs; the video {input} keeps "
                            f"its own ({source.fps} fps): leave --fps out")
    start, end = _frame_range(source, video, input)
    total = end - start
    dreamer = dreamer or Dreamer(settings, run.device, run.weights, quiet=run.quiet)
    # Everything that changes pixels (the dreamer's identity includes the device).
    identity = {"input": _source_identity(source, input), "dream": dreamer.identity, "video": video.to_dict()}

    ckpt = Checkpoint(checkpoint_folder(output, run.checkpoint_dir), identity, total)
    with ckpt:
        done = ckpt.open(fresh=run.fresh)
        # Said even with --quiet (which only hides the progress bars): a resume is news.
        if 0 < done < total:
            print(f"dreamvid: resuming at frame {start + done} of {end}", file=sys.stderr)
        elif done == total:
            print(f"dreamvid: all {total} frames are in the checkpoint; encoding", file=sys.stderr)
        if done < total:
            _render_frames(source, ckpt, dreamer, settings, video, run, start, end, done)
        height, width = ckpt.load(0).shape[:2]
        audio = None
        if run.audio and source.has_audio and kind in ("mp4", "webm"):
            audio = AudioSpec(source.path, float(start / source.fps), float(total / source.fps))
        kept = f"the {total} dreamed frames are kept in {ckpt.folder}"
        try:
            with open_sink(output, source.fps, width, height, audio=audio, quality=run.quality) as sink:
                for frame in tqdm(ckpt.frames(total), total=total, desc="encoding", unit="frame",
                                  disable=run.quiet, leave=False):
                    sink.write(frame)
        except KeyboardInterrupt:
            raise Interrupted(f"stopped while encoding {output}; {kept}: run the same command again "
                              "to encode them") from None
        except DamagedFrame:
            raise
        except DreamvidError as e:  # e.g. ffmpeg failed: keep the checkpoint, say so
            raise DreamvidError(f"{e}; {kept}: run the same command again to encode them "
                                "without dreaming again") from None
    if not run.keep_frames:
        ckpt.remove()
    return output


def _render_frames(source: FrameSource, ckpt: Checkpoint, dreamer: Dreamer, settings: DreamSettings,
                   video: VideoSettings, run: RunOptions, start: int, end: int, done: int) -> None:
    """Dream frames start+done .. end-1 into the checkpoint."""
    total = end - start
    warping = video.flow in ("dis", "farneback") and video.blend > 0
    estimator = FlowEstimator(video.flow) if warping else None
    next_octaves, next_iterations = next_schedule(settings, video)
    # The flows of frame t+1 need raw frames only: one worker thread estimates them while frame t
    # is dreamed (OpenCV and torch both release the GIL). With the dream on a GPU that takes the
    # flow off the loop's path; on a CPU that torch keeps busy it only shares the same cores
    # (bench/pipeline.py: no gain, no loss there).
    ahead = ThreadPoolExecutor(1, thread_name_prefix="dreamvid-flow") if warping else None

    def flows_of(cur, prev):
        if ahead is None or cur is None or prev is None:
            return None
        return ahead.submit(estimate_flows, estimator, cur, prev)

    def load_raw(rgb: np.ndarray) -> np.ndarray:
        if video.max_side:
            rgb = resize_to_max_side(rgb, video.max_side)
        return to_unit(rgb)

    # A resumed run needs the raw frame before the first one it dreams, and that frame's dream.
    frames = source.frames(start + done - 1 if done else start, end)
    prev_raw = prev_dream = None
    if done:
        prev_raw = load_raw(next(frames))
        prev_dream = to_unit(ckpt.load(done - 1))

    bar = tqdm(total=total, initial=done, unit="frame", desc="dreaming", disable=run.quiet,
               dynamic_ncols=True)
    k = done
    try:
        raw = load_raw(next(frames))
        flows = flows_of(raw, prev_raw)
        for k in range(done, total):
            # Decode frame k+1 and start its flows now, to run while frame k is dreamed.
            nxt = next(frames, None) if k + 1 < total else None
            nxt = None if nxt is None else load_raw(nxt)
            nxt_flows = flows_of(nxt, raw)
            carried = None
            if k > 0 and video.flow != "none":
                carried = temporal_init(raw, prev_raw, prev_dream, estimator, video.blend,
                                        flows=None if flows is None else flows.result())
                if carried.flows is not None and float(carried.mask.mean()) < video.cut_below:
                    carried = None  # a scene cut: nothing carries over, dream it like a first frame
            if carried is None:
                out = dreamer(raw, index=start + k)
            else:
                out = dreamer(carried.init, index=start + k, octaves=next_octaves, iterations=next_iterations)
            frame = quantize(out)
            ckpt.save(k, frame)
            prev_raw, prev_dream = raw, to_unit(frame)
            raw, flows = nxt, nxt_flows
            bar.update(1)
            if raw is None and k + 1 < total:
                raise StopIteration
    except KeyboardInterrupt:
        bar.close()
        k = ckpt.completed  # a frame saved just as Ctrl-C came is kept too
        raise Interrupted(f"stopped at frame {start + k} of {end}; the {k} finished frames are kept in "
                          f"{ckpt.folder}: run the same command again to resume") from None
    except StopIteration:
        raise DreamvidError(f"{source.path} ended early: decoded fewer frames than its "
                            f"{source.num_frames} announced") from None
    finally:
        if ahead is not None:
            ahead.shutdown(wait=False, cancel_futures=True)
    bar.close()
