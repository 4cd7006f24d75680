"""Protocol v3 encodings and rules shared by agents, tests and benchmarks (must match the contracts;
docs/protocol-v3.md).

Commitments, score sentinels and eval verdicts, the enums of CoDreamMarket and CoDreamAppeals,
the protocol parameters, the seat <-> submission assignment (contracts/libraries/Scores.sol),
the judgement of one submission and the settlement rules (contracts/libraries/Rules.sol), the
recipe seed verifiers derive from the draw, and the probabilities that price a seat majority.
Each is mirrored once here and checked against the contracts (tests/test_market.py).
"""
from __future__ import annotations

import secrets
from dataclasses import astuple, dataclass
from enum import IntEnum
from math import comb

from eth_abi import encode
from eth_utils import keccak

INVALID = -(2**31)  # Scores.INVALID: the bundle failed validation
NO_EVAL = -(2**31) + 1  # Scores.NO_EVAL: the seat judged no revealed eval set usable
MAX_GAIN = 10_000  # ordinary scores are gains in bps in [-MAX_GAIN, MAX_GAIN]
BPS = 10_000


class EvalVerdict(IntEnum):
    """A seat's verdict on one owner's eval set: the first entries of its vector."""

    OK = 1  # passed every check (fetched, well formed, declared accuracy confirmed)
    FAILED = 2  # fetched but failed a check
    UNAVAILABLE = 3  # nobody served it


class Phase(IntEnum):
    """CoDreamMarket.Phase: where a task stands (`phaseOf`), in the order a round runs."""

    NONE = 0
    COMMIT = 1
    EVAL_REVEAL = 2
    AWAITING_DRAW = 3
    REVEAL = 4
    SCORE_COMMIT = 5
    SCORE_REVEAL = 6
    APPEAL = 7
    AWAITING_SETTLEMENT = 8
    SETTLING = 9
    FINALIZED = 10

    @property
    def human(self) -> str:
        return self.name.lower().replace("_", " ")


class Status(IntEnum):
    """CoDreamMarket.Status: a submission's state (`CoDreamLens.results`)."""

    COMMITTED = 0
    REVEALED = 1
    UNREVEALED = 2
    ACCEPTED = 3
    REJECTED = 4
    INVALID = 5
    UNRESOLVED = 6  # unjudged (no majority, or a NO_EVAL majority): bond back, nothing else
    UNSCORED = 7  # its own miner held every seat that should score it: bond back, nothing else

    @property
    def human(self) -> str:
        return self.name.lower()


class Verdict(IntEnum):
    """CoDreamMarket.Verdict: an owner's verdict at settlement."""

    NONE = 0
    GOOD = 1  # a majority of all seats found its eval set OK: it funds the round
    FAULTY = 2  # a majority found it failed / unavailable, or it never revealed: burned
    UNJUDGED = 3  # no majority either way (or a round that failed before its draw): refunded

    @property
    def human(self) -> str:
        return self.name.lower()


class Stage(IntEnum):
    """CoDreamMarket.Stage: settlement progress (`getSettlement`, `Settled` events)."""

    NONE = 0
    OWNERS = 1
    RESULTS = 2
    SEATS = 3
    PAYOUTS = 4
    FEES = 5
    REFUND = 6
    FINALIZED = 7


class BurnReason(IntEnum):
    """CoDreamMarket.BurnReason: why wei was burned (`Burned` events)."""

    FAULTY_OWNER = 0
    SEAT_SLASH = 1
    OVERTURN_SLASH = 2
    FORFEITED_BONDS = 3
    DUST = 4

    @property
    def human(self) -> str:
        return {0: "faulty owner's contribution", 1: "faulty seat's slash", 2: "overturned seat's slash",
                3: "forfeited bonds nobody earned", 4: "rounding dust"}[self.value]


class AppealStage(IntEnum):
    """CoDreamAppeals.AppealStage."""

    NONE = 0
    DRAWING = 1
    SCORING = 2
    RESOLVING = 3
    RESOLVED = 4


class Outcome(IntEnum):
    """CoDreamAppeals.Outcome."""

    NONE = 0
    CONFIRMED = 1
    OVERTURNED = 2
    VOID = 3

    @property
    def human(self) -> str:
        return self.name.lower()


PHASES = {p.value: p.human for p in Phase}


# ----------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Params:
    """CoDreamMarket.Params: fixed at deployment (docs/protocol-v3.md §2)."""

    min_window: int
    max_commit_window: int
    max_eval_window: int
    max_lock_window: int
    seconds_per_bundle: int
    draw_timeout: int
    appeal_window: int
    appeal_score_window: int
    warmup: int
    unbonding_delay: int
    min_seats_per_submission: int

    def as_tuple(self) -> tuple:
        """The struct as the constructor takes it (ABI tuple order)."""
        return astuple(self)


HOUR, DAY = 3600, 86400
# contracts/libraries/ProtocolParams.sol: production(); also what the devnet deploys
PRODUCTION_PARAMS = Params(min_window=HOUR, max_commit_window=7 * DAY, max_eval_window=2 * DAY,
                           max_lock_window=2 * DAY, seconds_per_bundle=30, draw_timeout=DAY, appeal_window=DAY,
                           appeal_score_window=12 * HOUR, warmup=21 * DAY, unbonding_delay=7 * DAY,
                           min_seats_per_submission=5)
# a rehearsal chain run in real time (tests/test_rehearsal.py): short floors, same constructor
REHEARSAL_PARAMS = Params(min_window=10, max_commit_window=120, max_eval_window=120, max_lock_window=120,
                          seconds_per_bundle=1, draw_timeout=60, appeal_window=10, appeal_score_window=30,
                          warmup=DAY, unbonding_delay=DAY, min_seats_per_submission=1)
PARAMS = {"production": PRODUCTION_PARAMS, "rehearsal": REHEARSAL_PARAMS}
DEFAULT_SEATS_PER_SUBMISSION = 15  # r for a new task (odd; 20 % of the stake holds a majority 0.42 %)
EVAL_ACCURACY_TOLERANCE_BPS = 300  # measured teacher accuracy vs the declared one (check_eval_set)


def score_label(score: int) -> str:
    """A score as people read it: basis points, INVALID or NO_EVAL."""
    return {INVALID: "INVALID", NO_EVAL: "NO_EVAL"}.get(score, f"{score:,} bps")


def new_salt() -> str:
    """A fresh 32-byte commitment salt as 0x-hex (how agents store it)."""
    return "0x" + secrets.token_hex(32)


def salt_bytes(salt: str) -> bytes:
    """The bytes32 of a stored 0x-hex salt."""
    raw = bytes.fromhex(salt[2:] if salt.startswith("0x") else salt)
    if len(raw) != 32:
        raise ValueError(f"a salt is 32 bytes, got {len(raw)}")
    return raw


# ----------------------------------------------------------------------------- commitments
def miner_commitment(cid: str, salt: bytes, sender: str, task_id: int, chain_id: int, market: str) -> bytes:
    """keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(market)))"""
    return keccak(encode(["string", "bytes32", "address", "uint256", "uint256", "address"],
                         [cid, salt, sender, task_id, chain_id, market]))


def score_commitment(vector, salt: bytes, sender: str, task_id: int, seat: int, chain_id: int,
                     market: str) -> bytes:
    """keccak256(abi.encode(int32[] vector, salt, msg.sender, taskId, seat, block.chainid, market));
    `vector` is `seat_vector(...)`: the eval verdicts, then the scores in `seat_submissions` order"""
    return keccak(encode(["int32[]", "bytes32", "address", "uint256", "uint256", "uint256", "address"],
                         [list(vector), salt, sender, task_id, seat, chain_id, market]))


def appeal_commitment(score: int, salt: bytes, sender: str, task_id: int, appeal_id: int, seat: int, chain_id: int,
                      appeals: str) -> bytes:
    """keccak256(abi.encode(int32 score, salt, msg.sender, taskId, appealId, seat, block.chainid, appeals))"""
    return keccak(encode(["int32", "bytes32", "address", "uint256", "uint256", "uint256", "uint256", "address"],
                         [score, salt, sender, task_id, appeal_id, seat, chain_id, appeals]))


def eval_commitment(eval_cid: str, salt: bytes) -> bytes:
    """keccak256(abi.encode(evalCid, salt))"""
    return keccak(encode(["string", "bytes32"], [eval_cid, salt]))


def seat_vector(verdicts, scores) -> list[int]:
    """A seat's vector: one eval verdict per owner (owner order), then its scores."""
    return [int(v) for v in verdicts] + [int(s) for s in scores]


# ----------------------------------------------------------------------------- the draw
def draw_seed(prevrandao: bytes, task_id: int, snapshot_block: int) -> bytes:
    """keccak256(abi.encode(block.prevrandao, taskId, snapshotBlock)): the committee's seed."""
    return keccak(encode(["uint256", "uint256", "uint256"], [int.from_bytes(prevrandao, "big"), task_id,
                                                             snapshot_block]))


def seat_target(seed: bytes, seat: int, total: int) -> int:
    """The weight point seat `seat` samples: keccak256(abi.encode(seed, j)) mod total."""
    return int.from_bytes(keccak(encode(["bytes32", "uint256"], [seed, seat])), "big") % total


def judging_seed(draw_seed: bytes, seal_randao: bytes) -> bytes:
    """The seed a task's bundles are judged with: keccak256(abi.encode(bytes32 drawSeed, uint256
    prevrandao)) of the committee's draw seed and the prevrandao of the task's *seal block*, the
    first block stamped after the miners' reveal window closed (``codream.market.task_judging_seed``).
    The draw seed is public while the miners still reveal, the seal block's prevrandao is not: a
    miner holding several commitments cannot reveal the one whose recipe seed or replayed shard
    suits it. Every seat reads the same block, so every seat computes the same seed."""
    return keccak(encode(["bytes32", "uint256"], [bytes(draw_seed), int.from_bytes(bytes(seal_randao), "big")]))


def recipe_seed(judging_seed: bytes, cid: str) -> int:
    """The distillation seed of bundle `cid` (verification v3), from its task's `judging_seed`:
    the first 4 bytes of keccak256(abi.encode(bytes32 seed, string cid)) as a non-negative int31.
    The CID was committed, and revealed, before the seed existed, so nobody can grind a bundle
    against its recipe seed. It also draws the receipt's replayed shard."""
    h = keccak(encode(["bytes32", "string"], [bytes(judging_seed), cid]))
    return int.from_bytes(h[:4], "big") & 0x7FFFFFFF


# ----------------------------------------------------------------------------- assignment
# Submission s (of n committed) is scored by the r distinct seats (s + d) mod k, d = 0..r-1.
def submission_seats(s: int, k: int, r: int) -> list[int]:
    """The seats that score submission s, in the contract's order (d = 0..r-1)."""
    return [(s + d) % k for d in range(r)]


def seat_submissions(seat: int, n: int, k: int, r: int) -> list[int]:
    """The submissions seat `seat` scores, ascending: the order of its scores in its vector."""
    return [s for s in range(n) if (seat - s) % k < r]


def rank(seat: int, s: int, k: int, r: int) -> int:
    """Position of submission s among seat `seat`'s scores: how many s' < s it scores (O(r))."""
    total = 0
    for d in range(r):
        c = (seat - d) % k  # residue of the submissions that meet this seat at offset d
        if s > c:
            total += (s - c - 1) // k + 1
    return total


def count(seat: int, n: int, k: int, r: int) -> int:
    """How many scores seat `seat` reveals when n submissions were committed."""
    return rank(seat, n, k, r)


# ----------------------------------------------------------------------------- judgements
def within(x: int, m: int, tolerance: int) -> bool:
    """Scores.within: x supports m (sentinels only themselves)."""
    if x <= NO_EVAL or m <= NO_EVAL:
        return x == m
    return abs(x - m) <= tolerance


def decide(scores: list[int], eligible: int, tolerance: int) -> tuple[int, bool]:
    """Scores.decide: the lower median of the revealed scores and whether more than half of the
    `eligible` seats (silent ones included) support it; (NO_EVAL, False) with no score."""
    if not scores:
        return NO_EVAL, False
    xs = sorted(scores)
    m = xs[(len(xs) - 1) // 2]
    return m, 2 * sum(within(x, m, tolerance) for x in xs) > eligible


def status_of(m: int, min_gain: int) -> Status:
    """Rules.statusOf: what a result a majority supports means."""
    if m == INVALID:
        return Status.INVALID
    if m == NO_EVAL:
        return Status.UNRESOLVED
    return Status.ACCEPTED if m > 0 and m >= min_gain else Status.REJECTED


BELOW_MIN_FORFEIT_BPS = 5000  # Rules.BELOW_MIN_FORFEIT_BPS: the share of a REJECTED submission's bond forfeited


def bond_back(status: Status, bond: int) -> int:
    """Rules.bondBack: the part of its bond a settled submission gets back."""
    if status == Status.REJECTED:
        return bond - bond * BELOW_MIN_FORFEIT_BPS // BPS
    if status in (Status.INVALID, Status.UNREVEALED):
        return 0
    return bond


def pro_rata(amount: int, part: int, whole: int) -> int:
    """Rules.proRata: amount * part / whole rounded down (0 when whole is 0)."""
    return 0 if whole == 0 else amount * part // whole


def owner_verdict(ok: int, not_ok: int, seats: int) -> Verdict:
    """Rules.ownerVerdict: a majority of all seats decides a revealed owner's verdict."""
    if 2 * ok > seats:
        return Verdict.GOOD
    if 2 * not_ok > seats:
        return Verdict.FAULTY
    return Verdict.UNJUDGED


# ----------------------------------------------------------------------------- what a majority costs
def seat_majority_probability(p: float, r: int) -> float:
    """P(a share p of the stake holds more than half of r independently drawn seats)."""
    return sum(comb(r, k) * p**k * (1 - p) ** (r - k) for k in range(r // 2 + 1, r + 1))


def censored_capture_probability(q: float, f: float) -> float:
    """P(capture) when a builder with a share f of the blocks leaves the draw out of its own
    blocks unless that block's draw captures (each draw captures with probability q)."""
    return q / (1 - f * (1 - q))
