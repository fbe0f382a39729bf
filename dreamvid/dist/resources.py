"""How many workers a cluster holds, and what each asks for."""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

from ..errors import DreamvidError, SettingError


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
