"""The receipt arithmetic: one set of CPU kernels every miner and verifier dreams in.

A synthesis receipt is checked by dreaming a shard again and comparing it with the bundle
(``codream/receipt.py``). The optimisation is chaotic: one float ulp anywhere turns most of a
shard into other dreams within 50 steps. So the replay must run the *same kernels* as the
miner's synthesis, bit for bit, whatever x86 CPU each of them has. Left alone, torch picks its
kernels by the CPU it finds: ATen's vectorised loops by instruction set (AVX-512 where there is
one), oneDNN's convolutions by instruction set, MKL's matrix products by CPU model. Measured on
this project's machine by capping each to a lower instruction set (docs/verification.md,
"Receipts"), each of the three on its own puts nearly every image of a 256-dream shard below the
0.98 tolerance.

So codream pins all three to the AVX2 level that nearly every x86-64 CPU since 2013 has:

- ``ATEN_CPU_CAPABILITY=avx2``: ATen's AVX2 kernels (the same compiled code on any CPU that has
  AVX2; AVX-512 machines would otherwise run other code);
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's convolutions generated for AVX2 only;
- ``MKL_CBWR=COMPATIBLE``: MKL's conditional-numerical-reproducibility branch documented to give
  the same results on Intel and non-Intel CPUs (its ``AVX2`` branch holds on Intel CPUs only).

Measured here, the pinned profile costs nothing: 1,000-dream syntheses run as fast as torch's own
choice (the variables only forbid the wider kernels this machine does not have). The variables
are read when torch first runs an operation, so ``codream/kernels.py`` sets them (torch-free)
when ``codream`` is imported, before any torch work of its own; a process that ran torch operations before importing codream
may hold other kernels, which :func:`problems` detects (the instruction set torch reports, and a
canary: a few synthesis steps on seeded models whose float32 bytes are known).

What a machine without AVX2, an ARM machine or another torch build gets: :func:`problems` says
why its receipts would not replay, the miner refuses to dream for a task that requires receipts
and the verifier refuses to judge one (rather than calling honest work INVALID).
What is not measured: two *different* AVX2 CPU models (oneDNN may block its loops by cache size);
docs/verification.md says so.
"""
from __future__ import annotations

import functools
import hashlib
import os

import torch

from .distill import torch_threads
from .kernels import CAPABILITY, PROFILE
from .synthesis import SHARD_THREADS, DreamConfig, dream_batch, prepare_teachers
from .zoo import build_model

# SHA-256 of the canary's float32 bytes under the profile (torch 2.13.0 CPU build, x86-64 AVX2):
# update it with the pinned torch version (`python -c "from codream.arithmetic import canary_digest as d;
# print(d())"` prints it)
CANARY = "bb42c6fd81b04dc54769cfc400c708788b19cf05980c01dcd815b83381bf8f14"


class ArithmeticMismatch(RuntimeError):
    """This process does not run the receipt arithmetic: its receipts would not replay elsewhere,
    and its replays would call honest bundles INVALID."""


def canary_digest() -> str:
    """SHA-256 of three pixel-synthesis steps (the real ``dream_batch``, keyed noise, a shard's one
    thread) on seeded 8×8 and 28×28 teachers of the reference architectures, as float32 bytes:
    every kernel family a receipt's replay runs (convolutions forward and backward, batch norm,
    Adam, the linear head, the noise's log and cosine)."""
    parts = []
    with torch.random.fork_rng(devices=[]), torch_threads(SHARD_THREADS):
        for arch, size, width in (("digits_cnn", 8, 32), ("resnet8", 28, 8)):
            torch.manual_seed(1234)
            model = build_model({"arch": arch, "image_size": size, "in_channels": 1, "num_classes": 10,
                                 "width": width}).eval()
            cfg = DreamConfig.for_shape((1, size, size), steps=3, batch=16, seed=5)
            gen = torch.Generator().manual_seed(5)
            teachers = prepare_teachers([model], torch.device("cpu"))
            x = dream_batch(teachers, torch.arange(16) % 10, (1, size, size), [0.5], [0.25], cfg, gen,
                            torch.device("cpu"), noise_key=b"codream-canary")
            parts.append(x.detach().contiguous().numpy().tobytes())
    return hashlib.sha256(b"".join(parts)).hexdigest()


@functools.lru_cache(maxsize=1)
def _canary_ok() -> tuple[bool, str]:
    digest = canary_digest()
    return digest == CANARY, digest


def problems() -> list[str]:
    """Why this process's dreams would not replay on another verifier's machine (empty: none)."""
    out = [f"{k}={os.environ.get(k)!r} in the environment (the receipt arithmetic needs {v!r})"
           for k, v in PROFILE.items() if os.environ.get(k) != v]
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != CAPABILITY:
        out.append(f"torch runs its {cap} kernels (the receipt arithmetic needs {CAPABILITY}: this CPU lacks AVX2, "
                   "or torch ran an operation before codream was imported)")
    ok, digest = _canary_ok()
    if not ok:
        out.append(f"the arithmetic canary gives {digest[:16]}…, not {CANARY[:16]}… (another torch build or CPU "
                   "kernels: torch ran an operation before codream was imported, or this machine differs)")
    return out


def describe() -> dict:
    """The kernels this process runs, for a benchmark's JSON: the profile's variables as set, the
    instruction set torch reports, and whether the canary gives the known bytes."""
    return {"profile": {k: os.environ.get(k) for k in PROFILE},
            "torch_kernels": torch.backends.cpu.get_cpu_capability(), "canary_ok": _canary_ok()[0]}


def check(what: str) -> None:
    """Raise :class:`ArithmeticMismatch` (saying what cannot be done and why) unless this process
    runs the receipt arithmetic."""
    found = problems()
    if found:
        raise ArithmeticMismatch(f"{what}: this process does not run the receipt arithmetic "
                                 f"(codream/arithmetic.py): {'; '.join(found)}. Start it with "
                                 + " ".join(f"{k}={v}" for k, v in PROFILE.items())
                                 + " on an x86-64 CPU with AVX2 and the pinned torch, importing codream before "
                                   "any torch work")
