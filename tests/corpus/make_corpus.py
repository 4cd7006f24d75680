"""Regenerate the committed hostile-bundle corpus: `python tests/corpus/make_corpus.py`.

Each file is a bundle for the digits reference task bound to REF (below) that must be
rejected with the code recorded in manifest.json. The files are committed so the
corpus is fixed; this script documents how each was made.
"""
import json
import pickle
import struct
from pathlib import Path

import torch
from safetensors.torch import save

HERE = Path(__file__).parent
REF = {"chain_id": 31337, "contract": "0x" + "ab" * 20, "task_id": 7, "miner": "0x" + "cd" * 20}
META = {"format": "codream.bundle/1", "chain_id": "31337", "contract": REF["contract"], "task_id": "7",
        "miner": REF["miner"]}


def good_images(n=200, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)


def st(tensors, meta=META):
    return save(tensors, metadata=meta)


def header_only(header: dict, data: bytes = b"") -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h)) + h + data


def cases():
    ok = st({"images": good_images()})
    yield "empty", b"", "empty"
    yield "truncated_length", ok[:5], "truncated"
    yield "truncated_header", ok[:40], "truncated"
    yield "truncated_data", ok[:-100], "truncated"
    yield "not_safetensors_text", b"hello, I am a bundle, trust me" * 3, "not_a_bundle"
    yield "pickle", pickle.dumps({"images": [1, 2, 3]}), "not_safetensors"
    yield "zip_torch_save", b"PK\x03\x04" + bytes(200), "not_safetensors"
    yield "huge_header_claim", struct.pack("<Q", 1 << 40) + b"{}", "header_too_large"
    yield "lying_header_offsets", header_only({"images": {"dtype": "U8", "shape": [200, 1, 8, 8],
                                                          "data_offsets": [0, 10]}}, bytes(10)), "size_mismatch"
    yield "header_not_json", struct.pack("<Q", 10) + b"{not json}", "not_safetensors"
    yield "header_json_list", header_only([1, 2, 3]), "not_safetensors"
    yield "wrong_dtype_float", st({"images": good_images().float()}), "wrong_dtype"
    yield "wrong_dtype_int64", st({"images": good_images().long()}), "wrong_dtype"
    yield "two_tensors", st({"images": good_images(), "labels": torch.zeros(200, dtype=torch.int64)}), "tensor_count"
    yield "wrong_tensor_name", st({"dreams": good_images()}), "tensor_count"
    yield "wrong_shape_rgb", st({"images": torch.zeros(200, 3, 8, 8, dtype=torch.uint8)}), "wrong_shape"
    yield "wrong_shape_3d", st({"images": torch.zeros(200, 8, 8, dtype=torch.uint8)}), "wrong_shape"
    yield "too_few_images", st({"images": good_images(10)}), "too_few_images"
    yield "too_many_images", st({"images": good_images(5001)}), "too_many_images"
    yield "no_metadata", st({"images": good_images()}, meta=None), "wrong_format_version"
    yield "wrong_format_version", st({"images": good_images()}, {**META, "format": "codream.bundle/0"}), \
        "wrong_format_version"
    yield "wrong_chain", st({"images": good_images()}, {**META, "chain_id": "1"}), "wrong_chain"
    yield "wrong_contract", st({"images": good_images()}, {**META, "contract": "0x" + "ee" * 20}), "wrong_contract"
    yield "wrong_task", st({"images": good_images()}, {**META, "task_id": "8"}), "wrong_task"
    yield "wrong_miner", st({"images": good_images()}, {**META, "miner": "0x" + "99" * 20}), "wrong_miner"
    yield "all_constant", st({"images": torch.full((200, 1, 8, 8), 128, dtype=torch.uint8)}), "constant_images"
    yield "mode_collapse", st({"images": good_images(1).repeat(200, 1, 1, 1)}), "self_duplicates"
    # a copy of the earlier submission `earlier.safetensors`, shuffled and re-encoded
    earlier = good_images(300, seed=42)
    yield "duplicate_of_earlier", st({"images": earlier[torch.randperm(300)][:250]}), "duplicate_of_other_submission"
    (HERE / "earlier.images.safetensors").write_bytes(save({"images": earlier}))


if __name__ == "__main__":
    manifest = {}
    for name, data, code in cases():
        (HERE / f"{name}.bundle").write_bytes(data)
        manifest[name] = code
    (HERE / "manifest.json").write_text(json.dumps({"binding": REF, "expected": manifest}, indent=2))
    print(f"wrote {len(manifest)} hostile bundles")
