"""Protocol v1 encodings shared by agents, tests and benchmarks (must match the contract)."""
from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

INVALID = -(2**31)  # CoDreamMarket.INVALID: a bundle that failed validation
PHASES = {0: "none", 1: "commit", 2: "reveal", 3: "eval reveal", 4: "awaiting draw", 5: "score commit",
          6: "score reveal", 7: "awaiting finalize", 8: "finalized"}


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
