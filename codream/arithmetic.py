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
import platform

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
def digest() -> str:
    """This process's canary digest (computed once): the name of the arithmetic it dreams in."""
    return canary_digest()


def problems(expected: str | None = None) -> list[str]:
    """Why this process's dreams would not replay in the arithmetic ``expected`` (a task's
    ``scoring.receipt.arithmetic``; None: the reference, :data:`CANARY`). Empty: none."""
    out = [f"{k}={os.environ.get(k)!r} in the environment (the receipt arithmetic needs {v!r})"
           for k, v in PROFILE.items() if os.environ.get(k) != v]
    cap = torch.backends.cpu.get_cpu_capability()
    if cap != CAPABILITY:
        out.append(f"torch runs its {cap} kernels (the receipt arithmetic needs {CAPABILITY}: this CPU lacks AVX2, "
                   "or torch ran an operation before codream was imported)")
    want, mine = expected or CANARY, digest()
    if mine != want:
        whose = "the task's (scoring.receipt.arithmetic)" if expected else "the reference arithmetic's"
        out.append(f"this machine's arithmetic canary is {mine[:16]}…, not {whose} {want[:16]}… (another CPU model "
                   "or torch build, or torch ran an operation before codream was imported: under the same pinned "
                   "kernels two CPU models can still round differently, docs/verification.md, \"Receipts\")")
    return out


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; elsewhere what platform says)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(expected: str | None = None) -> dict:
    """The kernels this process runs, for a benchmark's JSON and `codream arithmetic`: the profile's
    variables as set, the instruction set torch reports, the canary digest and whether it is
    ``expected``'s (None: the reference :data:`CANARY`)."""
    return {"cpu": cpu_model(), "profile": {k: os.environ.get(k) for k in PROFILE},
            "torch_kernels": torch.backends.cpu.get_cpu_capability(), "canary": digest(),
            "canary_ok": digest() == (expected or CANARY)}


def check(what: str, expected: str | None = None) -> None:
    """Raise :class:`ArithmeticMismatch` (saying what cannot be done and why) unless this process
    runs the receipt arithmetic ``expected`` (a task's; None: the reference)."""
    found = problems(expected)
    if found:
        raise ArithmeticMismatch(f"{what}: this process does not run the receipt arithmetic "
                                 f"(codream/arithmetic.py): {'; '.join(found)}. Start it with "
                                 + " ".join(f"{k}={v}" for k, v in PROFILE.items())
                                 + " on an x86-64 CPU with AVX2 and the pinned torch, importing codream before "
                                   "any torch work, on a CPU of the kind the task's owner named")


def stamp(raw: dict) -> dict:
    """A task spec (raw dict) that requires receipts, with this machine's arithmetic written into
    ``scoring.receipt.arithmetic`` (what an owner's ``codream teacher train`` does): its miners and
    verifiers must run the same. Left as it is when receipts are not required, when it already
    names one, or when this process does not run the pinned profile (its digest would name no
    arithmetic another machine can run)."""
    rec = raw.get("scoring", {}).get("receipt", {})
    if rec.get("required") and not rec.get("arithmetic") and not problems(digest()):
        rec["arithmetic"] = digest()
    return raw


def families() -> dict:
    """Digests of each kernel family the canary runs, one by one, at the canary's shapes (a
    diagnosis: two machines whose canaries differ compare these to see which family rounds
    differently): MKL's matrix products, oneDNN's and ATen's own convolutions forward and
    backward, ATen's vectorised elementwise maths, batch norm and Adam."""
    import torch.nn.functional as F

    def h(t: torch.Tensor) -> str:
        return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]

    out = {}
    with torch.random.fork_rng(devices=[]), torch_threads(SHARD_THREADS):
        g = torch.Generator().manual_seed(0)

        def r(*shape):
            return torch.randn(*shape, generator=g)
        out["gemm_mkl"] = h(r(16, 512) @ r(512, 10))
        out["gemm_mkl_large"] = h(r(256, 576) @ r(576, 64))
        x = r(4096)
        for name, fn in (("log", lambda v: torch.log(v.abs() + 0.1)), ("cos", lambda v: torch.cos(3 * v)),
                         ("exp", torch.exp), ("sqrt", lambda v: torch.sqrt(v.abs())), ("tanh", torch.tanh),
                         ("sum", lambda v: v.sum()), ("rsqrt", lambda v: torch.rsqrt(v.abs() + 0.1))):
            out[f"aten_{name}"] = h(fn(x))
        prev = torch.backends.mkldnn.enabled
        try:
            for onednn in (True, False):
                torch.backends.mkldnn.enabled = onednn
                for tag, (n, c, k, size) in (("8px", (16, 32, 32, 8)), ("28px", (16, 8, 16, 28)),
                                             ("28px_in", (16, 1, 8, 28))):
                    inp, w = r(n, c, size, size).requires_grad_(), r(k, c, 3, 3).requires_grad_()
                    y = F.conv2d(inp, w, padding=1)
                    y.square().sum().backward()
                    lib = "onednn" if onednn else "aten"
                    out[f"conv_{lib}_{tag}"] = h(torch.cat([y.flatten(), inp.grad.flatten(), w.grad.flatten()]))
        finally:
            torch.backends.mkldnn.enabled = prev
        bx = r(16, 16, 14, 14).requires_grad_()
        y = F.batch_norm(bx, None, None, training=True)
        y.square().sum().backward()
        out["batch_norm"] = h(torch.cat([y.flatten(), bx.grad.flatten()]))
        p = r(1000).requires_grad_()
        opt = torch.optim.Adam([p], lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            (p.square().sum() + p.sin().sum()).backward()
            opt.step()
        out["adam"] = h(p)
    return out


if __name__ == "__main__":  # `python -m codream.arithmetic`: this machine's arithmetic, family by family
    import json

    print(json.dumps({**describe(), "families": families()}, indent=1))
