"""How many CPUs this container may use, known without importing ONNX Runtime (the service sizes
its admission with it at Lambda init, which imports no inference library)."""

from __future__ import annotations

import math
import os
from pathlib import Path


def available_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """CPUs this container may use: the cgroup CPU quota (Knative limits, Lambda), else the affinity mask.

    cgroup v2 has the quota in ``cpu.max`` (a 1500m limit is ``150000 100000``); cgroup v1, still
    the default of some Kubernetes node images, in ``cpu/cpu.cfs_quota_us`` (-1: none) over
    ``cpu/cpu.cfs_period_us``. Rounded up: a thread left idle by a fractional quota costs less
    than a page waiting for one.
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cpu_quota(cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def _cpu_quota(cgroup: Path) -> float | None:
    """The CPU quota in CPUs, or None when there is none (or no cgroup file says)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1_quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        v1_period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if v1_quota <= 0 or v1_period <= 0 else v1_quota / v1_period
    except (OSError, ValueError):
        return None
