"""A thin client for the Kubo RPC API, built on ``ipfshttpclient``.

Every call either succeeds or raises a subclass of :class:`IpfsError` that says
what failed and what to do. Content is verified end to end: ``add`` checks that
the node's CID equals the one computed locally, and ``cat`` recomputes the CID of
what came back.
"""
from __future__ import annotations

import io
import os
import secrets
import warnings
from pathlib import Path

import ipfshttpclient
import ipfshttpclient.exceptions as ipfs_exc
import multiaddr

from .cid import (CID, KUBO_LEGACY_V0, UNIXFS_V1_2025, InvalidCidError, Profile, cid_of_bytes, cid_of_file,
                  import_stream)

DEFAULT_API = "/ip4/127.0.0.1/tcp/5001/http"
DEFAULT_MAX_CAT_BYTES = 256 << 20


class IpfsError(Exception):
    """Base class: something went wrong talking to an IPFS node."""


class IpfsUnavailable(IpfsError):
    """The node did not accept a connection."""


class IpfsTimeout(IpfsError):
    """The node did not answer in time (on a real network: nobody provides the CID)."""


class CidNotFound(IpfsError):
    """The node does not have the content and could not find it."""


class ContentTooLarge(IpfsError):
    """The content is larger than the caller's limit; nothing was kept."""


class CidMismatch(IpfsError):
    """The node's bytes or CID differ from what we computed: refuse them."""


class InvalidCid(IpfsError, InvalidCidError):
    """The given string is not a CID."""


def api_from_env() -> str:
    return os.environ.get("CODREAM_IPFS_API", DEFAULT_API)


def _api_to_multiaddr(api: str) -> str:
    """Accept a multiaddr or an http(s) URL (``http://host:5001``)."""
    if api.startswith(("http://", "https://")):
        from urllib.parse import urlparse

        u = urlparse(api)
        host = u.hostname or "127.0.0.1"
        proto = "ip6" if ":" in host else ("ip4" if host.replace(".", "").isdigit() else "dns")
        port = u.port or (443 if u.scheme == "https" else 80)
        return f"/{proto}/{host}/tcp/{port}/{u.scheme}"
    return api


def gateway_url(api: str | None = None) -> str:
    """The read-only gateway (``http://host:port/ipfs/``) at the host and port of the RPC API
    ``api`` (default ``$CODREAM_IPFS_API``): where the dev node serves it. (Kubo serves its
    gateway on another port, 8080 by default: give that one explicitly.)"""
    api = api or api_from_env()
    try:
        addr = multiaddr.Multiaddr(_api_to_multiaddr(api))
        host = next(addr.value_for_protocol(p) for p in ("ip4", "ip6", "dns", "dns4", "dns6")
                    if p in [q.name for q in addr.protocols()])
        port = addr.value_for_protocol("tcp")
    except Exception as exc:  # multiaddr raises several unrelated types
        raise IpfsError(f"bad IPFS API address {api!r}: {exc}. Use a multiaddr like /ip4/127.0.0.1/tcp/5001/http") \
            from None
    scheme = "https" if "https" in [q.name for q in addr.protocols()] else "http"
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/ipfs/"


class IpfsClient:
    """Add, pin, fetch and stat content on a Kubo-compatible node.

    ``api`` is a multiaddr (``/ip4/127.0.0.1/tcp/5001/http``) or URL; the default
    comes from ``CODREAM_IPFS_API``.
    """

    def __init__(self, api: str | None = None, timeout: float = 30.0,
                 profile: Profile = UNIXFS_V1_2025):
        self.api = api or api_from_env()
        self.timeout = timeout
        self.profile = profile
        try:
            addr = multiaddr.Multiaddr(_api_to_multiaddr(self.api))
        except Exception as exc:  # multiaddr raises several unrelated types
            raise IpfsError(f"bad IPFS API address {self.api!r}: {exc}. "
                            "Use a multiaddr like /ip4/127.0.0.1/tcp/5001/http") from None
        # Construct the client directly: ipfshttpclient.connect() refuses Kubo >= 0.8.
        self._client = ipfshttpclient.Client(addr, timeout=timeout)

    # -- helpers ----------------------------------------------------------------
    def _call(self, what: str, fn, *args, **kwargs):
        try:
            with warnings.catch_warnings():
                # ipfshttpclient passes urllib3 an obsolete 'strict' argument on every request
                warnings.filterwarnings("ignore", message="The 'strict' parameter", category=FutureWarning)
                return fn(*args, **kwargs)
        except ipfs_exc.ConnectionError:
            raise IpfsUnavailable(
                f"{what}: cannot connect to the IPFS node at {self.api}. Start one with "
                "`codream devnet up` (or `codream ipfs serve`), or point CODREAM_IPFS_API at "
                "a running Kubo daemon.") from None
        except ipfs_exc.TimeoutError:
            raise IpfsTimeout(f"{what}: the IPFS node at {self.api} did not answer within "
                              f"{self.timeout:g}s (is the content provided by anyone?)") from None
        except ipfs_exc.ErrorResponse as exc:
            msg = str(exc)
            if "not pinned" in msg:
                raise CidNotFound(f"{what}: not pinned on the IPFS node at {self.api}") from None
            if "not found" in msg or "could not find" in msg:  # Kubo: "ipld: could not find ..."
                raise CidNotFound(f"{what}: not found — the IPFS node at {self.api} does not have this content "
                                  "and found nobody who does. Check the CID; whoever published it must keep it "
                                  "pinned on a node yours can reach (`codream ipfs add FILE` adds a file you "
                                  "have)") from None
            if "invalid" in msg and ("path" in msg or "cid" in msg.lower()):
                raise InvalidCid(f"{what}: {msg}") from None
            raise IpfsError(f"{what}: the node answered with an error: {msg}") from None
        except ipfs_exc.Error as exc:
            raise IpfsError(f"{what}: {exc}") from None

    def _kubo_opts(self) -> dict:
        return {"cid_version": self.profile.cid_version, "raw_leaves": self.profile.raw_leaves,
                "chunker": self.profile.chunker}

    @staticmethod
    def _check_cid(cid: str) -> str:
        try:
            return str(CID.parse(cid))
        except InvalidCidError as exc:
            raise InvalidCid(str(exc)) from None

    # -- API --------------------------------------------------------------------
    def version(self) -> dict:
        return dict(self._call("version", self._client.version))

    def add_file(self, path: str | Path, pin: bool = True) -> str:
        """Add (and by default pin) a file; return its CID, checked against our own."""
        expected = cid_of_file(path, self.profile)
        res = self._call(f"add {path}", self._client.add, str(path), pin=pin, **self._kubo_opts())
        return self._verify_add(res, expected)

    def add_bytes(self, data: bytes, pin: bool = True) -> str:
        expected = cid_of_bytes(data, self.profile)
        res = self._call("add bytes", self._client.add, io.BytesIO(data), pin=pin, **self._kubo_opts())
        return self._verify_add(res, expected)

    def _verify_add(self, res, expected: str) -> str:
        got = res["Hash"]
        if got != expected:
            raise CidMismatch(
                f"the node returned CID {got} but the content's CID is {expected}: the node "
                "does not use the unixfs-v1-2025 profile (cid-version=1, raw-leaves, 1 MiB chunks)")
        return got

    def cat(self, cid: str, max_bytes: int = DEFAULT_MAX_CAT_BYTES, verify: bool = True) -> bytes:
        """Fetch small content into memory, refusing more than ``max_bytes``; verified by default."""
        buf = io.BytesIO()
        self._cat_into(cid, buf, max_bytes, verify)
        return buf.getvalue()

    def cat_to_file(self, cid: str, path: str | Path, max_bytes: int = DEFAULT_MAX_CAT_BYTES) -> None:
        """Stream content to ``path`` while hashing it: memory stays at one chunk, and a failed or
        mismatching fetch leaves no file behind (it is written atomically). Several processes may
        fetch the same CID into one cache at once: each writes its own temporary file."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
        try:
            with open(tmp, "wb") as fh:
                self._cat_into(cid, fh, max_bytes, verify=True)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _cat_into(self, cid: str, sink, max_bytes: int, verify: bool) -> None:
        cid = self._check_cid(cid)
        # length=max_bytes+1 bounds what an honest node sends; the reader bounds a lying one
        stream = self._call(f"cat {cid}", self._client.cat, cid, length=max_bytes + 1, stream=True)
        reader = _TeeReader(self._call(f"cat {cid}", iter, stream), sink, max_bytes, cid)
        profile = self.profile if CID.parse(cid).version == 1 else KUBO_LEGACY_V0
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="The 'strict' parameter", category=FutureWarning)
                if verify:
                    got = str(import_stream(reader, profile))
                else:
                    while reader.read(1 << 20):
                        pass
                    got = cid
        except (ipfs_exc.Error, OSError) as exc:
            raise IpfsError(f"cat {cid}: transfer failed: {exc}") from None
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        if got != cid:
            raise CidMismatch(f"the bytes served for {cid} hash to {got}: refusing them")

    def pin(self, cid: str) -> None:
        cid = self._check_cid(cid)
        self._call(f"pin {cid}", self._client.pin.add, cid)

    def unpin(self, cid: str) -> None:
        cid = self._check_cid(cid)
        self._call(f"unpin {cid}", self._client.pin.rm, cid)

    def pins(self) -> list[str]:
        res = self._call("pin ls", self._client.pin.ls, type="recursive")
        return sorted(res["Keys"].keys())

    def is_pinned(self, cid: str) -> bool:
        cid = self._check_cid(cid)
        try:
            res = self._call(f"pin ls {cid}", self._client.pin.ls, cid, type="recursive")
        except CidNotFound:
            return False
        return cid in res["Keys"]

    def stat(self, cid: str) -> dict:
        """Size of the root block (``block/stat``)."""
        cid = self._check_cid(cid)
        res = self._call(f"stat {cid}", self._client.block.stat, cid)
        return {"cid": cid, "block_size": int(res["Size"])}


class _TeeReader:
    """A file-like ``read(n)`` over the node's chunk iterator that copies every byte to ``sink``
    and refuses to go past ``max_bytes``."""

    def __init__(self, chunks, sink, max_bytes: int, cid: str):
        self.chunks, self.sink, self.max_bytes, self.cid = chunks, sink, max_bytes, cid
        self.buf, self.total = bytearray(), 0

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.total += len(chunk)
            if self.total > self.max_bytes:
                raise ContentTooLarge(f"{self.cid} is larger than the limit of {self.max_bytes} bytes; "
                                      "nothing was kept")
            self.sink.write(chunk)
            self.buf += chunk
        n = len(self.buf) if n < 0 else n
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out
