"""Helpers for contract tests: brownie as a library (project + anvil), commitments, rounds."""
from __future__ import annotations

import os

from eth_abi import encode
from eth_utils import keccak

WEEK = 7 * 24 * 3600
WINDOWS = [3600, 3600, 3600, 3600, 3600]  # commit, reveal, evalReveal, scoreCommit, scoreReveal
INVALID = -(2**31)


def miner_commitment(cid: str, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    return keccak(encode(["string", "bytes32", "address", "uint256", "uint256", "address"],
                         [cid, salt, sender, task_id, chain_id, market]))


def score_commitment(scores, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    return keccak(encode(["int32[]", "bytes32", "address", "uint256", "uint256", "address"],
                         [list(scores), salt, sender, task_id, chain_id, market]))


def eval_commitment(eval_cid: str, salt: bytes) -> bytes:
    return keccak(encode(["string", "bytes32"], [eval_cid, salt]))


def salt(i: int) -> bytes:
    return keccak(text=f"salt-{i}")
