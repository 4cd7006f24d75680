"""The CPU kernels codream pins for every process, before torch runs anything: the receipt
arithmetic's profile (why, what it costs and how a process is checked: ``codream/arithmetic.py``).
Torch-free, so that importing ``codream`` (which calls :func:`pin`) stays cheap."""
from __future__ import annotations

import os
import platform

PROFILE = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}
CAPABILITY = "AVX2"  # what torch.backends.cpu.get_cpu_capability() reports under the profile


def _has_avx2() -> bool:
    """Whether this is an x86-64 CPU with AVX2 (Linux's /proc/cpuinfo; elsewhere: unknown, so no).
    torch runs the ATen kernels the variable names without checking the CPU: AVX2 code on a CPU
    without it would stop the process with an illegal instruction."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return any(line.startswith("flags") and " avx2" in line for line in f)
    except OSError:
        return False


def pin() -> None:
    """Set the profile's variables in this process's environment (an operator's own value is
    kept: ``arithmetic.problems`` then says it breaks receipts). Effective only before torch's first
    operation in the process (importing torch and codream runs none); child processes inherit
    them. On a CPU without AVX2 ATen's variable is left unset (see ``_has_avx2``), and
    ``arithmetic.problems`` says that this machine cannot mine or judge receipts."""
    for key, value in PROFILE.items():
        if key != "ATEN_CPU_CAPABILITY" or _has_avx2():
            os.environ.setdefault(key, value)
