"""Joining Ray: a local cluster for the run (no dashboard), a running one, or the caller's; what to
say when that fails (unreachable, token auth); telling when a local cluster this process started
has lost its raylet or GCS."""

from __future__ import annotations

import logging
import os
import socket
from typing import Optional

from ..errors import DreamvidError, SettingError

RAY_EXTRA = "distributed rendering needs Ray: pip install 'dreamvid[ray]'"


def import_ray():
    """The ray module, or DreamvidError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise DreamvidError(RAY_EXTRA) from None
    return ray


def check_reachable(address: str) -> None:
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
        check_reachable(target)
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


def quiet_worker_deaths() -> None:
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
