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
