"""Our CIDs equal Kubo's: every vector in shared/reference/cid-vectors.md."""
import hashlib

import pytest
from Crypto.Cipher import ChaCha20

from ipfs.cid import CID, KUBO_LEGACY_V0, UNIXFS_V1_2025, InvalidCidError, Profile, cid_of_bytes, decode_dag_pb
from tests.conftest import run_cli


def kubo_deterministic(n: int, seed: str = "chunk-v1-seed") -> bytes:
    """Kubo's test generator: ChaCha20 keystream, key = sha256(seed), zero nonce."""
    return ChaCha20.new(key=hashlib.sha256(seed.encode()).digest(), nonce=bytes(12)).encrypt(bytes(n))


V1_DAGPB_LEAVES = Profile(cid_version=1, raw_leaves=False)

VECTORS = [
    (b"hello world", KUBO_LEGACY_V0, "Qmf412jQZiuVUtdgnB36FXFX7xg5V6KEbSJ4dpQuhkLyfD"),
    (b"hello world", UNIXFS_V1_2025, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
    (b"hello world", V1_DAGPB_LEAVES, "bafybeihykld7uyxzogax6vgyvag42y7464eywpf55gxi5qpoisibh3c5wa"),
    (b"hello world\n", KUBO_LEGACY_V0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
    (b"hello world\n", UNIXFS_V1_2025, "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
    (b"hello, world!", KUBO_LEGACY_V0, "QmQy2Dw4Wk7rdJKjThjYXzfFJNaRKRHhHP5gHHXroJMYxk"),
    (b"hello, world!", UNIXFS_V1_2025, "bafkreidi4zlleupgp2bvrpxyja5lbvi4mym7hz5bvhyoowby2qp7g2hxfa"),
    (b"hello, world!", V1_DAGPB_LEAVES, "bafybeibhbcn7k7o2m6xsqkrlfiokod3nxwe47viteynhruh6uqx7hvkjfu"),
    (b"", KUBO_LEGACY_V0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
    (b"", UNIXFS_V1_2025, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (bytes(1_000_000), KUBO_LEGACY_V0, "QmXXNNbwe4zzpdMg62ZXvnX1oU7MwSrQ3vAEtuwFKCm1oD"),
    (b"aoeuidhtns" * 200, Profile(0, False, 4, 174), "QmRo11d4QJrST47aaiGVJYwPhoNA4ihRpJ5WaxBWjWDwbX"),
    (kubo_deterministic(1_048_576), UNIXFS_V1_2025, "bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta"),
    (kubo_deterministic(1_048_577), UNIXFS_V1_2025, "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"),
]


@pytest.mark.parametrize("data,profile,expected", VECTORS, ids=[v[2][:14] for v in VECTORS])
def test_cid_matches_kubo_vector(data, profile, expected):
    assert cid_of_bytes(data, profile) == expected


@pytest.mark.parametrize("data,profile,expected", [VECTORS[1], VECTORS[0], VECTORS[10], VECTORS[13]],
                         ids=["v1-raw", "v0", "v0-four-leaves", "v1-two-chunks"])
def test_cli_only_hash_prints_exactly_the_vector(tmp_path, data, profile, expected):
    f = tmp_path / "input"
    f.write_bytes(data)
    args = ["ipfs", "add", "--only-hash", str(f)]
    if profile.cid_version == 0:
        args += ["--cid-version", "0"]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == expected + "\n"


def test_two_level_tree_links_carry_empty_names_and_cumulative_tsize():
    blocks = {}
    root = cid_of_bytes(b"aoeuidhtns" * 200, Profile(0, False, 4, 174), lambda c, b: blocks.__setitem__(str(c), b))
    links, _ = decode_dag_pb(blocks[root])
    assert len(links) == 3  # 500 chunks / 174 links per node
    child, tsize = links[0]
    child_links, _ = decode_dag_pb(blocks[str(child)])
    assert len(child_links) == 174
    assert tsize == len(blocks[str(child)]) + sum(t for _, t in child_links)


@pytest.mark.parametrize("text", ["", "hello", "Qm123", "bafy!!!", "zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA",
                                  "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5"])
def test_invalid_cid_strings_are_rejected_with_a_reason(text):
    with pytest.raises(InvalidCidError) as exc:
        CID.parse(text)
    assert str(exc.value)


def test_parse_round_trips_both_versions():
    for text in ("QmRo11d4QJrST47aaiGVJYwPhoNA4ihRpJ5WaxBWjWDwbX",
                 "bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64"):
        assert str(CID.parse(text)) == text
