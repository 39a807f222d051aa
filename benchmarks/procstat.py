"""What a process (daphne) has used, read from the kernel: CPU time and memory.

CPU: the process's CPU-time clock (`clock_gettime` on the clock id Linux derives from a pid, the clock of
`clock_getcpuclockid(3)`): the run time of all its threads, exited ones included, in nanoseconds. Django
runs each request's sync parts in a thread made for that request, so a per-thread count would lose them,
and `/proc/PID/stat` utime + stime count in 10 ms ticks, too coarse for ten messages of a few ms. Where
the clock cannot be read, the tick count is used.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CPUCLOCK_SCHED = 2  # Linux: the process's total run time, as CLOCK_PROCESS_CPUTIME_ID is for oneself


def process_clock_id(pid: int) -> int:
    """Linux's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), what clock_getcpuclockid(pid) returns."""
    return ((~pid) << 3) | CPUCLOCK_SCHED


def ticks_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used since it started, all threads."""
    try:
        return time.clock_gettime(process_clock_id(pid))
    except OSError:
        return ticks_seconds(pid)


class CpuMeter:
    """`with CpuMeter(pid) as meter: ...` then `meter.seconds`: the process's CPU time inside the block."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.seconds = 0.0
        self._before = 0.0

    def __enter__(self) -> CpuMeter:
        self._before = cpu_seconds(self.pid)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = cpu_seconds(self.pid) - self._before


def listen_overflows() -> int | None:
    """The kernel's count of connections dropped because a listen queue was full (TcpExt ListenOverflows;
    for the whole network namespace, since boot)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(fields["ListenOverflows"]) if "ListenOverflows" in fields else None
    return None


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM (in KiB) and Threads of a process; {} once it is gone."""
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM", "Threads"}:
            values[key] = int(rest.split()[0])
    return values
