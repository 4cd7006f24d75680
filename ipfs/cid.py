"""Content identifiers exactly as Kubo computes them for UnixFS files.

The default profile is Kubo's ``unixfs-v1-2025`` (CIDv1, raw leaves, 1 MiB fixed
chunks, balanced DAG, at most 1024 links per node). ``Profile`` exposes each
parameter so the legacy CIDv0 defaults (dag-pb leaves, 256 KiB chunks, 174 links)
are reproducible too; the vectors in ``tests/test_cid.py`` prove both.

We encode dag-pb, UnixFS protobuf, base32 and base58 by hand: each is a few lines,
the bytes must be exact, and no maintained Python package implements Kubo's
balanced UnixFS importer. The layout mirrors go-unixfs ``importer/balanced``.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

RAW = 0x55
DAG_PB = 0x70
SHA2_256 = 0x12

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class InvalidCidError(ValueError):
    """A string is not a CID we can use (malformed, or an unsupported codec/hash)."""


@dataclass(frozen=True)
class Profile:
    """How a file becomes a DAG. Defaults: Kubo ``unixfs-v1-2025``."""

    cid_version: int = 1
    raw_leaves: bool = True
    chunk_size: int = 1 << 20
    max_links: int = 1024

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        if self.cid_version == 0 and self.raw_leaves:
            raise ValueError("CIDv0 cannot address raw leaves; use raw_leaves=False")
        if self.chunk_size < 1 or self.max_links < 2:
            raise ValueError("chunk_size must be >= 1 and max_links >= 2")

    @property
    def chunker(self) -> str:
        """The Kubo ``chunker`` argument for this profile."""
        return f"size-{self.chunk_size}"


UNIXFS_V1_2025 = Profile()
KUBO_LEGACY_V0 = Profile(cid_version=0, raw_leaves=False, chunk_size=256 * 1024, max_links=174)


# --------------------------------------------------------------------------- encodings
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InvalidCidError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, pos


def _field_bytes(num: int, data: bytes) -> bytes:
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _field_varint(num: int, value: int) -> bytes:
    return _varint(num << 3) + _varint(value)


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        i = _B58.find(ch)
        if i < 0:
            raise InvalidCidError(f"invalid base58 character {ch!r}")
        n = n * 58 + i
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


# --------------------------------------------------------------------------- CIDs
@dataclass(frozen=True)
class CID:
    """A parsed CID: version, codec and sha2-256 digest."""

    version: int
    codec: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        return bytes([SHA2_256, len(self.digest)]) + self.digest

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return _varint(1) + _varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    @classmethod
    def of_block(cls, block: bytes, codec: int, version: int = 1) -> "CID":
        if version == 0 and codec != DAG_PB:
            raise ValueError("CIDv0 is always dag-pb")
        return cls(version, codec, hashlib.sha256(block).digest())

    @classmethod
    def parse(cls, text: str) -> "CID":
        """Parse a CID string; raise InvalidCidError saying why it is not one."""
        if not isinstance(text, str) or not text:
            raise InvalidCidError("empty CID")
        text = text.strip()
        if text.startswith("Qm") and len(text) == 46:
            mh = b58decode(text)
            if len(mh) != 34 or mh[0] != SHA2_256 or mh[1] != 32:
                raise InvalidCidError(f"{text!r} is not a sha2-256 CIDv0")
            return cls(0, DAG_PB, mh[2:])
        if text[0] != "b":
            raise InvalidCidError(
                f"{text!r} is not a CID: expected CIDv0 ('Qm…') or base32 CIDv1 ('b…')")
        body = text[1:].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError as exc:
            raise InvalidCidError(f"{text!r} is not valid base32: {exc}") from None
        version, pos = _read_varint(raw, 0)
        if version != 1:
            raise InvalidCidError(f"{text!r}: unsupported CID version {version}")
        codec, pos = _read_varint(raw, pos)
        if codec not in (RAW, DAG_PB):
            raise InvalidCidError(f"{text!r}: unsupported codec 0x{codec:x} (want raw or dag-pb)")
        code, pos = _read_varint(raw, pos)
        size, pos = _read_varint(raw, pos)
        digest = raw[pos:]
        if code != SHA2_256 or size != 32 or len(digest) != 32:
            raise InvalidCidError(f"{text!r}: only sha2-256 multihashes are supported")
        return cls(1, codec, digest)


def _cid_from_binary(raw: bytes) -> CID:
    if raw[:2] == bytes([SHA2_256, 32]) and len(raw) == 34:
        return CID(0, DAG_PB, raw[2:])
    version, pos = _read_varint(raw, 0)
    codec, pos = _read_varint(raw, pos)
    code, pos = _read_varint(raw, pos)
    size, pos = _read_varint(raw, pos)
    if version != 1 or code != SHA2_256 or size != 32:
        raise InvalidCidError("unsupported binary CID in a dag-pb link")
    return CID(1, codec, raw[pos:pos + 32])


def normalize_cid(text: str) -> str:
    """Validate a CID string and return its canonical text form."""
    return str(CID.parse(text))


# --------------------------------------------------------------------------- dag-pb + UnixFS
def _unixfs_file(data: bytes | None, filesize: int, blocksizes: list[int]) -> bytes:
    out = _field_varint(1, 2)  # Type = File
    if data:
        out += _field_bytes(2, data)
    out += _field_varint(3, filesize)
    for size in blocksizes:
        out += _field_varint(4, size)
    return out


@dataclass(frozen=True)
class Link:
    cid: CID
    tsize: int  # block size of the child plus all of its descendants
    filesize: int  # file bytes below the child


def encode_dag_pb(links: list[Link], data: bytes) -> bytes:
    """A dag-pb PBNode: links first (each with a present-but-empty Name), then Data."""
    out = b""
    for link in links:
        body = _field_bytes(1, link.cid.to_bytes()) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        out += _field_bytes(2, body)
    return out + _field_bytes(1, data)


def decode_dag_pb(block: bytes) -> tuple[list[tuple[CID, int]], bytes]:
    """Parse a dag-pb node into ([(child CID, tsize)], UnixFS data bytes)."""
    links: list[tuple[CID, int]] = []
    data = b""
    pos = 0
    while pos < len(block):
        key, pos = _read_varint(block, pos)
        num, wire = key >> 3, key & 7
        if wire != 2:
            raise InvalidCidError("malformed dag-pb node")
        size, pos = _read_varint(block, pos)
        body, pos = block[pos:pos + size], pos + size
        if num == 1:
            data = body
        elif num == 2:
            cid, tsize, p = None, 0, 0
            while p < len(body):
                k, p = _read_varint(body, p)
                if k & 7 == 2:
                    n, p = _read_varint(body, p)
                    if k >> 3 == 1:
                        cid = _cid_from_binary(body[p:p + n])
                    p += n
                else:
                    v, p = _read_varint(body, p)
                    if k >> 3 == 3:
                        tsize = v
            if cid is None:
                raise InvalidCidError("dag-pb link without a CID")
            links.append((cid, tsize))
    return links, data


def unixfs_data(data_field: bytes) -> bytes:
    """The file bytes carried inline by a UnixFS node (a dag-pb leaf)."""
    pos = 0
    out = b""
    while pos < len(data_field):
        key, pos = _read_varint(data_field, pos)
        if key & 7 == 2:
            n, pos = _read_varint(data_field, pos)
            if key >> 3 == 2:
                out = data_field[pos:pos + n]
            pos += n
        else:
            _, pos = _read_varint(data_field, pos)
    return out


# --------------------------------------------------------------------------- the importer
BlockSink = Callable[[CID, bytes], None]


def _chunks(stream: BinaryIO, size: int) -> Iterator[bytes]:
    first = True
    while True:
        chunk = stream.read(size)
        # short reads from pipes: keep filling the chunk
        while chunk and len(chunk) < size:
            more = stream.read(size - len(chunk))
            if not more:
                break
            chunk += more
        if not chunk:
            if first:
                yield b""  # an empty file is one empty leaf
            return
        first = False
        yield chunk


class _Builder:
    def __init__(self, profile: Profile, sink: BlockSink | None):
        self.p = profile
        self.sink = sink

    def _emit(self, block: bytes, codec: int) -> CID:
        cid = CID.of_block(block, codec, self.p.cid_version)
        if self.sink is not None:
            self.sink(cid, block)
        return cid

    def leaf(self, chunk: bytes) -> Link:
        if self.p.raw_leaves:
            return Link(self._emit(chunk, RAW), len(chunk), len(chunk))
        block = encode_dag_pb([], _unixfs_file(chunk, len(chunk), []))
        return Link(self._emit(block, DAG_PB), len(block), len(chunk))

    def node(self, children: list[Link]) -> Link:
        filesize = sum(c.filesize for c in children)
        block = encode_dag_pb(children, _unixfs_file(None, filesize, [c.filesize for c in children]))
        return Link(self._emit(block, DAG_PB), len(block) + sum(c.tsize for c in children), filesize)


def import_stream(stream: BinaryIO, profile: Profile = UNIXFS_V1_2025,
                  sink: BlockSink | None = None) -> CID:
    """Chunk a stream into a balanced UnixFS DAG; return the root CID.

    Memory is bounded by ``max_links`` links per level plus one chunk, whatever the
    file size: the balanced layout fills subtrees left to right, so each level only
    holds the links of the node it is filling (go-unixfs ``importer/balanced``).
    ``sink(cid, block)`` receives every block (the local node stores them).
    """
    b = _Builder(profile, sink)
    chunks = _chunks(stream, profile.chunk_size)
    first = b.leaf(next(chunks))
    pending = next(chunks, None)
    if pending is None:
        return first.cid  # a single chunk is its own root

    def fill(depth: int) -> Link | None:
        """Build one full-as-possible subtree of ``depth`` from the next chunks."""
        nonlocal pending
        if pending is None:
            return None
        children: list[Link] = []
        while len(children) < profile.max_links and pending is not None:
            if depth == 1:
                children.append(b.leaf(pending))
                pending = next(chunks, None)
            else:
                sub = fill(depth - 1)
                assert sub is not None
                children.append(sub)
        return b.node(children)

    root, depth = first, 0
    while pending is not None:
        depth += 1
        # grow one level: the old root becomes the first child of a new root
        children = [root]
        while len(children) < profile.max_links and pending is not None:
            if depth == 1:
                children.append(b.leaf(pending))
                pending = next(chunks, None)
            else:
                children.append(fill(depth - 1))  # type: ignore[arg-type]
        root = b.node(children)
    return root.cid


def cid_of_bytes(data: bytes, profile: Profile = UNIXFS_V1_2025, sink: BlockSink | None = None) -> str:
    import io

    return str(import_stream(io.BytesIO(data), profile, sink))


def cid_of_file(path: str | Path, profile: Profile = UNIXFS_V1_2025, sink: BlockSink | None = None) -> str:
    with open(path, "rb") as fh:
        return str(import_stream(fh, profile, sink))
