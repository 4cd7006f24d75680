"""The Kubo RPC client against the real local node process: round trips, pins, errors."""
import json
import os
import urllib.request

import pytest

from ipfs import (CidNotFound, ContentTooLarge, InvalidCid, IpfsClient, IpfsUnavailable, cid_of_bytes,
                  cid_of_file)
from ipfs.cid import KUBO_LEGACY_V0
from tests.conftest import free_port, run_cli


@pytest.fixture
def big_file(tmp_path):
    f = tmp_path / "dreams.bin"
    f.write_bytes(os.urandom(3 * 1024 * 1024 + 12345))  # 4 chunks of 1 MiB
    return f


def test_multi_mb_file_round_trips_byte_identical_with_the_same_cid(ipfs_node, big_file, tmp_path):
    client = IpfsClient(ipfs_node.api)
    cid = client.add_file(big_file)
    assert cid == cid_of_file(big_file)
    assert cid.startswith("bafybei")  # a dag-pb root over raw leaves
    assert client.cat(cid) == big_file.read_bytes()
    out = tmp_path / "back.bin"
    client.cat_to_file(cid, out)
    assert out.read_bytes() == big_file.read_bytes()
    assert client.is_pinned(cid)


def test_pins_survive_a_node_restart(ipfs_node, big_file):
    client = IpfsClient(ipfs_node.api)
    cid = client.add_file(big_file)
    small = client.add_bytes(b"keep me")
    client.unpin(small)
    ipfs_node.stop()
    ipfs_node.start()
    client = IpfsClient(ipfs_node.api)
    assert client.pins() == [cid]
    assert client.cat(cid) == big_file.read_bytes()


def test_stat_reports_the_root_block_size(ipfs_node):
    client = IpfsClient(ipfs_node.api)
    cid = client.add_bytes(b"hello world")
    assert client.stat(cid) == {"cid": cid, "block_size": 11}


def test_unknown_cid_is_a_clear_not_found(ipfs_node):
    client = IpfsClient(ipfs_node.api)
    unknown = cid_of_bytes(b"nobody added this")
    with pytest.raises(CidNotFound, match="not found"):
        client.cat(unknown)
    with pytest.raises(CidNotFound):
        client.stat(unknown)
    with pytest.raises(CidNotFound):
        client.unpin(unknown)


def test_invalid_cid_string_is_refused_before_any_request(ipfs_node):
    with pytest.raises(InvalidCid, match="not a CID"):
        IpfsClient(ipfs_node.api).cat("not-a-cid")


def test_node_down_is_a_clear_unavailable_error():
    client = IpfsClient(f"/ip4/127.0.0.1/tcp/{free_port()}/http", timeout=3)
    with pytest.raises(IpfsUnavailable, match="codream devnet up"):
        client.add_bytes(b"x")
    with pytest.raises(IpfsUnavailable):
        client.cat(cid_of_bytes(b"x"))


def test_processes_fetching_one_cid_into_one_cache_do_not_trip_over_each_other(ipfs_node, big_file, tmp_path):
    """Agents share $CODREAM_HOME's cache: two miners fetched the same teacher at once and one
    died when the other's rename took its temporary file (each now writes its own)."""
    import subprocess
    import sys

    cid = IpfsClient(ipfs_node.api).add_file(big_file)
    out = tmp_path / "cache" / cid
    out.parent.mkdir()
    code = ("import sys; from ipfs import IpfsClient; c = IpfsClient(sys.argv[1])\n"
            "for _ in range(5): c.cat_to_file(sys.argv[2], sys.argv[3])")
    procs = [subprocess.Popen([sys.executable, "-c", code, ipfs_node.api, cid, str(out)], stderr=subprocess.PIPE)
             for _ in range(4)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert out.read_bytes() == big_file.read_bytes() and list(out.parent.glob("*.part")) == []


def test_content_over_the_limit_is_refused_and_no_partial_file_is_left(ipfs_node, big_file, tmp_path):
    client = IpfsClient(ipfs_node.api)
    cid = client.add_file(big_file)
    out = tmp_path / "out.bin"
    with pytest.raises(ContentTooLarge, match="larger than the limit"):
        client.cat_to_file(cid, out, max_bytes=1024 * 1024)
    assert not out.exists()
    assert list(tmp_path.glob(".out.bin*")) == []


def test_cli_add_and_cat_through_the_node(ipfs_node, big_file, tmp_path):
    env = {"CODREAM_IPFS_API": ipfs_node.api}
    res = run_cli("ipfs", "add", str(big_file), env=env)
    assert res.returncode == 0, res.stderr
    cid = res.stdout.decode().strip()
    assert cid == cid_of_file(big_file)
    out = tmp_path / "cat.bin"
    res = run_cli("ipfs", "cat", cid, "-o", str(out), env=env)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == big_file.read_bytes()
    res = run_cli("ipfs", "cat", "bogus", env=env)
    assert res.returncode == 1 and b"error:" in res.stderr and b"Traceback" not in res.stderr


def _post(url: str, body: bytes = b"", headers=None):
    req = urllib.request.Request(url, body, headers or {}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


def test_node_follows_kubo_defaults_for_cidv0_adds(ipfs_node):
    boundary = "xyz"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"h\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\nhello world\r\n--{boundary}--\r\n").encode()
    out = _post(f"http://127.0.0.1:{ipfs_node.port}/api/v0/add?pin=false", body,
                {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert json.loads(out)["Hash"] == cid_of_bytes(b"hello world", KUBO_LEGACY_V0)


def test_gateway_serves_content_and_says_404_for_unknown(ipfs_node):
    client = IpfsClient(ipfs_node.api)
    cid = client.add_bytes(b"gateway bytes")
    with urllib.request.urlopen(f"http://127.0.0.1:{ipfs_node.port}/ipfs/{cid}", timeout=10) as r:
        assert r.read() == b"gateway bytes"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{ipfs_node.port}/ipfs/{cid_of_bytes(b'nope')}", timeout=10)
    assert exc.value.code == 404


def test_the_gateway_is_found_from_the_same_api_setting_as_the_cli(ipfs_node, monkeypatch):
    """`codream dapp` links CIDs to the gateway at the host and port of $CODREAM_IPFS_API (or
    --ipfs-api): on the dev node that URL serves the content."""
    from ipfs import IpfsError, gateway_url

    monkeypatch.setenv("CODREAM_IPFS_API", ipfs_node.api)
    url = gateway_url()
    assert url == f"http://127.0.0.1:{ipfs_node.port}/ipfs/"
    cid = IpfsClient(ipfs_node.api).add_bytes(b"through the gateway")
    assert urllib.request.urlopen(url + cid, timeout=10).read() == b"through the gateway"
    assert gateway_url("http://localhost:5101") == "http://localhost:5101/ipfs/"
    assert gateway_url("/dns/ipfs.example/tcp/443/https") == "https://ipfs.example:443/ipfs/"
    with pytest.raises(IpfsError, match="bad IPFS API address 'nonsense'"):
        gateway_url("nonsense")


def test_rpc_refuses_get_like_kubo(ipfs_node):
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(f"http://127.0.0.1:{ipfs_node.port}/api/v0/version", timeout=10)
    assert exc.value.code == 405
