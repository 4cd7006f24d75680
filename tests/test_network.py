"""The network end to end on anvil + the local IPFS node (protocol v3): a full round with exact
payouts, agents killed and restarted, the RPC and the IPFS node going away and coming back."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rounds import devnet
from codream.chain import Chain, ChainConfig, ChainUnavailable, load_account
from codream.protocol import INVALID, Phase, Status
from owner.tasks import create_task, reveal_eval
from ipfs import IpfsClient
from tests.conftest import free_port

# devnet rounds with agent processes: `make test` runs it, `make test-fast` does not
pytestmark = pytest.mark.slow


ETH = 10**18
BOND = ETH // 100


@pytest.fixture
def net(tmp_path, monkeypatch, reference_task):
    """A fresh devnet (anvil + IPFS node + market) in an isolated CODREAM_HOME."""
    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    a, i = free_port(), free_port()
    st = devnet.up(a, i)
    task_dir = tmp_path / "task"
    shutil.copytree(Path(reference_task["spec"]).parent, task_dir)
    ctx = {"home": home, "rpc": st["anvil"]["rpc_url"], "api": st["ipfs"]["api"], "ports": (a, i),
           "task_dir": task_dir}
    ctx["owner"] = Chain(ChainConfig(ctx["rpc"]), load_account("dev:0"))
    ctx["ipfs"] = IpfsClient(ctx["api"])
    procs = []
    ctx["procs"] = procs
    yield ctx
    for p in procs:
        if p.poll() is None:
            p.kill()
    devnet.down(a, i)


def agent(ctx, name, *args):
    log = open(ctx["home"] / f"{name}.log", "a")
    env = {**os.environ, "CODREAM_HOME": str(ctx["home"]), "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "cli", *args, "--rpc-url", ctx["rpc"], "--ipfs-api", ctx["api"],
                          "--poll", "0.3"], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    ctx["procs"].append(p)
    return p


def wait(cond, what, timeout=240, mine=None):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        if mine is not None:
            mine.mine()
        time.sleep(0.3)


def rewind_stage(ctx, role, address, tid, stage) -> dict:
    """Simulate a crash between a transaction landing and the agent recording it."""
    state_file = next((ctx["home"] / "agents" / f"{role}-{address.lower()}").glob("state-*.json"))
    state = json.loads(state_file.read_text())
    st = state["tasks"][str(tid)]
    st["stage"] = stage
    for sub in st.get("subs", []):  # the miner forgets the index its commit got
        sub.pop("index", None)
    state_file.write_text(json.dumps(state))
    return st


def new_task(ctx, k=5):
    return create_task(ctx["owner"], ctx["ipfs"], ctx["task_dir"], ETH, BOND, k, k, [3600] * 5, 1000)["task_id"]


def warm_verifier(ctx, dev: int = 4) -> Chain:
    """A verifier whose stake is active (devnet time moves past the warm-up)."""
    v = Chain(ChainConfig(ctx["rpc"]), load_account(f"dev:{dev}"))
    v.send("stake", value=ETH, on="registry")
    v.increase_time(v.call("WARMUP", on="registry") + 1)
    v.send("activate", v.account.address, on="registry")
    return v


def draw(chain: Chain, tid: int) -> None:
    """The keeper's two calls: request, then draw in the seed block's window."""
    chain.send("requestDraw", tid)
    chain.mine(2)
    chain.send("drawCommittee", tid)


def test_full_round_pays_exactly_by_the_settlement_rules(tmp_path, monkeypatch, reference_task):
    from rounds.demo import Demo

    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    shutil.copytree(Path(reference_task["spec"]).parent, home / "demo" / "task-digits")
    result = Demo(n=300, anvil_port=free_port(), ipfs_port=free_port()).run()
    rows = {r["role"]: r for r in result["rows"]}
    status = {s["miner"]: s["status"] for s in result["submissions"]}
    fee = ETH // 10  # 10 % verifier fee
    assert status[rows["miner honest"]["address"]] == "accepted"
    assert status[rows["miner noise"]["address"]] == "rejected"  # below min gain
    assert status[rows["miner copier"]["address"]] == "invalid"  # a copy of an earlier submission
    assert rows["miner honest"]["credited_wei"] == (ETH - fee) + BOND  # the only accepted gain takes the miner pot
    assert rows["miner noise"]["credited_wei"] == BOND // 2  # spam costs money: half the bond is forfeited
    assert rows["miner copier"]["credited_wei"] == 0  # INVALID: bond forfeited
    pot = fee + BOND + BOND // 2  # fee + the copier's bond + half the noise bond
    seats = result["committee"]
    assert len(seats) == 5 and all(not s["faulty"] and s["slashed"] == 0 for s in seats)
    for j in (1, 2, 3):  # the pot pays per agreeing seat (each judged the owner and all 3 submissions)
        held = sum(s["verifier"] == rows[f"verifier {j}"]["address"] for s in seats)
        assert abs(rows[f"verifier {j}"]["credited_wei"] - pot * held // 5) <= 2
        assert rows[f"verifier {j}"]["slashed_wei"] == 0
    paid = sum(rows[f"verifier {j}"]["credited_wei"] for j in (1, 2, 3))
    assert 0 <= pot - paid <= 5  # rounding dust: burned, never given to anyone
    assert rows["owner"]["credited_wei"] == 0  # everything the miners could earn was earned
    total_in = ETH + 3 * BOND
    books = result["books"]
    assert sum(r["credited_wei"] for r in rows.values()) + books["burned_wei"] == total_in  # every wei accounted for
    assert books["balanced"]


def test_miner_killed_between_commit_and_reveal_still_reveals_once(net):
    warm_verifier(net)
    tid = new_task(net)
    miner = load_account("dev:1").address
    owner = net["owner"]
    p = agent(net, "miner", "miner", "run", "--account", "dev:1", "--strategy", "noise", "--n", "200",
              "--task", str(tid))
    wait(lambda: any(e["miner"] == miner for e in owner.events("Committed", tid)), "the commit")
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    # worst case: the commit reached the chain but the agent died before recording it
    saved = rewind_stage(net, "miner", miner, tid, "salted")["subs"][0]
    owner.increase_time(3601)
    reveal_eval(owner, net["ipfs"], tid)
    draw(owner, tid)  # miners reveal once the committee is drawn
    agent(net, "miner2", "miner", "run", "--account", "dev:1", "--strategy", "noise", "--n", "200",
          "--task", str(tid))
    wait(lambda: any(e["miner"] == miner for e in owner.events("Revealed", tid)), "the reveal after restart")
    assert [e["miner"] for e in owner.events("Committed", tid)] == [miner]  # never committed twice
    assert next(e["cid"] for e in owner.events("Revealed", tid) if e["index"] == 0) == saved["cid"]


def test_verifier_killed_mid_round_resumes_with_its_salt(net):
    from codream.protocol import miner_commitment

    owner = net["owner"]
    v = agent(net, "verifier", "verifier", "run", "--account", "dev:4", "--stake", "1")
    wait(lambda: owner.call("verifierCount", on="registry") == 1, "the stake")
    owner.increase_time(owner.call("WARMUP", on="registry") + 1)
    wait(lambda: owner.events("Activated", on="registry"), "the verifier activating its stake", mine=owner)
    tid = new_task(net)  # one verifier: it holds all 5 seats
    miner = Chain(ChainConfig(net["rpc"]), load_account("dev:1"))
    bundle_cid = net["ipfs"].add_bytes(b"not a bundle at all")  # will be INVALID: fast to score
    salt = b"\x11" * 32
    miner.send("commit", tid, miner_commitment(bundle_cid, salt, miner.account.address, tid, miner.chain_id,
                                               miner.address), value=BOND)
    owner.increase_time(3601)
    reveal_eval(owner, net["ipfs"], tid)
    wait(lambda: owner.phase(tid) >= Phase.REVEAL, "the keeper's draw", mine=owner)
    miner.send("reveal", tid, 0, bundle_cid, salt)
    owner.increase_time(3601)
    wait(lambda: len(owner.events("ScoresCommitted", tid)) == 5, "the score commitments", mine=owner)
    os.killpg(v.pid, signal.SIGKILL)
    v.wait()
    # worst case: the commitments landed but the agent died before recording it
    rewind_stage(net, "verifier", load_account("dev:4").address, tid, "scored")
    owner.increase_time(owner.view("getTask", tid)["scoreCommitEnd"] - owner.block()["timestamp"] + 1)
    agent(net, "verifier2", "verifier", "run", "--account", "dev:4", "--stake", "1")
    wait(lambda: len(owner.events("ScoresRevealed", tid)) == 5, "the reveals after restart", mine=owner)
    owner.increase_time(owner.view("getTask", tid)["appealEnd"] - owner.block()["timestamp"] + 1)
    wait(lambda: owner.phase(tid) == Phase.FINALIZED, "settlement by the verifier (keeper)", mine=owner)
    result, status = owner.call("results", tid, 0, 1, on="lens")
    assert list(result) == [INVALID] and Status(status[0]) == Status.INVALID
    verifier = load_account("dev:4").address
    assert owner.call("stakeOf", verifier, on="registry") == ETH  # agreed with itself: not slashed


class Proxy:
    """A TCP forwarder we can switch off and on: the RPC 'going away'."""

    def __init__(self, target_port: int):
        self.target, self.port = target_port, free_port()
        self.server = None
        self.conns: list[socket.socket] = []

    def start(self):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", self.port))
        self.server.listen(16)
        threading.Thread(target=self._accept, args=(self.server,), daemon=True).start()

    def stop(self):
        """Refuse new connections and cut the open ones (keep-alive included)."""
        for s in [self.server, *self.conns]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.conns.clear()

    def _accept(self, server):
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_the_judging_seed_comes_from_the_first_block_after_the_reveal_window(net, monkeypatch):
    """The draw seed is public while the miners reveal; the judging seed (each bundle's recipe seed
    and replayed shard) mixes in the prevrandao of the first block stamped after the reveal window,
    so a miner holding several commitments cannot reveal the one the yardstick suits."""
    from codream.market import task_judging_seed
    from codream.protocol import judging_seed, miner_commitment

    owner = net["owner"]
    warm_verifier(net)
    tid = new_task(net)
    miner = Chain(ChainConfig(net["rpc"]), load_account("dev:1"))
    cid, salt = net["ipfs"].add_bytes(b"a submission"), b"\x22" * 32
    miner.send("commit", tid, miner_commitment(cid, salt, miner.account.address, tid, miner.chain_id, miner.address),
               value=BOND)
    owner.increase_time(3601)
    reveal_eval(owner, net["ipfs"], tid)
    draw(owner, tid)
    t = owner.view("getTask", tid)
    miner.send("reveal", tid, 0, cid, salt)
    owner.mine(3)  # blocks inside the reveal window
    assert task_judging_seed(owner, tid) is None and owner.first_block_after(t["revealEnd"]) is None
    owner.increase_time(t["revealEnd"] - owner.block()["timestamp"] + 1)
    owner.mine(4)
    blocks = [owner.block(i) for i in range(owner.block()["number"] + 1)]
    seal = next(b for b in blocks if b["timestamp"] > t["revealEnd"])
    assert blocks[seal["number"] - 1]["timestamp"] <= t["revealEnd"]  # the first block past the window
    judged = task_judging_seed(owner, tid)
    assert judged == judging_seed(bytes(t["seed"]), bytes(seal["mixHash"])) != bytes(t["seed"])
    owner.mine(5)
    assert task_judging_seed(owner, tid) == judged  # later blocks do not move it
    assert owner.first_block_after(t["revealEnd"], lo=seal["number"] - 3)["number"] == seal["number"]
    # each block's prevrandao would give another seed: the seal block's randomness decides
    assert len({judging_seed(bytes(t["seed"]), bytes(b["mixHash"])) for b in blocks[-8:]}) == 8
    # off a devnet the seed waits until the seal block is final (anvil: 64 blocks behind the head),
    # so a reorganisation cannot hand two seats two seeds
    monkeypatch.setattr(Chain, "devnet", property(lambda self: False))
    assert owner.block("finalized")["number"] < seal["number"] and task_judging_seed(owner, tid) is None
    for _ in range(200):  # anvil's finalized block trails the head by 2 epochs of 32 slots
        if owner.block("finalized")["number"] >= seal["number"] - 1:
            break
        owner.mine(1)
    assert owner.block("finalized")["number"] == seal["number"] - 1 and task_judging_seed(owner, tid) is None
    owner.mine(1)
    assert owner.block("finalized")["number"] == seal["number"]
    assert task_judging_seed(owner, tid) == judged
    # a node that does not know the `finalized` tag: the seal must be SEAL_CONFIRMATIONS blocks deep
    from codream.market import SEAL_CONFIRMATIONS
    from web3.exceptions import Web3RPCError
    get_block = owner.w3.eth.get_block

    def no_tag(which, *a, **kw):
        if which == "finalized":
            raise Web3RPCError("unknown block tag: finalized")
        return get_block(which, *a, **kw)

    monkeypatch.setattr(owner.w3.eth, "get_block", no_tag)
    assert owner.is_final(owner.block()["number"] - SEAL_CONFIRMATIONS, SEAL_CONFIRMATIONS)
    assert not owner.is_final(owner.block()["number"] - SEAL_CONFIRMATIONS + 1, SEAL_CONFIRMATIONS)
    assert task_judging_seed(owner, tid) == judged


def test_chain_client_rides_out_an_rpc_outage_and_explains_a_permanent_one(net):
    proxy = Proxy(net["ports"][0])
    proxy.start()
    chain = Chain(ChainConfig(f"http://127.0.0.1:{proxy.port}", retry_seconds=30), load_account("dev:2"))
    impatient = Chain(ChainConfig(chain.cfg.rpc_url, retry_seconds=1.5), load_account("dev:2"))
    assert chain.call("taskCount") == 0
    proxy.stop()
    threading.Timer(3.0, proxy.start).start()
    t0 = time.monotonic()
    chain.send("stake", value=ETH, on="registry")  # sent while the RPC is away; lands once it is back
    assert time.monotonic() - t0 >= 2.5
    assert chain.call("stakeOf", chain.account.address, on="registry") == ETH
    proxy.stop()
    t0 = time.monotonic()
    with pytest.raises(ChainUnavailable, match="did not answer"):
        impatient.call("taskCount")
    assert time.monotonic() - t0 < 15  # the retry budget is bounded (web3's retry configuration)


def test_miner_survives_the_ipfs_node_going_down_and_up(net):
    owner = net["owner"]
    warm_verifier(net)
    tid = new_task(net)
    miner = load_account("dev:1").address
    agent(net, "miner", "miner", "run", "--account", "dev:1", "--strategy", "noise", "--n", "200",
          "--task", str(tid))
    wait(lambda: any(e["miner"] == miner for e in owner.events("Committed", tid)), "the commit")
    owner.increase_time(3601)
    reveal_eval(owner, net["ipfs"], tid)
    pid = int((net["home"] / "devnet" / "ipfs.pid").read_text())
    os.killpg(pid, signal.SIGTERM)
    wait(lambda: devnet.ipfs_answers(net["ports"][1]) is None, "the IPFS node to stop", timeout=30)
    draw(owner, tid)  # the reveal window opens while the node is down
    log = net["home"] / "miner.log"
    wait(lambda: "retrying after error" in log.read_text(), "the miner to notice the outage", timeout=60)
    assert not owner.events("Revealed", tid)
    devnet.up(*net["ports"])  # starts whatever is not running: the IPFS node, same repo
    wait(lambda: any(e["miner"] == miner for e in owner.events("Revealed", tid)), "the reveal after the outage")
    assert IpfsClient(net["api"]).is_pinned(next(e["cid"] for e in owner.events("Revealed", tid) if e["index"] == 0))


def test_an_honest_verifier_appeals_a_bought_result_and_the_appeal_overturns_it(net):
    """W holds most of a submission's seats and votes a garbage bundle 10,000 (accepted by its
    majority). The honest agent, outvoted on its seat, appeals on its own; W left (unbonded) after
    the score reveal, so the appeal committee is the agent's alone; the agent scores the bundle on
    its 11 appeal seats; the appeal overturns; W is slashed, the agent repaid, the bundle settles
    INVALID. (The test plays W and the keeper; the agent runs with --no-keeper.)"""
    from codream.protocol import AppealStage, EvalVerdict, Outcome, miner_commitment, score_commitment, \
        seat_vector

    owner, ipfs = net["owner"], net["ipfs"]
    honest = load_account("dev:4").address
    agent(net, "verifier", "verifier", "run", "--account", "dev:4", "--stake", "1", "--no-keeper")
    w = Chain(ChainConfig(net["rpc"]), load_account("dev:5"))
    wait(lambda: owner.call("stakeOf", honest, on="registry") > 0, "the agent's stake")
    w.send("stake", value=3 * ETH, on="registry")
    owner.increase_time(owner.call("WARMUP", on="registry") + 1)
    w.send("activate", w.account.address, on="registry")
    wait(lambda: owner.view("info", honest, on="registry")["stake"] > 0, "the agent activating", mine=owner)
    miner = Chain(ChainConfig(net["rpc"]), load_account("dev:1"))
    for attempt in range(12):  # a committee where W holds 3+ of the 5 seats and the agent at least one
        tid = new_task(net)
        cid, salt = ipfs.add_bytes(b"not a bundle at all %d" % attempt), b"\x22" * 32
        miner.send("commit", tid, miner_commitment(cid, salt, miner.account.address, tid, miner.chain_id,
                                                   miner.address), value=BOND)
        owner.increase_time(3601)
        reveal_eval(owner, ipfs, tid)
        draw(owner, tid)
        seats = list(owner.call("getSeats", tid, on="lens")[0])
        if seats.count(w.account.address) >= 3 and honest in seats:
            break
    else:
        pytest.fail("no committee with a W majority and an honest seat in 12 draws")
    miner.send("reveal", tid, 0, cid, salt)
    owner.increase_time(owner.view("getTask", tid)["revealEnd"] - owner.block()["timestamp"] + 1)
    mine_ = [j for j, v in enumerate(seats) if v == w.account.address]
    vec = seat_vector([EvalVerdict.OK], [10_000])
    for j in mine_:
        w.send("commitScores", tid, j, score_commitment(vec, b"\x33" * 32, w.account.address, tid, j, w.chain_id,
                                                        w.address))
    wait(lambda: len(owner.events("ScoresCommitted", tid)) == 5, "the agent's commitments", mine=owner)
    owner.increase_time(owner.view("getTask", tid)["scoreCommitEnd"] - owner.block()["timestamp"] + 1)
    for j in mine_:
        w.send("revealScores", tid, j, vec, b"\x33" * 32)
    wait(lambda: len(owner.events("ScoresRevealed", tid)) == 5, "the agent's reveals", mine=owner)
    assert owner.view("judge", tid, 0, on="lens")["status"] == Status.ACCEPTED  # bought
    w.send("requestUnbond", on="registry")  # W leaves before the appeal's snapshot
    owner.increase_time(owner.view("getTask", tid)["scoreRevealEnd"] - owner.block()["timestamp"] + 1)
    wait(lambda: owner.call("appealCount", tid, on="appeals") == 1, "the agent's appeal", mine=owner)
    x = owner.view("getAppeal", tid, 0, on="appeals")
    assert x["appellant"] == honest and x["submission"] == 0
    owner.mine(max(1, x["seedBlock"] - owner.block()["number"]))
    owner.send("drawAppeal", tid, 0, on="appeals")
    assert set(owner.call("getAppealSeats", tid, 0, on="appeals")[0]) == {honest}
    wait(lambda: all(owner.call("getAppealSeats", tid, 0, on="appeals")[1]), "the agent's appeal commitments",
         mine=owner)
    owner.increase_time(owner.view("getAppeal", tid, 0, on="appeals")["commitEnd"] - owner.block()["timestamp"] + 1)
    wait(lambda: all(owner.call("getAppealSeats", tid, 0, on="appeals")[2]), "the agent's appeal reveals",
         mine=owner)
    owner.increase_time(owner.view("getAppeal", tid, 0, on="appeals")["revealEnd"] - owner.block()["timestamp"] + 1)
    before = owner.call("stakeOf", w.account.address, on="registry")
    while AppealStage(owner.view("getAppeal", tid, 0, on="appeals")["stage"]) != AppealStage.RESOLVED:
        owner.send("resolveAppeal", tid, 0, 100, on="appeals")
    assert Outcome(owner.view("getAppeal", tid, 0, on="appeals")["outcome"]) == Outcome.OVERTURNED
    assert before - owner.call("stakeOf", w.account.address, on="registry") >= 3 * 10**17  # >= 0.1 ETH per seat
    owner.increase_time(owner.view("getTask", tid)["appealEnd"] - owner.block()["timestamp"] + 1)
    while owner.phase(tid) != Phase.FINALIZED:
        owner.send("settle", tid, 1000)
    result, status = owner.call("results", tid, 0, 1, on="lens")
    assert Status(status[0]) == Status.INVALID  # the appeal's result stands
