"""Scoring and mining on Ray (issue 27): a real local Ray cluster (2 CPUs), started once for the module.

Scores from Ray workers are bit-identical to in-process scores; a worker that dies mid-job is
retried and its result is the same; driven through the verifier agent on a devnet (slow), a
killed worker's bundle is committed once per seat. A bundle mined on Ray (its shards on 1 or 2
workers, a killed worker's shard retried) is the same bytes as one mined in process. `ray` is not
imported without the flag."""
from __future__ import annotations

import functools
import os
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from codream import bundle, receipt as receipts, spec as specmod
from codream.bundle import Binding
from codream.evalset import load_eval_set
from codream.protocol import Phase, judging_seed, recipe_seed
from codream.teachers import load_teachers
from miner.methods import synthesize, synthesize_new
from miner.ray_backend import RayBackend as MinerRayBackend
from codream.synthesis import dream_shard
from verifier.ray_backend import RayBackend
from verifier.score import BundleJob, StaticIndex, TaskInputs, clear_memo, result_of, score

ray = pytest.importorskip("ray")

DREAMS = Path(__file__).parent / "data" / "dreams-digits.safetensors"
REF = Binding(31337, "0x" + "ab" * 20, 1, "0x" + "cd" * 20)
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray cluster for the module; its workers get their own CODREAM_HOME (content cache)."""
    home = tmp_path_factory.mktemp("ray-home")
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"CODREAM_HOME": str(home), "PYTHONPATH": str(REPO)}})
    print(f"ray.init: {time.perf_counter() - t0:.1f} s")
    yield
    ray.shutdown()


def without_receipts(reference_task, where: Path) -> Path:
    """A copy of the reference task whose spec does not require synthesis receipts: these tests are
    about Ray, and their bundles are fixtures or bare shards (tests/test_receipt.py: receipts)."""
    shutil.copytree(Path(reference_task["spec"]).parent, where)
    spec = receipts.requiring(specmod.load(where / "spec.json"), False)
    (where / "spec.json").write_text(json.dumps(spec.raw))
    return where / "spec.json"


@pytest.fixture(scope="module")
def inputs(reference_task):
    spec = receipts.requiring(specmod.load(reference_task["spec"]), False)  # a fixture bundle, no receipt
    ev = load_eval_set(reference_task["eval_set"], spec)
    images = load_file(str(DREAMS))["c"]  # 100 honest dreams: a VALID bundle, quick to distil
    task = TaskInputs(spec, ev, StaticIndex([]), threads=1)
    return task, BundleJob(data=bundle.to_bytes(images, REF), binding=REF, seed=1234), load_teachers(spec)


def crash_once(marker: str, task, job):
    """The job, except that its first attempt kills its worker process (as an OOM kill would)."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return score(task, job)


def test_ray_is_not_imported_without_the_flag():
    code = "import sys, cli.verifier_cmds, verifier.agent; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.slow  # ~60 s here: three distillations, each worker computes the task's noise baseline once
def test_worker_scores_are_bit_identical_and_a_killed_worker_is_retried(cluster, inputs, tmp_path):
    task, job, teachers = inputs
    clear_memo()
    here = score(task, job, teachers=teachers)
    assert here["verdict"] == "VALID" and here["score"] == here["score_bps"] and here["score_bps"] > 0
    backend = RayBackend("local", threads=1)
    assert backend.workers() == 2
    backend.submit("plain", task, job)
    backend.fn = functools.partial(crash_once, str(tmp_path / "crashed"))
    backend.submit("killed", task, job)
    got = dict(backend.wait_all(timeout=300))
    assert (tmp_path / "crashed").exists()  # the first attempt really died
    assert set(got) == {"plain", "killed"}
    for key in got:
        assert not isinstance(got[key], Exception), got[key]
        assert result_of(got[key]) == result_of(here), key  # bit for bit: accuracies, students, novelty
        assert got[key]["students"] == here["students"]


def test_a_job_error_comes_back_as_the_error_not_a_retry(cluster, inputs):
    task, job, _ = inputs
    backend = RayBackend("local")
    backend.submit("no bundle", task, BundleJob(binding=REF))
    (key, out), = backend.wait_all(timeout=120)
    assert key == "no bundle" and isinstance(out, ValueError) and "needs the bundle" in str(out)


@pytest.mark.slow
def test_agent_scores_on_ray_commits_once_per_seat_after_a_worker_dies(cluster, reference_task, tmp_path,
                                                                      monkeypatch):
    """A devnet round: the verifier agent (in this process: it holds the key) scores on Ray; the
    worker of its only bundle dies on the first attempt; the bundle is scored once more, its
    score equals the in-process score, and each of the 5 seats commits and reveals exactly once."""
    from rounds import devnet
    from codream.chain import Chain, ChainConfig, load_account
    from codream.protocol import miner_commitment
    from ipfs import IpfsClient
    from owner.tasks import create_task, reveal_eval
    from tests.conftest import free_port
    from verifier.agent import Stage, VerifierAgent

    eth, bond = 10**18, 10**16
    monkeypatch.setenv("CODREAM_HOME", str(tmp_path / "home"))
    a, i = free_port(), free_port()
    st = devnet.up(a, i)
    try:
        rpc, api = st["anvil"]["rpc_url"], st["ipfs"]["api"]
        task_dir = without_receipts(reference_task, tmp_path / "task").parent
        owner = Chain(ChainConfig(rpc), load_account("dev:0"))
        ipfs = IpfsClient(api)
        v = Chain(ChainConfig(rpc), load_account("dev:4"))
        backend = RayBackend("local", threads=1, fn=functools.partial(crash_once, str(tmp_path / "crashed")))
        agent = VerifierAgent(v, ipfs, eth, verbose=False, backend=backend, backend_wait=0.5)
        agent.step()  # stakes
        owner.increase_time(owner.call("WARMUP", on="registry") + 1)
        owner.mine()
        agent.step()  # activates
        tid = create_task(owner, ipfs, task_dir, eth, bond, 5, 5, [3600] * 5, 1000)["task_id"]
        miner = Chain(ChainConfig(rpc), load_account("dev:1"))
        data = bundle.to_bytes(load_file(str(DREAMS))["c"], Binding(owner.chain_id, owner.address, tid,
                                                                    miner.account.address))
        cid, salt = ipfs.add_bytes(data), b"\x22" * 32
        miner.send("commit", tid, miner_commitment(cid, salt, miner.account.address, tid, miner.chain_id,
                                                   miner.address), value=bond)
        owner.increase_time(3601)
        reveal_eval(owner, ipfs, tid)
        deadline = time.monotonic() + 600

        def until(cond, what):
            while not cond():
                assert time.monotonic() < deadline, f"timed out waiting for {what}"
                agent.step()
                owner.mine()
                time.sleep(0.3)  # in real time: the draw's backoff must not outlast its block window

        until(lambda: owner.phase(tid) >= Phase.REVEAL, "the agent's draw")
        miner.send("reveal", tid, 0, cid, salt)
        owner.increase_time(3601)
        until(lambda: agent.state.task(tid)["stage"] in (Stage.COMMITTED, Stage.MISSED), "scoring on Ray")
        assert (tmp_path / "crashed").exists()  # the first worker died mid-job
        commits = owner.events("ScoresCommitted", tid)
        assert sorted(e["seat"] for e in commits) == [0, 1, 2, 3, 4]  # every seat once
        rec = agent.state.task(tid)["scores"]["0"]
        t = owner.view("getTask", tid)  # the judging seed: the draw seed and the first block after the reveals
        seal = next(b for b in map(owner.block, range(owner.block()["number"] + 1)) if b["timestamp"] > t["revealEnd"])
        judged = judging_seed(bytes(t["seed"]), bytes(seal["mixHash"]))
        assert agent.state.task(tid)["judging_seed"] == "0x" + judged.hex()
        seed = recipe_seed(judged, cid)
        spec = specmod.load(task_dir / Path(reference_task["spec"]).name)
        clear_memo()
        here = score(TaskInputs(spec, load_eval_set(reference_task["eval_set"], spec), StaticIndex([])),
                     BundleJob(data=data, binding=Binding(owner.chain_id, owner.address, tid, miner.account.address),
                               seed=seed), teachers=load_teachers(spec))
        assert rec["verdict"] == "VALID" and rec["score"] == here["score"] and rec["students"] == here["students"]
        owner.increase_time(owner.view("getTask", tid)["scoreCommitEnd"] - owner.block()["timestamp"] + 1)
        until(lambda: len(owner.events("ScoresRevealed", tid)) == 5, "the reveals")
        assert len(owner.events("ScoresCommitted", tid)) == 5  # still once per seat
    finally:
        devnet.down(a, i)


# -- mining on Ray --------------------------------------------------------------------------------

MINE = dict(n=64, seed=11, steps=10, batch=16)  # 4 shards of 16 dreams


@pytest.fixture(scope="module")
def mined_here(reference_task):
    """The bundle mined in this process at one thread (the threads each Ray job gets below)."""
    spec = specmod.load(reference_task["spec"])
    teachers = load_teachers(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = synthesize_new(spec, teachers, MINE["n"], "pixel", seed=MINE["seed"], steps=MINE["steps"],
                             batch=MINE["batch"], binding=REF)
    finally:
        torch.set_num_threads(threads)
    assert res.stats["shards"] >= 4
    return spec, teachers, bundle.to_bytes(res.images, REF)


def mine_on(backend, spec, teachers) -> bytes:
    res = synthesize_new(spec, teachers, MINE["n"], "pixel", seed=MINE["seed"], steps=MINE["steps"],
                         batch=MINE["batch"], run_shards=backend.run_shards, binding=REF)
    return bundle.to_bytes(res.images, REF)


def crash_shard_once(marker: str, task, index, device):
    """Shard 1, except that its first attempt kills its worker process (as an OOM kill would)."""
    if index == 1 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return dream_shard(task, index, device)


def refuse_shard(task, index, device):
    raise ValueError(f"no dreams for shard {index}")


def test_a_bundle_mined_on_1_or_2_ray_workers_is_the_in_process_bundle(cluster, mined_here):
    spec, teachers, here = mined_here
    two = MinerRayBackend("local", threads=1)
    assert two.workers() == 2
    one = MinerRayBackend("local", threads=1, max_in_flight=1)
    assert mine_on(one, spec, teachers) == here
    assert mine_on(two, spec, teachers) == here


def test_a_killed_mining_worker_is_retried_and_the_bundle_is_the_same(cluster, mined_here, tmp_path):
    spec, teachers, here = mined_here
    backend = MinerRayBackend("local", threads=1, fn=functools.partial(crash_shard_once, str(tmp_path / "crashed")))
    assert mine_on(backend, spec, teachers) == here
    assert (tmp_path / "crashed").exists()  # the first attempt really died


def test_a_shard_that_raises_comes_back_as_its_error(cluster, mined_here):
    spec, teachers, _ = mined_here
    with pytest.raises(ValueError, match="no dreams for shard"):
        mine_on(MinerRayBackend("local", fn=refuse_shard), spec, teachers)
    with pytest.raises(ValueError, match="cannot be sharded"):  # the generator carries state across batches
        synthesize(spec, teachers, 20, "generator", steps=1, batch=10, run_shards=MinerRayBackend("local").run_shards)


def test_mining_without_the_flag_does_not_import_ray_and_generator_is_refused(reference_task, tmp_path):
    """`miner dream` without --ray-address dreams and never imports ray; with --method generator
    --ray-address it says why not (before starting anything)."""
    spec = str(without_receipts(reference_task, tmp_path / "task"))  # the generator's refusal here is Ray's
    code = f"""
import sys
from typer.testing import CliRunner
import cli.miner_cmds, miner.agent
from cli.app import app
r = CliRunner().invoke(app, ["miner", "dream", "--task-spec", {spec!r}, "--n", "100", "--steps", "1",
                             "--out", {str(tmp_path / "b.safetensors")!r}, "--device", "cpu"])
assert r.exit_code == 0, r.output
print("ray" in sys.modules)
r = CliRunner().invoke(app, ["miner", "dream", "--task-spec", {spec!r}, "--n", "100", "--method", "generator",
                             "--out", {str(tmp_path / "g.safetensors")!r}, "--ray-address", "local"])
print(r.exit_code, "ray" in sys.modules, r.output.replace(chr(10), " "))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)
    assert out.returncode == 0, out.stderr
    plain, refused = out.stdout.strip().splitlines()[-2:]
    assert plain == "False"
    assert refused.startswith("1 False") and "cannot be sharded" in refused, refused
    assert (tmp_path / "b.safetensors").exists() and not (tmp_path / "g.safetensors").exists()
