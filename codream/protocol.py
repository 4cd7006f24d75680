"""Protocol v2 encodings shared by agents, tests and benchmarks (must match the contracts).

Commitments, score sentinels, the phase and status enums of CoDreamMarket, and the seat <->
submission assignment of sharded verification (contracts/libraries/Scores.sol).
"""
from __future__ import annotations

from enum import IntEnum

from eth_abi import encode
from eth_utils import keccak

INVALID = -(2**31)  # Scores.INVALID: the bundle failed validation
NO_EVAL = -(2**31) + 1  # Scores.NO_EVAL: the verifier could not obtain the revealed eval set(s)
MAX_GAIN = 10_000  # ordinary scores are gains in bps in [-MAX_GAIN, MAX_GAIN]


class Phase(IntEnum):
    """CoDreamMarket.Phase: where a task stands (`phaseOf`)."""

    NONE = 0
    COMMIT = 1
    REVEAL = 2
    EVAL_REVEAL = 3
    AWAITING_DRAW = 4
    SCORE_COMMIT = 5
    SCORE_REVEAL = 6
    AWAITING_SETTLEMENT = 7
    SETTLING = 8
    FINALIZED = 9

    @property
    def human(self) -> str:
        return self.name.lower().replace("_", " ")


class Status(IntEnum):
    """CoDreamMarket.Status: a submission's state (`results`)."""

    COMMITTED = 0
    REVEALED = 1
    UNREVEALED = 2
    ACCEPTED = 3
    REJECTED = 4
    INVALID = 5
    UNRESOLVED = 6
    UNSCORED = 7  # its own miner held every seat that should score it: bond back, no share

    @property
    def human(self) -> str:
        return self.name.lower()


class Stage(IntEnum):
    """CoDreamMarket.Stage: settlement progress (`getSettlement`, `Settled` events)."""

    NONE = 0
    RESULTS = 1
    SEATS = 2
    PAYOUTS = 3
    FEES = 4
    REFUND = 5
    FINALIZED = 6


PHASES = {p.value: p.human for p in Phase}


def miner_commitment(cid: str, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    """keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(market)))"""
    return keccak(encode(["string", "bytes32", "address", "uint256", "uint256", "address"],
                         [cid, salt, sender, task_id, chain_id, market]))


def score_commitment(scores, salt: bytes, sender: str, task_id: int, seat: int, chain_id: int,
                     market: str) -> bytes:
    """keccak256(abi.encode(int32[] scores, salt, msg.sender, taskId, seat, block.chainid, market));
    `scores` in the order of `seat_submissions(seat, ...)`"""
    return keccak(encode(["int32[]", "bytes32", "address", "uint256", "uint256", "uint256", "address"],
                         [list(scores), salt, sender, task_id, seat, chain_id, market]))


def eval_commitment(eval_cid: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(evalCid, salt))"""
    return keccak(encode(["string", "bytes32"], [eval_cid, salt]))


# ----------------------------------------------------------------------------- assignment
# Submission s (of n committed) is scored by the r distinct seats (s + d) mod k, d = 0..r-1.
def submission_seats(s: int, k: int, r: int) -> list[int]:
    """The seats that score submission s, in the contract's order (d = 0..r-1)."""
    return [(s + d) % k for d in range(r)]


def seat_submissions(seat: int, n: int, k: int, r: int) -> list[int]:
    """The submissions seat `seat` scores, ascending: the order of its score vector."""
    return [s for s in range(n) if (seat - s) % k < r]


def rank(seat: int, s: int, k: int, r: int) -> int:
    """Position of submission s in seat `seat`'s vector: how many s' < s the seat scores (O(r))."""
    total = 0
    for d in range(r):
        c = (seat - d) % k  # residue of the submissions that meet this seat at offset d
        if s > c:
            total += (s - c - 1) // k + 1
    return total


def count(seat: int, n: int, k: int, r: int) -> int:
    """Length of seat `seat`'s score vector when n submissions were committed."""
    return rank(seat, n, k, r)
