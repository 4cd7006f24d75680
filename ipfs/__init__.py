"""IPFS layer: Kubo-exact CIDs, a Kubo RPC client, and a local dev node."""
from .cid import CID, KUBO_LEGACY_V0, UNIXFS_V1_2025, InvalidCidError, Profile, cid_of_bytes, cid_of_file
from .client import (CidMismatch, CidNotFound, ContentTooLarge, InvalidCid, IpfsClient, IpfsError,
                     IpfsTimeout, IpfsUnavailable)

__all__ = ["CID", "Profile", "UNIXFS_V1_2025", "KUBO_LEGACY_V0", "InvalidCidError", "cid_of_bytes",
           "cid_of_file", "IpfsClient", "IpfsError", "IpfsUnavailable", "IpfsTimeout", "CidNotFound",
           "ContentTooLarge", "CidMismatch", "InvalidCid"]
