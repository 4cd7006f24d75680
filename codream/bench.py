"""Benchmarks. Each returns a JSON-able dict; `codream bench NAME` prints it."""
from __future__ import annotations

import os
import tempfile
import time


def bench_cid(size_mb: int = 64) -> dict:
    """CID computation throughput (unixfs-v1-2025) and a local node add/cat round trip."""
    from ipfs import cid_of_bytes

    data = os.urandom(size_mb << 20)
    t = time.perf_counter()
    cid_of_bytes(data)
    cid_s = time.perf_counter() - t
    out = {"cid_mb_per_s": round(size_mb / cid_s, 1), "cid_size_mb": size_mb}
    out.update(_bench_node_round_trip(data[: 16 << 20]))
    return out


def _bench_node_round_trip(data: bytes) -> dict:
    import subprocess
    import sys

    from ipfs import IpfsClient

    from .devnet import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as repo:
        proc = subprocess.Popen([sys.executable, "-m", "codream.cli", "ipfs", "serve", "--repo", repo,
                                 "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client = IpfsClient(f"/ip4/127.0.0.1/tcp/{port}/http")
            for _ in range(100):
                try:
                    client.version()
                    break
                except Exception:
                    time.sleep(0.1)
            t = time.perf_counter()
            cid = client.add_bytes(data)
            add_s = time.perf_counter() - t
            t = time.perf_counter()
            back = client.cat(cid)
            cat_s = time.perf_counter() - t
            assert back == data
        finally:
            proc.terminate()
            proc.wait(10)
    mb = len(data) / (1 << 20)
    return {"node_add_mb_per_s": round(mb / add_s, 1), "node_cat_verified_mb_per_s": round(mb / cat_s, 1),
            "node_payload_mb": mb}


def bench_dreams_and_verify(baseline: bool = True, verify: bool = True, baseline_steps: int = 2000,
                            n: int = 1000) -> dict:
    """The digits reference task, end to end on this CPU.

    dreams: teacher accuracy; student accuracy distilled on seeded noise, on ``n`` dreams
    and on the real training images (the verifier's recipe for all three); gap closed;
    synthesis seconds and dreams/s; the same for a faithful DeepInversion run.
    verify: seconds to score the bundle, score/synthesis ratio, 3 reruns, 1 vs 2 threads.
    """
    import torch

    from . import data as D
    from .bundle import Binding, write
    from .distill import accuracy, deterministic, distill
    from .spec import validate
    from miner.synthesis import DreamConfig, deepinversion_config, dream
    from verifier.score import load_teachers, score_bundle

    out: dict = {"dreams": {}, "verify": {}}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("CODREAM_HOME", os.path.join(tmp, "home"))
        from .teacher import train_reference

        info = train_reference("digits", tmp, progress=False)
        spec = validate(__import__("json").load(open(info["spec"])))
        spec.path = __import__("pathlib").Path(info["spec"])
        teachers = load_teachers(spec)
        train, ev = D.digits()
        evt = (torch.from_numpy(ev.x), torch.from_numpy(ev.y))

        def student_acc(images):
            with deterministic():
                st = distill(spec.student, teachers, images, spec.recipe, spec.mean, spec.std)
            return accuracy(st, evt[0], evt[1], spec.mean, spec.std)

        from .distill import noise_images

        acc_noise = student_acc(noise_images(spec.baseline["n"], spec.shape, spec.baseline["seed"]))
        acc_real = student_acc(torch.from_numpy(train.x))
        res = dream(teachers, n, 10, spec.shape, spec.mean, spec.std, DreamConfig())
        acc_dreams = student_acc(res.images)
        gap = (acc_dreams - acc_noise) / (acc_real - acc_noise)
        d = out["dreams"]
        d.update({"teacher_accuracy": info["teacher_accuracy"], "student_noise": acc_noise,
                  "student_real": acc_real, "student_dreams": acc_dreams, "n_dreams": n,
                  "gap_closed": round(gap, 4), "synthesis_seconds": round(res.stats["seconds"], 2),
                  "dreams_per_second": round(res.stats["dreams_per_second"], 2)})
        if baseline:
            base = dream(teachers, n, 10, spec.shape, spec.mean, spec.std, deepinversion_config(steps=baseline_steps))
            acc_b = student_acc(base.images)
            d["deepinversion"] = {"steps": baseline_steps, "batch": 256, "student_dreams": acc_b,
                                  "gap_closed": round((acc_b - acc_noise) / (acc_real - acc_noise), 4),
                                  "synthesis_seconds": round(base.stats["seconds"], 2),
                                  "dreams_per_second": round(base.stats["dreams_per_second"], 2)}
            d["speedup_vs_deepinversion"] = round(res.stats["dreams_per_second"] /
                                                  base.stats["dreams_per_second"], 2)
        if verify:
            bundle = os.path.join(tmp, "bundle.safetensors")
            write(bundle, res.images, Binding(31337, "0x" + "0" * 40, 0, "0x" + "0" * 40))
            score_bundle(spec, bundle, evt, teachers)  # warm the per-task noise baseline cache
            runs = [score_bundle(spec, bundle, evt, teachers, threads=2) for _ in range(3)]
            one = score_bundle(spec, bundle, evt, teachers, threads=1)
            score_bundle(spec, bundle, evt, teachers, threads=1)
            v = out["verify"]
            v.update({"score_seconds": runs[0]["seconds"], "score_bps_reruns": [r["score_bps"] for r in runs],
                      "identical_reruns": len({r["score_bps"] for r in runs}) == 1,
                      "score_to_synthesis_ratio": round(runs[0]["seconds"] / res.stats["seconds"], 3),
                      "score_bps_threads_1": one["score_bps"], "score_bps_threads_2": runs[0]["score_bps"],
                      "threads_within_tolerance": abs(one["score_bps"] - runs[0]["score_bps"])
                      <= spec.scoring["tolerance_bps"], "tolerance_bps": spec.scoring["tolerance_bps"]})
    return out
