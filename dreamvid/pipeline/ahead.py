"""Read-ahead for the video frame loop: raw frames decoded and their flows estimated in advance.

The flows of frame t (t → t−1 and back) need the raw frames only, never a dream, so they can be
estimated while earlier frames are dreamed. :class:`Lookahead` runs a decode thread that reads the
source, prepares each raw frame (``load``: resize, to float) and submits its flows to a pool of
`workers` threads, up to `depth` frames ahead of the loop. Each worker has its own estimator (an
OpenCV DIS object is not thread-safe), built like the job's; the flow of a pair does not depend on
which worker, how many workers or how many OpenCV threads estimate it (tests/test_overlap.py), so
the pool's size never changes pixels. With overlap=False every item is made in the loop's thread
when asked for (the sequential pipeline; same pixels).

Items are ``(raw, flows)``: raw what ``load`` made of the decoded frame (the video render's: RGB
uint8 at the render's size); flows a Future of ``then(temporal.carry.Flows, raw, worker)`` for
(raw, the previous raw), at the estimator's size, or None for the first frame or without an
estimator. ``then`` runs where the flows were estimated (worker: True in a flow thread, False in
the loop); the video render's makes the pair's temporal.motion.Motion. :func:`result` waits for
one. Each frame is converted to the estimator's gray once (it is in two pairs).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, Optional, Tuple

import numpy as np

from ..temporal.carry import Flows, estimate_flows
from ..temporal.flow import FlowEstimator

Item = Tuple[Optional[np.ndarray], Optional[Future]]
_END = object()


def result(flows: Optional[Future]) -> Optional[Flows]:
    """The flows of an item (waiting for them), or None."""
    return None if flows is None else flows.result()


def _done(value) -> Future:
    f: Future = Future()
    f.set_result(value)
    return f


def _like(est: FlowEstimator) -> FlowEstimator:
    return FlowEstimator(est.method, est.preset, max_side=est.max_side)


class Lookahead:
    """Iterator of ``(raw, flows)`` items for the frames `frames` yields (see the module doc).

    frames: RGB uint8 frames in order; load: RGB uint8 -> the loop's raw frame;
    estimator: the job's (None: no flows); then: (flows, raw, worker) -> the item's flows (default:
    the flows). depth: frames prepared ahead; workers: flow threads.
    """

    def __init__(self, frames: Iterator[np.ndarray], load: Callable[[np.ndarray], np.ndarray],
                 estimator: Optional[FlowEstimator], overlap: bool = True, depth: int = 4, workers: int = 2,
                 then: Optional[Callable] = None):
        self._frames, self._load, self._est = frames, load, estimator
        self._then = then or (lambda flows, raw, worker: flows)
        self._prev: Optional[np.ndarray] = None
        self._overlap = overlap
        self._stop = threading.Event()
        self._pool = self._thread = None
        if overlap:
            local = threading.local()

            def flows(cur, prev, raw):
                est = getattr(local, "est", None)
                if est is None:
                    est = local.est = _like(estimator)
                return self._then(estimate_flows(est, cur, prev), raw, True)

            self._flow_job = flows
            if estimator is not None:
                self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="dreamvid-flow")
            self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
            self._thread = threading.Thread(target=self._decode, name="dreamvid-decode", daemon=True)
            self._thread.start()

    # -- making items ----------------------------------------------------------------------

    def _make(self, rgb: np.ndarray, submit) -> Item:
        raw = self._load(rgb)
        if self._est is None:
            return raw, None
        gray = self._est.gray(raw)  # once per frame: it is in two pairs
        prev, self._prev = self._prev, gray
        return raw, None if prev is None else submit(gray, prev, raw)

    def _decode(self) -> None:
        """The decode thread: items into the queue, then _END (or the exception that stopped it)."""
        try:
            for rgb in self._frames:
                if self._stop.is_set():
                    return
                item = self._make(rgb, lambda cur, prev, raw: self._pool.submit(self._flow_job, cur, prev, raw))
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        pass
            end = _END
        except BaseException as e:  # e.g. a decode error: raised in the loop's thread
            end = e
        while not self._stop.is_set():
            try:
                self._queue.put(end, timeout=0.1)
                return
            except queue.Full:
                pass

    # -- the iterator ------------------------------------------------------------------------

    def __iter__(self) -> "Lookahead":
        return self

    def __next__(self) -> Item:
        if not self._overlap:
            rgb = next(self._frames)  # StopIteration ends the items
            return self._make(rgb, lambda cur, prev, raw: _done(self._then(estimate_flows(self._est, cur, prev), raw,
                                                                           False)))
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # stays ended
            raise StopIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        """Stop reading ahead and drop what was prepared."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        close = getattr(self._frames, "close", None)
        if close is not None:  # a generator: its decoder goes now (no thread is running it)
            close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
