"""Protocol facts shared by agents, tests, benchmarks and (through the dapp server) the
dapp: encodings that must match the contract, its phases and sentinel scores, salts."""
from __future__ import annotations

import secrets
from enum import IntEnum

from eth_abi import encode
from eth_utils import keccak

INVALID = -(2**31)  # CoDreamMarket.INVALID: a bundle that failed validation


class Phase(IntEnum):
    """CoDreamMarket.phaseOf(taskId)."""

    NONE = 0
    COMMIT = 1
    REVEAL = 2
    EVAL_REVEAL = 3
    AWAITING_DRAW = 4
    SCORE_COMMIT = 5
    SCORE_REVEAL = 6
    AWAITING_FINALIZE = 7
    FINALIZED = 8

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", " ")


def score_label(score: int) -> str:
    """A score as people read it: basis points, or INVALID."""
    return "INVALID" if score == INVALID else f"{score} bps"


def new_salt() -> str:
    """A fresh 32-byte commitment salt as 0x-hex (how agents store it)."""
    return "0x" + secrets.token_hex(32)


def salt_bytes(salt: str) -> bytes:
    """The bytes32 of a stored 0x-hex salt."""
    raw = bytes.fromhex(salt[2:] if salt.startswith("0x") else salt)
    if len(raw) != 32:
        raise ValueError(f"a salt is 32 bytes, got {len(raw)}")
    return raw


def miner_commitment(cid: str, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    """keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this)))"""
    return keccak(encode(["string", "bytes32", "address", "uint256", "uint256", "address"],
                         [cid, salt, sender, task_id, chain_id, market]))


def score_commitment(scores, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    """keccak256(abi.encode(scores, salt, msg.sender, taskId, block.chainid, address(this)))"""
    return keccak(encode(["int32[]", "bytes32", "address", "uint256", "uint256", "address"],
                         [list(scores), salt, sender, task_id, chain_id, market]))


def eval_commitment(eval_cid: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(evalCid, salt))"""
    return keccak(encode(["string", "bytes32"], [eval_cid, salt]))
