"""A small local IPFS node for devnets and tests: ``codream ipfs serve``.

It speaks the subset of the Kubo RPC API that ``ipfs.client`` uses, plus a
read-only ``GET /ipfs/{cid}`` gateway on the same port:

    POST /api/v0/add        multipart upload -> newline-delimited JSON
    POST /api/v0/cat        arg, offset, length
    POST /api/v0/pin/add    arg          POST /api/v0/pin/rm   arg
    POST /api/v0/pin/ls     [arg]        POST /api/v0/block/stat arg
    POST /api/v0/version    POST /api/v0/id

Blocks live on disk under ``<repo>/blocks`` keyed by multihash (so CIDv0 and
CIDv1 of one block are one file), written atomically; pins live in
``<repo>/pins.json`` and survive restarts. It binds loopback by default.
It has no networking of its own: production users run Kubo (see docs/ipfs.md).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from aiohttp import web

from .cid import CID, DAG_PB, InvalidCidError, Profile, decode_dag_pb, import_stream, unixfs_data

VERSION = "0.40.0-codream-devnode"
DEFAULT_MAX_ADD_BYTES = 4 << 30


class BlockNotFound(KeyError):
    pass


def _kubo_error(message: str, status: int = 500) -> web.Response:
    return web.json_response({"Message": message, "Code": 0, "Type": "error"}, status=status)


class Repo:
    """Blocks on disk by multihash, and a pin set that survives restarts."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.blocks = self.root / "blocks"
        self.tmp = self.root / "tmp"
        self.blocks.mkdir(parents=True, exist_ok=True)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._pins_file = self.root / "pins.json"
        self._lock = threading.Lock()
        self.pins: set[str] = set()
        if self._pins_file.exists():
            self.pins = set(json.loads(self._pins_file.read_text())["recursive"])
        id_file = self.root / "peer-id"
        if not id_file.exists():
            self._atomic_write(id_file, ("12D3KooW" + secrets.token_hex(20)).encode())
        self.peer_id = id_file.read_text().strip()

    def _atomic_write(self, path: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.tmp)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _path(self, cid: CID) -> Path:
        key = base64.b32encode(cid.multihash).decode().lower().rstrip("=")
        return self.blocks / key[-3:-1] / key

    def put(self, cid: CID, block: bytes) -> None:
        path = self._path(cid)
        if path.exists():
            return
        path.parent.mkdir(exist_ok=True)
        self._atomic_write(path, block)

    def has(self, cid: CID) -> bool:
        return self._path(cid).exists()

    def get(self, cid: CID) -> bytes:
        try:
            return self._path(cid).read_bytes()
        except FileNotFoundError:
            raise BlockNotFound(str(cid)) from None

    def walk(self, cid: CID) -> Iterator[CID]:
        """Every CID in the DAG under ``cid`` (raises BlockNotFound if one is missing)."""
        stack = [cid]
        while stack:
            c = stack.pop()
            block = self.get(c)
            yield c
            if c.codec == DAG_PB:
                links, _ = decode_dag_pb(block)
                stack.extend(reversed([child for child, _ in links]))

    def read(self, cid: CID, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream the file bytes under ``cid`` from ``offset``, at most ``length`` bytes."""
        end = None if length is None else offset + length
        pos = 0
        for c in self.walk(cid):
            block = self.get(c)
            if c.codec == DAG_PB:
                links, data = decode_dag_pb(block)
                if links:
                    continue
                chunk = unixfs_data(data)
            else:
                chunk = block
            lo, hi = pos, pos + len(chunk)
            pos = hi
            if hi <= offset:
                continue
            if end is not None and lo >= end:
                return
            yield chunk[max(0, offset - lo): None if end is None else max(0, end - lo)]

    def pin(self, cid: CID) -> None:
        for _ in self.walk(cid):  # a pin needs the whole DAG present
            pass
        with self._lock:
            self.pins.add(str(cid))
            self._save_pins()

    def unpin(self, cid: CID) -> bool:
        with self._lock:
            if str(cid) not in self.pins:
                return False
            self.pins.discard(str(cid))
            self._save_pins()
            return True

    def _save_pins(self) -> None:
        self._atomic_write(self._pins_file, json.dumps({"recursive": sorted(self.pins)}).encode())


def _profile_from_query(q) -> Profile:
    """Kubo's defaults: CIDv0 unless asked; cid-version=1 implies raw leaves."""
    version = int(q.get("cid-version", "0"))
    raw = q.get("raw-leaves")
    raw_leaves = (version == 1) if raw is None else raw.lower() == "true"
    chunker = q.get("chunker", "size-262144")
    if not chunker.startswith("size-"):
        raise ValueError(f"unsupported chunker {chunker!r}: only size-N is implemented")
    chunk = int(chunker[5:])
    return Profile(version, raw_leaves, chunk, 1024 if version == 1 else 174)


def _bool(q, name: str, default: bool) -> bool:
    v = q.get(name)
    return default if v is None else v.lower() in ("true", "1", "")


def _arg(request: web.Request) -> CID:
    arg = request.query.get("arg")
    if not arg:
        raise InvalidCidError("argument \"ipfs-path\" is required")
    if arg.startswith("/ipfs/"):
        arg = arg[len("/ipfs/"):]
    return CID.parse(arg)


def make_app(repo: Repo, max_add_bytes: int = DEFAULT_MAX_ADD_BYTES) -> web.Application:
    loop_run = asyncio.to_thread

    async def add(request: web.Request) -> web.StreamResponse:
        try:
            profile = _profile_from_query(request.query)
        except ValueError as exc:
            return _kubo_error(str(exc))
        pin = _bool(request.query, "pin", True)
        only_hash = _bool(request.query, "only-hash", False)
        if not request.content_type.startswith("multipart/"):
            return _kubo_error("add expects a multipart/form-data body", 400)
        reader = await request.multipart()
        results = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.headers.get("Content-Type", "").startswith("application/x-directory"):
                return _kubo_error("directories are not supported by the codream dev node")
            name = part.filename or ""
            fd, tmp = tempfile.mkstemp(dir=repo.tmp)
            size = 0
            try:
                with os.fdopen(fd, "wb") as fh:
                    while chunk := await part.read_chunk(1 << 20):
                        size += len(chunk)
                        if size > max_add_bytes:
                            return _kubo_error(f"upload exceeds this node's limit of {max_add_bytes} bytes", 413)
                        fh.write(chunk)

                def do_import() -> str:
                    with open(tmp, "rb") as fh:
                        root = import_stream(fh, profile, None if only_hash else repo.put)
                    if pin and not only_hash:
                        repo.pin(root)
                    return str(root)

                cid = await loop_run(do_import)
            finally:
                os.unlink(tmp)
            results.append({"Name": os.path.basename(name) or cid, "Hash": cid, "Size": str(size)})
        body = "".join(json.dumps(r) + "\n" for r in results)
        return web.Response(text=body, content_type="application/json")

    async def _stream(request: web.Request, cid: CID, offset: int, length: int | None,
                      content_type: str) -> web.StreamResponse:
        # resolve the whole DAG first, so a missing block is a clean error, not a cut stream
        await loop_run(lambda: list(repo.walk(cid)))
        resp = web.StreamResponse(headers={"Content-Type": content_type, "X-Ipfs-Path": f"/ipfs/{cid}",
                                           "Access-Control-Allow-Origin": "*"})  # as Kubo's gateway
        await resp.prepare(request)
        for chunk in repo.read(cid, offset, length):
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def cat(request: web.Request) -> web.StreamResponse:
        cid = _arg(request)
        offset = int(request.query.get("offset", "0") or 0)
        length = request.query.get("length")
        return await _stream(request, cid, offset, int(length) if length else None, "text/plain")

    async def gateway(request: web.Request) -> web.StreamResponse:
        try:
            cid = CID.parse(request.match_info["cid"])
        except InvalidCidError as exc:
            return web.Response(status=400, text=f"invalid CID: {exc}\n")
        try:
            return await _stream(request, cid, 0, None, "application/octet-stream")
        except BlockNotFound:
            return web.Response(status=404, text=f"{cid} not found on this node\n")

    async def pin_add(request: web.Request) -> web.Response:
        cid = _arg(request)
        await loop_run(repo.pin, cid)
        return web.json_response({"Pins": [str(cid)]})

    async def pin_rm(request: web.Request) -> web.Response:
        cid = _arg(request)
        if not repo.unpin(cid):
            return _kubo_error("not pinned or pinned indirectly")
        return web.json_response({"Pins": [str(cid)]})

    async def pin_ls(request: web.Request) -> web.Response:
        if request.query.get("arg"):
            cid = _arg(request)
            if str(cid) not in repo.pins:
                return _kubo_error(f"path '{cid}' is not pinned")
            return web.json_response({"Keys": {str(cid): {"Type": "recursive"}}})
        return web.json_response({"Keys": {c: {"Type": "recursive"} for c in sorted(repo.pins)}})

    async def block_stat(request: web.Request) -> web.Response:
        cid = _arg(request)
        return web.json_response({"Key": str(cid), "Size": len(repo.get(cid))})

    async def version(request: web.Request) -> web.Response:
        return web.json_response({"Version": VERSION, "Commit": "", "Repo": "16",
                                  "System": "python", "Golang": ""})

    async def ident(request: web.Request) -> web.Response:
        return web.json_response({"ID": repo.peer_id, "PublicKey": "", "Addresses": [],
                                  "AgentVersion": f"codream-devnode/{VERSION}",
                                  "ProtocolVersion": "ipfs/0.1.0"})

    @web.middleware
    async def errors(request: web.Request, handler):
        if request.path.startswith("/api/v0/") and request.method != "POST":
            return _kubo_error(f"{request.method} not allowed: the RPC API takes POST", 405)
        try:
            return await handler(request)
        except InvalidCidError as exc:
            return _kubo_error(f"invalid path: {exc}")
        except BlockNotFound as exc:
            return _kubo_error(f"block was not found locally (offline): ipld: could not find {exc.args[0]}")
        except ValueError as exc:
            return _kubo_error(str(exc))

    app = web.Application(middlewares=[errors], client_max_size=max_add_bytes)
    routes = {"add": add, "cat": cat, "pin/add": pin_add, "pin/rm": pin_rm, "pin/ls": pin_ls,
              "block/stat": block_stat, "version": version, "id": ident}
    for name, handler in routes.items():
        app.router.add_route("*", f"/api/v0/{name}", handler)
    app.router.add_get("/ipfs/{cid}", gateway)
    return app


def serve(repo_path: str | Path, host: str = "127.0.0.1", port: int = 5001,
          max_add_bytes: int = DEFAULT_MAX_ADD_BYTES) -> None:
    """Run the node in the foreground until interrupted."""
    repo = Repo(repo_path)
    print(f"codream IPFS dev node: repo {repo.root}, RPC http://{host}:{port}/api/v0, "
          f"gateway http://{host}:{port}/ipfs/<cid>", flush=True)
    web.run_app(make_app(repo, max_add_bytes), host=host, port=port, print=None,
                access_log=None, handle_signals=True)
