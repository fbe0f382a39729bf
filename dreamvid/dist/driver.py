"""The driver: starts the hub and the workers, plans the film, hands segments out (again, as new
attempts, when a worker dies or stalls), passes the events on, and encodes the output."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import deque
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import Cancelled, DreamvidError
from ..io.sinks import AudioSpec, FfmpegSink, join_chunks, output_kind
from ..pipeline.film import SegmentFilm, segment_frame
from ..pipeline.job import encode_frames, join_errors
from ..pipeline.segments import Segment, auto_segment_frames, carries, plan_segments
from ..pipeline.video import source_identity
from ..store.checkpoint import Checkpoint, describe_differences
from .failure import MAX_ATTEMPTS, STALL_S, Attempt
from .resources import worker_shape
from .run_folder import segment_finished
from .session import ClusterLost, local_cluster_lost
from .worker import remote_classes

#: How often the driver polls the workers' events (seconds).
POLL_S = 0.1
REFILL_S = 2.0  # how often a missing worker is looked for room to start


class Driver:
    def __init__(self, ray, rf, input, output, settings, video, run, vary, reporter, source, start, end,
                 workers, threads, segment_frames, warmup, fade, local_cpus, stall_s=STALL_S, own=False,
                 mask=None):
        self.ray, self.rf, self.input, self.output = ray, rf, input, output
        self.settings, self.video, self.run_options, self.vary = settings, video, run, vary
        self.mask = mask  # None, or (mask, MaskSettings, its identity) for the workers and the plan
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
        _, Worker = remote_classes(self.ray)
        # Named (dreamvid-worker-<run>-<k>, e.g. for `ray list actors`); a second thread answers pid()
        # while a segment renders. Not restarted by Ray: the driver starts a new worker instead.
        self._started += 1
        actor = Worker.options(name=f"dreamvid-worker-{self.run_id}-{self._started}", max_concurrency=2,
                               max_restarts=0, max_task_retries=0, **self.actor_options).remote(
            self.settings, self.run_options, self.vary, None if self.gpu else self.threads, self.hub,
            None if self.mask is None else self.mask[:2])
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
                self._frame(i, segment_frame(ck, i - seg.start))
        finally:
            ck.close()

    # -- plan ------------------------------------------------------------------------------

    def _plan_key(self) -> dict:
        key = {"input": source_identity(self.source, self.input), "video": self.video.to_dict(),
               "settings": self.settings.to_dict(), "weights": self.run_options.weights,
               "warmup": self.warmup, "fade": self.fade, "threads": None if self.gpu else self.threads,
               "vary": sorted(self.vary or {}), "mask": None if self.mask is None else self.mask[2]}
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
        HubClass, _ = remote_classes(self.ray)
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
            film = SegmentFilm(plan, ckpts, os.path.join(self.rf.folder, "seams"))
            if self.stream:
                self._join(film, fps, audio)
            else:
                encode_frames(film, range(self.total), self.output, fps, audio, self.run_options, self.reporter)
        finally:
            for c in ckpts:
                c.close()

    def _join(self, film: "SegmentFilm", fps, audio) -> None:
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

    def _seam_chunk(self, film: "SegmentFilm", n: int, fps) -> str:
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
            if segment_finished(folder, seg):
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
        running: Dict[object, Attempt] = {}
        stale: Dict[object, Attempt] = {}  # attempts handed to another worker, still awaited
        while pending or running:
            self._check_cancel_workers(list(running) + list(stale))
            self._refill(idle, running, stale)
            while pending and idle:
                seg, actor = pending.popleft(), idle.popleft()
                folder = self.rf.segment_folder(seg)
                ref = actor.render.remote(self.input, folder, seg.start, seg.rendered_end,
                                          seg.warmup, self.video, seg.frames, self._chunks(seg), seg.leadout)
                running[ref] = Attempt(actor, seg, self.rf.attempt(seg), folder)
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
