"""IPFS layer: Kubo-exact CIDs, a Kubo RPC client, and a local dev node.

The client's names load on first use (module ``__getattr__``): the CID code needs only the
standard library, so the core (task specs parse CIDs) imports where ipfshttpclient is not
installed, e.g. a GPU image running `make bench-gpu`."""
import importlib

from .cid import CID, KUBO_LEGACY_V0, UNIXFS_V1_2025, InvalidCidError, Profile, cid_of_bytes, cid_of_file

_CLIENT = ("IpfsClient", "IpfsError", "IpfsUnavailable", "IpfsTimeout", "CidNotFound", "ContentTooLarge",
           "CidMismatch", "InvalidCid", "gateway_url")

__all__ = ["CID", "Profile", "UNIXFS_V1_2025", "KUBO_LEGACY_V0", "InvalidCidError", "cid_of_bytes",
           "cid_of_file", *_CLIENT]


def __getattr__(name: str):
    if name in _CLIENT:  # ipfs/client.py, loaded once, on first use
        return getattr(importlib.import_module(".client", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
