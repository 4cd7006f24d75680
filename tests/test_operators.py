"""Operators' failures in one line with a next step (issue 26): bad amounts and addresses are
refused while the command line is parsed, before any RPC call."""
from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file
from typer.testing import CliRunner

from rounds import demo as demo_module
from cli.app import app
from codream.bundle import BundleError, read as read_bundle
from codream.chain import Chain, ChainConfig, ChainUnavailable
from codream.deployment import CONTRACTS
from codream.evalset import save_eval_set
from codream.market import parse_eth, seats_held, submissions, with_eth
from codream.protocol import Status
from ipfs import cid_of_bytes
from tests.conftest import REPO, run_cli

GOOD = "0x" + "12" * 20


class Listener:
    """A TCP port that counts connections: an RPC URL that shows whether anything called it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port, self.connections, self.done = self.sock.getsockname()[1], 0, False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def rpc_listener():
    listener = Listener()
    yield listener
    listener.close()


BAD_INPUTS = [
    (["task", "create", "--task-dir", "TASK", "--bounty", "-1"], "--bounty -1: an amount of ETH must be positive"),
    (["task", "create", "--task-dir", "TASK", "--bond", "abc"], "--bond 'abc': not an amount of ETH"),
    (["task", "create", "--task-dir", "TASK", "--bounty", "inf"], "--bounty 'inf': not an amount of ETH"),
    (["task", "create", "--task-dir", "TASK", "--bounty", "1e-19"], "--bounty 1e-19: less than 1 wei"),
    (["task", "join", "1", "--eval", "README.md", "--contribution", "0"], "--contribution 0: an amount of ETH must"),
    (["verifier", "run", "--stake", "-2"], "--stake -2: an amount of ETH must be positive"),
    (["verifier", "status", "--address", "0x1234"], "--address '0x1234' is not an Ethereum address"),
    (["verifier", "wait", "--address", "alice"], "--address 'alice' is not an Ethereum address"),
    (["miner", "status", "--address", GOOD + "0"], "is not an Ethereum address"),
    (["rewards", "--address", "0xzz"], "--address '0xzz' is not an Ethereum address"),
    (["devnet", "fund", "0x1234"], "ADDRESS '0x1234' is not an Ethereum address"),
    (["devnet", "fund", GOOD, "-1"], "AMOUNT -1: an amount of ETH must be positive"),
]


@pytest.mark.parametrize("args,said", BAD_INPUTS, ids=[" ".join(a[:2]) + " " + a[-1] for a, _ in BAD_INPUTS])
def test_bad_amounts_and_addresses_fail_in_one_line_before_any_rpc_call(args, said, rpc_listener, codream_home):
    rpc = f"http://127.0.0.1:{rpc_listener.port}"
    extra = ["--anvil-port", str(rpc_listener.port)] if args[0] == "devnet" else ["--rpc-url", rpc]
    res = CliRunner().invoke(app, [*args, *extra], env={"CODREAM_RPC_URL": rpc})
    assert res.exit_code == 2, res.output
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ") and said in res.stderr, res.stderr
    assert rpc_listener.connections == 0


def test_a_negative_bounty_is_refused_by_the_real_command_line(rpc_listener, codream_home):
    res = run_cli("task", "create", "--task-dir", "TASK", "--bounty", "-1",
                  "--rpc-url", f"http://127.0.0.1:{rpc_listener.port}", timeout=60)
    assert res.returncode == 2
    assert res.stderr.decode() == "error: --bounty -1: an amount of ETH must be positive, e.g. --bounty 0.5\n"
    assert rpc_listener.connections == 0


def test_a_good_amount_is_taken_exactly_as_typed():
    assert parse_eth("0.3", "--bounty") == 3 * 10**17
    assert parse_eth(0.01, "--bond") == 10**16
    assert parse_eth("1e-18", "--stake") == 1
    for bad, why in (("-1", "must be positive"), ("1e-19", "less than 1 wei"), ("lots", "not an amount"),
                     ("1e60", "too large")):
        with pytest.raises(ValueError, match=why):
            parse_eth(bad, "--bounty")


def test_verifier_score_names_a_non_bundle_and_warns_of_an_eval_set_near_chance(reference_task, tmp_path):
    """`verifier score --bundle picture.png` says "not a bundle" (not "header claims N bytes"), and an
    eval set on which the task's teachers are near chance (shuffled labels) is flagged on stderr and
    in the JSON, by the committee's own rule (codream.evalset.check_eval_set)."""
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    x, y = load_file(reference_task["eval_set"])["images"], load_file(reference_task["eval_set"])["labels"]
    shuffled = save_eval_set(tmp_path / "shuffled.safetensors", x,
                             y[torch.randperm(len(y), generator=torch.Generator().manual_seed(0))])
    env = {"CODREAM_HOME": str(tmp_path / "home")}
    res = run_cli("verifier", "score", "--task-spec", reference_task["spec"], "--bundle", str(picture),
                  "--eval", str(shuffled), env=env)
    assert res.returncode == 0, res.stderr.decode()
    out, err = json.loads(res.stdout), res.stderr.decode()
    assert out["verdict"] == "INVALID" and out["reasons"][0]["code"] == "not_a_bundle"
    assert "a PNG image, not a bundle" in out["reasons"][0]["detail"] and "header claims" not in res.stdout.decode()
    assert out["eval_check"]["verdict"] == "FAILED" and out["eval_check"]["teacher_accuracy_bps"] < 2000
    assert out["eval_check"]["chance_bps"] == 1000
    said = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(said) == 1 and "on this eval set, near chance (10.0 %)" in said[0], err
    res = run_cli("verifier", "score", "--task-spec", reference_task["spec"], "--bundle", str(picture),
                  "--eval", reference_task["eval_set"], env=env)
    out = json.loads(res.stdout)
    assert out["eval_check"]["verdict"] == "OK" and out["eval_check"]["teacher_accuracy_bps"] > 9000
    assert "warning:" not in res.stderr.decode()


@pytest.mark.parametrize("data,found", [(b"\x89PNG\r\n\x1a\n" + bytes(100), "a PNG image"),
                                        (b"\xff\xd8\xff\xe0" + bytes(100), "a JPEG image"),
                                        (b"hello, I am a bundle, trust me" * 3, "text ('hello, I am a bundle"),
                                        (bytes(range(255, 0, -1)), "255 bytes of something else (starting ff")])
def test_a_file_that_is_not_a_bundle_is_named_as_such(data, found):
    with pytest.raises(BundleError) as caught:
        read_bundle(data)
    assert caught.value.code == "not_a_bundle" and f"this is {found}" in str(caught.value)
    assert "header claims" not in str(caught.value)


# -- the RPC: a dead URL is reported at once, an outage after first contact is ridden out ----------

class FakeNode:
    """A JSON-RPC endpoint that answers every call with chain id 5; ``silent`` accepts connections
    and never answers. Restartable on its port."""

    def __init__(self, port: int = 0, silent: bool = False):
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if node.silent:
                    time.sleep(30)
                    return
                body = json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": "0x5"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.silent, self.handler = silent, Handler
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def record(tmp_path):
    path = tmp_path / "record.json"
    path.write_text(json.dumps({"chain_id": 5, "contracts": {name: {"address": "0x" + "11" * 20, "abi": []}
                                                             for name in CONTRACTS}}))
    return str(path)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("kind", ["refused", "silent", "unknown host"])
def test_a_dead_rpc_url_is_reported_within_three_seconds(kind, record):
    node = FakeNode(silent=True) if kind == "silent" else None
    url = {"refused": f"http://127.0.0.1:{dead_port()}", "unknown host": "http://no-such-host.invalid:8545",
           "silent": node.url if node else None}[kind]
    t0 = time.monotonic()
    with pytest.raises(ChainUnavailable, match=r"no Ethereum RPC answers at .*: is the node up") as caught:
        Chain(ChainConfig(url, record, retry_seconds=120))
    assert time.monotonic() - t0 < 3.0
    assert {"refused": "connection refused", "silent": "no answer within 2 s",
            "unknown host": "unknown host"}[kind] in str(caught.value)
    if node:
        node.stop()


def test_an_rpc_that_answered_once_is_waited_for_through_an_outage(record):
    node = FakeNode()
    chain = Chain(ChainConfig(node.url, record, retry_seconds=30))
    assert chain.chain_id == 5
    port = node.port
    node.stop()

    def restart():
        nonlocal node
        node = FakeNode(port)

    threading.Timer(2.0, restart).start()
    t0 = time.monotonic()
    assert chain._rpc("chain id", lambda: chain.w3.eth.chain_id) == 5  # the patient retry, not the first contact's
    assert time.monotonic() - t0 >= 1.5
    node.stop()


def test_the_cli_says_what_to_do_about_a_dead_rpc(codream_home, record):
    res = run_cli("task", "list", "--rpc-url", f"http://127.0.0.1:{dead_port()}", "--deployment", record, timeout=60)
    err = res.stderr.decode()
    assert res.returncode == 1 and err.count("\n") == 1, err
    assert "connection refused" in err and "codream devnet up" in err


def test_ipfs_cat_of_a_cid_nobody_has_says_so_plainly(ipfs_node, codream_home):
    unknown = cid_of_bytes(b"nobody added this")
    res = run_cli("ipfs", "cat", unknown, "--api", ipfs_node.api, timeout=60)
    err = res.stderr.decode()
    assert res.returncode == 1 and err.count("\n") == 1, err
    assert f"cat {unknown}: not found" in err and "codream ipfs add FILE" in err
    assert "ipld" not in err and "could not find" not in err


# -- views ------------------------------------------------------------------------------------

def test_verifier_status_counts_the_seats_it_holds_in_each_task():
    """The "seats" column of `verifier status` (cli.views.render_verifier prints codream.market.seats_held):
    a count, never a seat number."""
    row = {"task": 1, "phase": "score reveal", "seconds_left": 60, "seats": [0], "seat_count": 1,
           "appeal_seat_count": 0, "committed": 1, "revealed": 0, "agree": 0, "disagree": 0, "faulty_seats": [],
           "slashed_wei": 0, "fee_wei": None}
    two = {**row, "task": 2, "seats": [3, 4], "seat_count": 2, "appeal_seat_count": 1, "committed": 2}
    assert seats_held(row) == "1"  # one seat, seat number 0: reads 1, not 0
    assert seats_held(two) == "2 + 1 appeal"
    assert seats_held({**two, "appeal_seat_count": 0}) == "2"


class Ledger:
    """A chain stand-in for codream.market.submissions: two commitments, one revealed."""

    def call(self, fn, tid, start, count, on="market"):
        return {"getSubmissions": ([None, "0xRevealer"], [False, True]),
                "results": ([0, 0], [int(Status.COMMITTED), int(Status.REVEALED)])}[fn]

    def events(self, name, tid=None, on="market", **filters):
        return {"Committed": [{"index": 0, "miner": "0xCommitter"}, {"index": 1, "miner": "0xRevealer"}],
                "Revealed": [{"index": 1, "miner": "0xRevealer", "cid": "bafyrevealed"}]}.get(name, [])


def test_task_show_names_the_miner_of_a_committed_row():
    rows = submissions(Ledger(), 1, 2)
    assert [r["miner"] for r in rows] == ["0xCommitter", "0xRevealer"]
    assert rows[0]["status"] == Status.COMMITTED and "cid" not in rows[0]


def test_json_results_carry_eth_beside_every_wei_amount():
    """What every command's --json prints (cli.common.emit is json.dumps of codream.market.with_eth)."""
    out = with_eth({"address": GOOD, "funded_wei": 10 * 10**18, "balance_wei": 10**18 + 5 * 10**17,
                    "nested": [{"bounty_wei": 10**16}], "withdrawn": "0.3 ETH", "withdrawn_wei": 3 * 10**17,
                    "ok_wei": True})
    assert out["funded"] == "10 ETH" and out["funded_wei"] == 10 * 10**18 and out["balance"] == "1.5 ETH"
    assert out["nested"][0]["bounty"] == "0.01 ETH" and out["withdrawn"] == "0.3 ETH" and "ok" not in out


def test_the_demo_suggests_keep_up_when_it_shuts_the_devnet_down(codream_home, monkeypatch):
    monkeypatch.setattr(demo_module.devnet, "down", lambda *ports: [])
    con = Console(record=True, width=200)
    demo = demo_module.Demo(keep_up=False, con=con)
    con.print(demo.next_steps(3))
    demo.teardown()
    said = con.export_text()
    assert "codream demo --keep-up" in said and "codream task show 3" in said and "Open the dapp" not in said
    assert "devnet down (`codream demo --keep-up` leaves it running" in said
    kept = demo_module.Demo(keep_up=True, con=Console(record=True, width=200))
    assert kept.next_steps(3).startswith("Look around:") and "--keep-up" not in kept.next_steps(3)


def test_the_npm_lock_is_complete_so_setup_leaves_the_tree_clean():
    """`make setup` runs `npm ci`, which refuses a lock out of sync with package.json; `npm install`
    would rewrite it. In sync means every optional dependency of every locked package (the
    foundry packages' binaries for each platform) has its own entry, with a version and a hash."""
    lock = json.loads((REPO / "package-lock.json").read_text())
    pinned = json.loads((REPO / "package.json").read_text())["dependencies"]
    packages = lock["packages"]
    assert packages[""]["dependencies"] == pinned
    for path, meta in packages.items():
        for dep, version in meta.get("optionalDependencies", {}).items():
            entry = packages.get(f"node_modules/{dep}")
            assert entry is not None, f"package-lock.json lacks {dep} (optional dependency of {path})"
            assert entry["version"] == version and entry["integrity"].startswith("sha512-"), dep
