"""The hub: a small actor where workers drop their events and read the driver's cancel. Its state
is soft (the checkpoints on disk are the truth): Ray restarts it when it dies, and what it lost
is read back from the checkpoints."""

from __future__ import annotations

import os
import time

#: How often a worker asks the hub for the driver's cancel (seconds).
CANCEL_POLL_S = 0.25


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


class HubCancel:
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
