"""`codream devnet up|status|down` starts and stops real anvil + the IPFS node."""
import json
import socket

from tests.conftest import free_port, run_cli


def test_devnet_up_status_down(codream_home):
    a, i = str(free_port()), str(free_port())
    res = run_cli("devnet", "up", "--anvil-port", a, "--ipfs-port", i)
    try:
        assert res.returncode == 0, res.stderr
        st = json.loads(res.stdout)
        assert st["anvil"]["chain_id"] == 31337
        assert st["ipfs"]["version"]
        assert (codream_home / "devnet" / "anvil.pid").exists()
        rec = json.loads((codream_home / "devnet" / "deployment.json").read_text())
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(st["anvil"]["rpc_url"]))
        assert len(w3.eth.get_code(rec["contracts"]["CoDreamMarket"]["address"])) > 0
        res = run_cli("devnet", "status", "--anvil-port", a, "--ipfs-port", i)
        assert json.loads(res.stdout)["anvil"]["pid"] == st["anvil"]["pid"]
    finally:
        res = run_cli("devnet", "down", "--anvil-port", a, "--ipfs-port", i)
    assert "anvil" in res.stdout.decode() and "ipfs" in res.stdout.decode()
    for port in (a, i):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", int(port))) != 0
    assert not (codream_home / "devnet" / "anvil.pid").exists()


def test_devnet_up_refuses_a_busy_port(codream_home):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        res = run_cli("devnet", "up", "--anvil-port", port, "--ipfs-port", str(free_port()))
        run_cli("devnet", "down", "--anvil-port", port)
    assert res.returncode == 1
    assert "already in use" in res.stderr.decode()


def test_a_fresh_devnet_gets_fresh_agent_state(codream_home):
    """`make demo` twice: anvil deploys the market to the same address every time, so agent
    state must be keyed by the chain instance too, or the second demo's agents think task 1 is
    already settled (issue: the second run hung, then timed out)."""
    import time

    from rounds import devnet
    from codream.agent import AgentState, chain_key
    from codream.chain import Chain, ChainConfig, load_account

    a, i = free_port(), free_port()
    keys, addresses = [], []
    for _ in range(2):
        st = devnet.up(a, i)
        try:
            chain = Chain(ChainConfig(st["anvil"]["rpc_url"]), load_account("dev:4"))
            keys.append(chain_key(chain))
            addresses.append(chain.address)
            state = AgentState("miner", chain.account.address, keys[-1])
            assert state.data["tasks"] == {}  # nothing carried over from the first devnet
            state.task(1).update(stage="done")
            state.save()
        finally:
            devnet.down(a, i)
        time.sleep(1.1)  # anvil's genesis timestamp has a one-second resolution
    assert addresses[0] == addresses[1]  # the same contract address ...
    assert keys[0] != keys[1]  # ... on another chain instance: another state file
