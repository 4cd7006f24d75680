"""The dapp in real headless Chromium against a devnet after a demo round: every demo
account's claimable amount equals `codream rewards`; claiming from the page moves the
balance on chain; the screenshot is kept as a test artefact (test-artifacts/dapp.png)."""
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from codream.chain import Chain, ChainConfig, load_account
from codream.devchain import DEVNET_CHAIN_ID
from codream.market import eth
from tests.conftest import REPO, free_port, run_cli

# devnet rounds in a real browser: `make test` runs it, `make test-fast` does not
pytestmark = pytest.mark.slow


ARTIFACTS = REPO / "test-artifacts"
FORMATS = ["1", "-1", "999999999", "1000000000", "12500000000", "-10000000000000000", "459500000000000000",
           "1000000000000000000"]  # wei: the page formats each as the CLI does


@pytest.fixture
def demo_devnet(tmp_path, monkeypatch, reference_task):
    from rounds import devnet
    from rounds.demo import Demo

    if not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.fail("Debian chromium is required for the dapp test: `apt-get install chromium` "
                    "(make test installs it)")
    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    shutil.copytree(Path(reference_task["spec"]).parent, home / "demo" / "task-digits")
    a, i = free_port(), free_port()
    Demo(keep_up=True, n=200, anvil_port=a, ipfs_port=i, claim=False).run()
    yield {"home": home, "rpc": f"http://127.0.0.1:{a}", "gateway": f"http://127.0.0.1:{i}/ipfs/",
           "api": f"/ip4/127.0.0.1/tcp/{i}/http"}
    devnet.down(a, i)


def test_dapp_matches_cli_rewards_and_claims_on_chain(demo_devnet, tmp_path):
    """The first screen answers "what did I earn, and why" with the numbers of the core's accounting
    (`codream rewards --json`), which match the chain's own events; the claim moves the balance on
    chain and shows as a transfer; a task shows its scores, agreement and dreams; the network page
    its totals; at 420 px nothing is wider than the screen. Screenshots: test-artifacts/dapp-*.png."""
    home, rpc = demo_devnet["home"], demo_devnet["rpc"]
    env = {"CODREAM_HOME": str(home)}
    chain = Chain(ChainConfig(rpc))
    expected, statements = {}, {}
    for i in range(7):  # owner, 3 miners, 3 verifiers
        addr = load_account(f"dev:{i}").address
        res = run_cli("rewards", "--json", "--address", addr, "--rpc-url", rpc, env=env)
        assert res.returncode == 0, res.stderr.decode()
        st = statements[addr] = json.loads(res.stdout)
        # the read model against the chain: claimable, every credit, each miner's settlement
        assert st["claimable_wei"] == chain.call("claimable", addr)
        assert st["credited_wei"] == sum(e["amount"] for e in chain.events("Credited", account=addr))
        settled = chain.events("SubmissionSettled", miner=addr)
        if settled:
            assert st["earned_wei"] == sum(e["reward"] for e in settled)
            assert st["lost_wei"] == sum(chain.view("getTask", e["taskId"])["minerBond"] - e["bondReturned"]
                                         for e in settled)
        assert st["in_escrow_wei"] == 0 and st["net_wei"] == st["credited_wei"] - st["paid_in_wei"] - st["slashed_wei"]
        expected[addr] = {"claimable": str(st["claimable_wei"]), "earned": str(st["earned_wei"]),
                          "lost": str(-st["lost_wei"]), "net": str(st["net_wei"]),
                          "tasks": {str(t["task"]): {"earned": str(t["earned_wei"]), "lost": str(t["lost_wei"]),
                                                     "net": str(t["net_wei"])} for t in st["tasks"]}}
    honest, noise, copier = (load_account(f"dev:{i}").address for i in (1, 2, 3))
    assert statements[honest]["earned_wei"] > 10**17 and statements[honest]["net_wei"] > 0  # the honest miner earned
    assert statements[noise]["net_wei"] < 0 and statements[copier]["net_wei"] < 0  # the cheats lost their bonds
    (tmp_path / "expected.json").write_text(json.dumps(expected))

    server, port = _serve_dapp(rpc, env, "--ipfs-api", demo_devnet["api"])  # the gateway: from --ipfs-api
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "dapp.png"
        claimer = Chain(ChainConfig(rpc), load_account("dev:1"))
        bal_before = claimer.w3.eth.get_balance(honest)
        res = subprocess.run(["node", str(REPO / "tests" / "dapp" / "check.mjs"), f"http://127.0.0.1:{port}/",
                              str(tmp_path / "expected.json"), str(shot), "1", load_account("dev:0").address, honest],
                             capture_output=True, text=True, timeout=400, cwd=REPO)
        assert res.returncode == 0, res.stderr[-3000:]
        report = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(10)
    assert report["errors"] == [], report["errors"]
    assert report["shown"] == {a: e["claimable"] for a, e in expected.items()}  # claimable, wei for wei
    for addr, e in expected.items():  # earned / lost / net, in total and per task, wei for wei
        shown = report["money"][addr]
        assert {k: shown[k] for k in ("earned", "lost", "net")} == {k: e[k] for k in ("earned", "lost", "net")}, addr
        assert {t: {k: v[k] for k in ("earned", "lost", "net")} for t, v in shown["tasks"].items()} == e["tasks"], addr
    why = report["money"][honest]["tasks"]["1"]["why"]
    assert "≥ min gain 1000 bps" in why and "bond back" in why  # the reason, inline on the first screen
    noise_why = report["money"][noise]["tasks"]["1"]["why"]  # its reason, by the contract's rule for its score
    assert "< min gain 1000 bps" in noise_why or "≤ 0: no gain" in noise_why, noise_why
    assert "INVALID" in report["money"][copier]["tasks"]["1"]["why"]
    # a verifier with a seat (5 seats drawn by stake from 3 verifiers: one may hold none)
    seated = [a for a in (load_account(f"dev:{i}").address for i in (4, 5, 6)) if "1" in report["money"][a]["tasks"]]
    assert seated and all("verifier fee" in report["money"][a]["tasks"]["1"]["why"] for a in seated)
    assert report["money"][honest]["chartDots"] >= 1  # the earnings chart
    assert report["formats"] == [eth(int(w)) for w in FORMATS] == ["1 wei", "−1 wei", "999999999 wei", "1 gwei",
                                                                     "12.5 gwei", "−0.01 ETH", "0.4595 ETH", "1 ETH"]
    assert report["beforeClaim"] == expected[honest]["claimable"] and report["afterClaim"] == "0"
    assert report["withdrawn"] == expected[honest]["claimable"]  # the withdrawal: a transfer ...
    assert report["withdrawals"] == [expected[honest]["claimable"]]
    assert claimer.call("claimable", honest) == 0  # the claim moved it on chain
    gained = claimer.w3.eth.get_balance(honest) - bal_before
    assert 0 < int(expected[honest]["claimable"]) - gained < 10**16  # claimable arrived, less gas
    assert any("INVALID" in r for r in report["rows"]) and any("accepted" in r for r in report["rows"])
    assert any("rejected" in r for r in report["rows"])  # the noise miner: below min gain
    assert report["preview"].startswith("dreams in ") and report["previewSize"][0] > 200  # a real grid
    assert len(report["thumbs"]) == 3 and all(w >= 100 for w, _ in report["thumbs"])  # each bundle's dreams
    assert report["claimableText"].endswith(" ETH")  # rounded, with a unit
    assert report["mineRows"] == 1  # the connected miner's own row is highlighted
    assert "min gain 1000 bps" in report["params"] and len(report["seats"]) == 5
    sc = report["scores"]  # 3 submissions x 5 seats, each dot against the min gain and the band
    assert sc["minGain"] == 1 and sc["dots"] == 15 and sc["bands"] >= 2 and int(sc["agree"]) >= 10, sc
    n = report["network"]
    stakes = sum(chain.call("stakeOf", load_account(f"dev:{i}").address, on="registry") for i in (4, 5, 6))
    fin = chain.events("Finalized")[0]
    assert n["tasks"] == "1" and n["taskBars"] == 1 and n["stakeRows"] == 3 and n["stake"] == str(stakes), n
    assert n["paid"] == str(fin["minersPaid"] + fin["potPaid"])
    assert report["overflow"]["desktop"] <= 0 and report["overflow"]["phone"] <= 0, report["overflow"]
    assert report["harvest"] == {"hiddenForMiner": True, "command": "codream task harvest 1 --out harvest-task-1",
                                 "rows": 1, "summary": report["harvest"]["summary"]}  # the owner's view only
    assert report["harvest"]["summary"].startswith("1 accepted bundle(s)") and "you put in 1 ETH" in \
        report["harvest"]["summary"]
    for view in ("tasks", "account", "task", "preview", "harvest", "desktop", "phone"):  # screenshots, kept
        assert (ARTIFACTS / f"dapp-{view}.png").stat().st_size > 2_000
    assert shot.exists() and shot.stat().st_size > 10_000


def _serve_dapp(rpc: str, env: dict, *args: str) -> tuple[subprocess.Popen, int]:
    """`codream dapp` on a free port, once it answers /config.json."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "cli", "dapp", "--port", str(port), "--rpc-url", rpc,
                               *args], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/config.json", timeout=1)
            return server, port
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise RuntimeError("codream dapp did not start")


def _banners(port: int, *wanted: str, on_line=None) -> dict:
    proc = subprocess.Popen(["node", str(REPO / "tests" / "dapp" / "banners.mjs"), f"http://127.0.0.1:{port}/",
                             "30000", *wanted], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines = []
    for line in proc.stdout:
        lines.append(json.loads(line))
        if on_line and "banner" in lines[-1]:
            on_line()
    proc.wait(120)
    return lines[-1]


def test_dapp_says_what_is_wrong_with_the_chain_and_recovers(tmp_path):
    """Unreachable RPC, then (once a node answers) no contract at the address; a record
    for another chain id; no deployment record at all. Each gets its own banner."""
    from codream import config

    if not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists():
        pytest.fail("Debian chromium is required for the dapp test (make test installs it)")
    env = {"CODREAM_HOME": str(tmp_path / "home")}
    abi = [{"type": "function", "name": "taskCount", "inputs": [], "outputs": [{"type": "uint256", "name": ""}],
            "stateMutability": "view"}]
    record = {"chain_id": DEVNET_CHAIN_ID, "contracts": {
        "CoDreamMarket": {"address": "0x" + "42" * 20, "abi": abi, "block": 0},
        "StakeRegistry": {"address": "0x" + "43" * 20, "abi": abi},
        "CoDreamAppeals": {"address": "0x" + "44" * 20, "abi": abi},
        "CoDreamLens": {"address": "0x" + "45" * 20, "abi": abi}}}
    rec = tmp_path / "deployment.json"
    rec.write_text(json.dumps(record))
    anvil_port = free_port()
    rpc = f"http://127.0.0.1:{anvil_port}"
    anvil = []

    def start_anvil():  # after the "cannot reach" banner: the page must notice the node by itself
        anvil.append(subprocess.Popen([config.anvil_bin(), "--port", str(anvil_port), "--chain-id",
                                       str(DEVNET_CHAIN_ID)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    server, port = _serve_dapp(rpc, env, "--deployment", str(rec))
    try:
        report = _banners(port, "Cannot reach the chain", "No CoDreamMarket contract at 0x4242",
                          on_line=start_anvil)
        assert report["errors"] == [], report
        assert rpc in report["seen"][0] and "Is the node running?" in report["seen"][0]
        assert "codream devnet up" in report["seen"][1]
        assert report["tasksShown"] == 0  # nothing made up while the chain is wrong
    finally:
        server.terminate()
        server.wait(10)

    other = tmp_path / "sepolia.json"
    other.write_text(json.dumps({**record, "chain_id": 11155111}))
    missing = tmp_path / "nothing-here.json"
    try:
        for path, want in ((other, "is chain 31337, but the deployment record is for chain 11155111"),
                           (missing, f"no deployment record at {missing}")):
            server, port = _serve_dapp(rpc, env, "--deployment", str(path))
            try:
                report = _banners(port, want)
                assert report["errors"] == [] and len(report["seen"]) == 1, report
            finally:
                server.terminate()
                server.wait(10)
    finally:
        for p in anvil:
            p.terminate()
            p.wait(10)


HOSTILE = '"><img src=x onerror="window.__pwned=true;alert(1)"><script>window.__pwned=true</script>'


def test_hostile_cids_from_the_chain_render_as_text(tmp_path, monkeypatch):
    """Anyone can create a task or reveal a CID (the contract checks only their length): a page
    that put them into HTML would run their script in every visitor's page, which on the devnet
    holds dev private keys. They must show as text and as one encoded URL path segment."""
    from rounds import devnet
    from codream.protocol import eval_commitment, miner_commitment

    home = tmp_path / "home"
    monkeypatch.setenv("CODREAM_HOME", str(home))
    a, i = free_port(), free_port()
    st = devnet.up(a, i)
    try:
        rpc = st["anvil"]["rpc_url"]
        owner, miner = Chain(ChainConfig(rpc), load_account("dev:0")), Chain(ChainConfig(rpc), load_account("dev:1"))
        verifier = Chain(ChainConfig(rpc), load_account("dev:2"))
        verifier.send("stake", value=10**18, on="registry")
        verifier.increase_time(verifier.call("WARMUP", on="registry") + 1)
        verifier.send("activate", verifier.account.address, on="registry")
        spec_cid, cid, s = HOSTILE[:120], HOSTILE[::-1][:120], b"\x01" * 32
        receipt = owner.send("createTask", spec_cid, eval_commitment("e", s), 9000, 10**16, 5, 5, 0, 0, 0,
                             [3600] * 5, value=10**18)
        tid = owner.market.events.TaskCreated().process_receipt(receipt)[0]["args"]["taskId"]
        miner.send("commit", tid, miner_commitment(cid, s, miner.account.address, tid, miner.chain_id,
                                                   miner.address), value=10**16)
        miner.increase_time(3601)
        owner.send("revealEval", tid, 0, "e", s)
        owner.send("requestDraw", tid)
        owner.mine(2)
        owner.send("drawCommittee", tid)  # miners reveal after the draw
        miner.send("reveal", tid, 0, cid, s)
        server, port = _serve_dapp(rpc, {"CODREAM_HOME": str(home)}, "--ipfs-api", st["ipfs"]["api"])
        try:
            res = subprocess.run(["node", str(REPO / "tests" / "dapp" / "hostile.mjs"), f"http://127.0.0.1:{port}/",
                                  "onerror"], capture_output=True, text=True, timeout=180, cwd=REPO)
        finally:
            server.terminate()
            server.wait(10)
        report = json.loads(res.stdout.strip().splitlines()[-1])
        assert report["errors"] == [], report
        assert report["pwned"] is False and report["dialogs"] == [] and report["injectedElements"] == 0, report
        assert report["hostileInTitles"], report  # shown as text (the full CID is the link's title)
        gateway = f"http://127.0.0.1:{i}/ipfs/"  # the gateway of --ipfs-api, as the CLI reads it
        for link in report["taskLinks"] + report["subLinks"]:  # one encoded segment under the gateway
            assert link["href"].startswith(gateway) and "<" not in link["href"], link
    finally:
        devnet.down(a, i)
