"""Dream bundles: one safetensors file, ``images`` uint8 [N, C, H, W], with metadata
binding it to (format version, chain id, contract, task id, miner address).

``inspect_header`` parses the header by hand with hard bounds *before* the
safetensors library touches the file, so hostile files fail fast with a reason.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load

FORMAT = "codream.bundle/1"
MAX_HEADER_BYTES = 64 * 1024
TENSOR = "images"


@dataclass(frozen=True)
class Binding:
    chain_id: int
    contract: str
    task_id: int
    miner: str

    def metadata(self) -> dict[str, str]:
        return {"format": FORMAT, "chain_id": str(self.chain_id), "contract": self.contract.lower(),
                "task_id": str(self.task_id), "miner": self.miner.lower()}


class BundleError(ValueError):
    """A bundle is malformed. ``code`` is machine-readable, the message says why."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def to_bytes(images: torch.Tensor, binding: Binding, receipt: str | None = None) -> bytes:
    """Canonical safetensors bytes: the library's writer orders metadata from a hash map,
    so equal bundles could differ in bytes (and CIDs). One uint8 tensor is simple enough
    to serialise exactly per the safetensors spec: u64 header length, JSON header with
    sorted keys padded with spaces to 8 bytes, raw data. ``receipt``: the synthesis receipt's
    JSON (``codream.receipt``), stored under the metadata key ``receipt``."""
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise ValueError(f"bundle images must be uint8 [N,C,H,W], got {images.dtype} {tuple(images.shape)}")
    data = images.contiguous().numpy().tobytes()
    meta = binding.metadata()
    if receipt is not None:
        meta["receipt"] = receipt
    header = {"__metadata__": meta,
              TENSOR: {"dtype": "U8", "shape": list(images.shape), "data_offsets": [0, len(data)]}}
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def write(path: str | Path, images: torch.Tensor, binding: Binding, receipt: str | None = None) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(to_bytes(images, binding, receipt))
    tmp.replace(path)
    return path


@dataclass
class Header:
    shape: tuple[int, ...]
    dtype: str
    metadata: dict[str, str]
    data_bytes: int


# file signatures, to name what a file that is not a bundle is instead
SIGNATURES = [(b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
              (b"BM", "a BMP image"), (b"%PDF", "a PDF document"), (b"\x1f\x8b", "gzip data"),
              (b"\x93NUMPY", "a NumPy .npy array"), (b"\x7fELF", "an executable (ELF)"),
              (b"7z\xbc\xaf", "a 7-Zip archive"), (b"BZh", "bzip2 data"), (b"\xfd7zXZ\x00", "xz data")]


def sniff(data: bytes) -> str | None:
    """What a file is, by its first bytes, when that is a known file type or text; else None."""
    for magic, name in SIGNATURES:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a WebP image"
    for cut in range(4):  # a character split at the 64th byte is still text
        try:
            text = data[:64 - cut].decode()
        except UnicodeDecodeError:
            continue
        if text and all(c.isprintable() or c in "\t\r\n" for c in text):
            return f"text ({text[:24]!r}…)" if len(data) > 24 else f"text ({text!r})"
        return None
    return None


def what_it_is(data: bytes) -> str:
    """A short human description of bytes that are not a bundle."""
    return sniff(data) or f"{len(data)} bytes of something else (starting {data[:8].hex()})"


def inspect_header(data: bytes) -> Header:
    """Bounds-checked parse of a safetensors header holding exactly one tensor."""
    if len(data) == 0:
        raise BundleError("empty", "the file is empty")
    if data[:1] == b"\x80" or data[:2] in (b"PK",):
        raise BundleError("not_safetensors", "looks like a pickle/zip (torch.save), not safetensors; refusing it")
    if len(data) < 8:
        raise BundleError("truncated", f"{len(data)} bytes: too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if (n > MAX_HEADER_BYTES or 8 + n > len(data)) and (data[8:9] != b"{" or sniff(data) is not None):
        # a bundle starts with a (small) header length, then its JSON header: this is some other file
        raise BundleError("not_a_bundle", f"this is {what_it_is(data)}, not a bundle (a safetensors file of dreams, "
                                          "from `codream miner dream`)")
    if n > MAX_HEADER_BYTES:
        raise BundleError("header_too_large", f"header claims {n} bytes; the limit is {MAX_HEADER_BYTES}")
    if 8 + n > len(data):
        raise BundleError("truncated", f"header claims {n} bytes but the file has {len(data) - 8} after the length")
    try:
        header = json.loads(data[8:8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise BundleError("not_safetensors", f"header is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise BundleError("not_safetensors", "header is not a JSON object")
    meta = header.pop("__metadata__", {}) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise BundleError("bad_metadata", "__metadata__ must map strings to strings")
    if list(header) != [TENSOR]:
        raise BundleError("tensor_count", f"expected exactly one tensor named {TENSOR!r}, got {sorted(header)[:5]}")
    t = header[TENSOR]
    if not isinstance(t, dict):
        raise BundleError("not_safetensors", "tensor entry is not an object")
    if t.get("dtype") != "U8":
        raise BundleError("wrong_dtype", f"images must be uint8 (U8), got {t.get('dtype')!r}")
    shape = t.get("shape")
    if not isinstance(shape, list) or len(shape) != 4 or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise BundleError("wrong_shape", f"images must be [N, C, H, W], got {shape!r}")
    size = shape[0] * shape[1] * shape[2] * shape[3]
    if t.get("data_offsets") != [0, size]:
        raise BundleError("size_mismatch", f"data_offsets {t.get('data_offsets')} disagree with shape {shape}")
    if len(data) != 8 + n + size:
        raise BundleError("size_mismatch" if len(data) > 8 + n + size else "truncated",
                          f"file has {len(data) - 8 - n} data bytes, shape {shape} needs {size}")
    return Header(tuple(shape), "U8", meta, size)


def read_header_file(path: str | Path) -> dict[str, str]:
    """The metadata a bundle file claims, reading only its (bounded) header; ``{}`` if the
    file has none or is not a bundle (validation then says what is wrong)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return {}
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                return {}
            meta = json.loads(fh.read(n)).get("__metadata__") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in meta.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(meta, dict) else {}


def claimed_binding(path: str | Path) -> Binding:
    """The binding a bundle claims (offline scoring has no chain to ask)."""
    m = read_header_file(path)
    try:
        return Binding(int(m.get("chain_id", "0")), m.get("contract", ""), int(m.get("task_id", "0")),
                       m.get("miner", ""))
    except ValueError:
        return Binding(0, "", 0, "")


def read(data: bytes) -> tuple[torch.Tensor, Header]:
    """Parse and load a bundle (header checked first). Raises BundleError."""
    header = inspect_header(data)
    try:
        images = load(data)[TENSOR]
    except Exception as exc:  # the library's own checks, after ours
        raise BundleError("not_safetensors", f"safetensors refused it: {exc}") from None
    return images, header
