"""Helpers for the contract tests: a `Round` that drives one task through protocol v2 with
named actors, revert and book-keeping checks. Encodings come from codream.protocol."""
from __future__ import annotations

from collections.abc import Callable

import pytest
from brownie import chain, web3
from brownie.exceptions import VirtualMachineError
from eth_abi import encode
from eth_utils import keccak

from cli.gasbench import patient_receipts  # noqa: F401  (anvil receipt race, see there)
from codream.protocol import (INVALID, NO_EVAL, Phase, Stage, Status, eval_commitment,  # noqa: F401
                              miner_commitment, rank, score_commitment, seat_submissions)

WINDOWS = [3600, 3600, 3600, 3600, 3600]  # commit, reveal, evalReveal, scoreCommit, scoreReveal
BOUNTY = 10**18
BOND = 10**16
STAKE = 10**18


def salt(i) -> bytes:
    return keccak(text=f"salt-{i}")


def reverts(name: str, fn, *args):
    """`fn(*args)` reverts with the custom error `name` (brownie shows it as "Name: args")."""
    with pytest.raises(VirtualMachineError) as exc:
        fn(*args)
    msg = exc.value.revert_msg or ""
    assert msg.split(":")[0] == name, msg
    return msg


def transact(contract, fn: str, *args, sender, value: int = 0) -> dict:
    """A big transaction sent with web3 and awaited on its receipt. brownie's own wait can call a
    long anvil transaction "dropped" when the sender's nonce moves before its receipt is served."""
    c = web3.eth.contract(address=contract.address, abi=contract.abi)
    txid = getattr(c.functions, fn)(*args).transact({"from": str(sender), "value": value, "gas": 29_000_000})
    receipt = web3.eth.wait_for_transaction_receipt(txid, timeout=600)
    assert receipt["status"] == 1, f"{fn} reverted"
    return receipt


def registry_info(reg, verifier) -> dict:
    """StakeRegistry.info (brownie hides a contract function named `info`): the record as a dict."""
    c = web3.eth.contract(address=reg.address, abi=reg.abi)
    stake, slot, unbond_at, locked = c.functions.info(str(verifier)).call()
    return {"stake": stake, "slot": slot, "unbondAt": unbond_at, "lockedSeats": locked}


def books(m, addresses) -> None:
    """The market's balance equals sum(claimable) over `addresses` + sum(escrow) over all tasks."""
    owed = sum(m.claimable(a) for a in set(map(str, addresses)))
    owed += sum(m.getTask(t)["escrow"] for t in range(1, m.taskCount() + 1))
    assert m.balance() == owed


def draw_seats(reg, seed: bytes, task_id: int, k: int, snapshot: int) -> list[str]:
    """The committee drawCommittee draws from `seed`: seat j = sampleAt(snap, keccak(seed, id, j) % total)."""
    total = reg.totalAt(snapshot)
    out = []
    for j in range(k):
        r = int.from_bytes(keccak(encode(["bytes32", "uint256", "uint256"], [seed, task_id, j])), "big") % total
        out.append(str(reg.sampleAt(snapshot, r)))
    return out


class Round:
    """One task driven through the protocol; `truth[s]` is submission s's honest score."""

    def __init__(self, m, reg, owner, k=5, r=3, min_gain=100, tolerance=150, fee_bps=1000, bounty=BOUNTY,
                 bond=BOND, windows=WINDOWS):
        self.m, self.reg, self.owner, self.k, self.r, self.bond = m, reg, owner, k, r, bond
        self.windows = windows
        tx = m.createTask("bafyspec", eval_commitment("bafyeval-0", salt("eval-0")), bond, k, r, min_gain,
                          tolerance, fee_bps, windows, {"from": owner, "value": bounty})
        self.id = tx.return_value
        self.owners = [owner]
        self.subs: list[tuple] = []  # (miner, cid, salt) by index
        self.truth: dict[int, int] = {}

    # ------------------------------------------------------------------ owners and miners
    def join(self, who, amount):
        i = len(self.owners)
        self.m.joinTask(self.id, eval_commitment(f"bafyeval-{i}", salt(f"eval-{i}")), {"from": who, "value": amount})
        self.owners.append(who)

    def commit(self, miner, cid: str | None = None) -> int:
        i = len(self.subs)
        cid = cid or f"bafycid-{self.id}-{i}"
        c = miner_commitment(cid, salt(cid), str(miner), self.id, chain.id, self.m.address)
        tx = self.m.commit(self.id, c, {"from": miner, "value": self.bond})
        index = tx.events["Committed"]["index"]
        assert index == i
        self.subs.append((miner, cid, salt(cid)))
        return index

    def reveal(self, index: int):
        miner, cid, s = self.subs[index]
        return self.m.reveal(self.id, index, cid, s, {"from": miner})

    def reveal_eval(self, i: int = 0):
        return self.m.revealEval(self.id, i, f"bafyeval-{i}", salt(f"eval-{i}"), {"from": self.owners[i]})

    def submit(self, miners, unrevealed=()):
        """each miner commits once; all but the `unrevealed` indices reveal; ends in the eval window"""
        for miner in miners:
            self.commit(miner)
        self.to_reveal()
        for i in range(len(miners)):
            if i not in unrevealed:
                self.reveal(i)
        self.to_eval()

    # ------------------------------------------------------------------ time
    def task(self):
        return self.m.getTask(self.id)

    def sleep_past(self, deadline: int):
        now = chain.time()
        if now <= deadline:
            chain.sleep(deadline - now + 1)
        chain.mine(1)

    def to_reveal(self):
        self.sleep_past(self.task()["commitEnd"])

    def to_eval(self):
        self.sleep_past(self.task()["revealEnd"])

    def to_eval_end(self):
        self.sleep_past(self.task()["evalRevealEnd"])

    # ------------------------------------------------------------------ committee
    def request(self):
        return self.m.requestDraw(self.id, {"from": self.owner})

    def draw(self) -> list[str]:
        """requests (unless pending), mines past the seed block, draws; returns the seat holders"""
        if self.task()["seedBlock"] == 0:
            self.request()
        chain.mine(3)
        self.m.drawCommittee(self.id, {"from": self.owner})
        return self.seats()

    def seats(self) -> list[str]:
        return [str(a) for a in self.m.getSeats(self.id)[0]]

    def vector(self, seat: int, score: Callable[[int, int], int]) -> list[int]:
        n = self.task()["submissionCount"]
        return [score(seat, s) for s in seat_submissions(seat, n, self.k, self.r)]

    def score(self, behaviour: Callable[[int, int], int | None] | None = None, silent=()):
        """each non-silent seat commits then reveals `behaviour(seat, s)` (default: the truth);
        ends after the score-reveal window"""
        behaviour = behaviour or (lambda seat, s: self.truth.get(s, 0))
        seats = self.seats()
        vectors = {j: self.vector(j, behaviour) for j in range(len(seats)) if j not in silent}
        for j, v in vectors.items():
            c = score_commitment(v, salt(f"score-{j}"), seats[j], self.id, j, chain.id, self.m.address)
            self.m.commitScores(self.id, j, c, {"from": seats[j]})
        self.sleep_past(self.task()["scoreCommitEnd"])
        for j, v in vectors.items():
            self.m.revealScores(self.id, j, v, salt(f"score-{j}"), {"from": seats[j]})
        self.sleep_past(self.task()["scoreRevealEnd"])

    # ------------------------------------------------------------------ settlement
    def settle(self, batch: int = 1000, by=None) -> list:
        txs = []
        while self.m.phaseOf(self.id) != Phase.FINALIZED:
            txs.append(self.m.settle(self.id, batch, {"from": by or self.owner}))
        return txs

    def results(self) -> list[tuple[int, Status]]:
        res, st = self.m.results(self.id, 0, self.task()["submissionCount"])
        return [(int(x), Status(y)) for x, y in zip(res, st)]
