"""Shared fixtures: free ports, a real local IPFS node process, an isolated CODREAM_HOME."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

# Under xdist (`make test`: two workers on two cores) every test process and every process a test
# starts (agents, CLI commands, devnet rounds) computes on one thread. torch's default, a thread
# per core, oversubscribes the cores as soon as two processes compute, and its OpenMP threads then
# wait on each other: two digits teachers trained side by side under load took 741 s at two
# threads each against 66 s at one. Set before torch is first imported; subprocesses inherit it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import codream  # noqa: E402,F401  (pins the receipt arithmetic before torch runs anything: codream/arithmetic.py)
import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))  # in case a plugin imported torch first

from codream.devchain import free_port  # noqa: F401,E402  (re-exported for the tests)

REPO = Path(__file__).resolve().parent.parent


class NodeProcess:
    """`codream ipfs serve` in a subprocess, restartable on the same repo and port."""

    def __init__(self, repo: Path, port: int):
        self.repo, self.port, self.proc = repo, port, None

    @property
    def api(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/http"

    def start(self) -> "NodeProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "ipfs", "serve", "--repo", str(self.repo),
             "--port", str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stdout.read().decode())
            time.sleep(0.1)
        raise RuntimeError("ipfs node did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def ipfs_node(tmp_path):
    node = NodeProcess(tmp_path / "ipfs-repo", free_port()).start()
    yield node
    node.stop()


@pytest.fixture
def codream_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    return home


def run_cli(*args: str, env: dict | None = None, input: bytes | None = None, timeout: float = 300):
    """Run the real `codream` console script; return the CompletedProcess."""
    exe = Path(sys.executable).with_name("codream")
    return subprocess.run([str(exe), *args], capture_output=True, timeout=timeout, input=input,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def reference_task(tmp_path_factory, worker_id):
    """The digits reference task trained once per test run: teacher, eval set, spec. Under xdist the
    workers share one (the first trains it under a file lock, the others read its record)."""
    from owner.teacher import train_reference

    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # xdist: the run's temp root, shared by its workers
        root = root.parent
    out, record = root / "ref-task", root / "ref-task.json"
    with FileLock(str(root / "ref-task.lock")):
        if record.exists():
            return json.loads(record.read_text())
        home = root / "ref-home"
        old = os.environ.get("CODREAM_HOME")
        os.environ["CODREAM_HOME"] = str(home)
        try:
            info = train_reference("digits", out, epochs=25, progress=False)
        finally:
            if old is None:
                os.environ.pop("CODREAM_HOME")
            else:
                os.environ["CODREAM_HOME"] = old
        record.write_text(json.dumps(info))
        return info


# The heaviest files first, so that `pytest -n 2 --dist loadfile` (make test) starts the long devnet
# rounds at once on both workers instead of meeting two of them at the end (seconds: make test's
# --durations on a quiet 2-core machine). The order is the same on every worker, as xdist requires.
HEAVY_FIRST = ["test_adversarial.py", "test_walkthrough.py", "test_rehearsal.py", "test_dapp.py",
               "test_network.py", "test_coowned_devnet.py", "test_verify.py", "test_owner_codream.py",
               "test_market.py", "test_harvest.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
