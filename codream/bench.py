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
    import socket
    import subprocess
    import sys

    from ipfs import IpfsClient

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
