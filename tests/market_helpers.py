"""Helpers for the contract tests: a `Round` that drives one task through protocol v3 with named
actors, revert and book-keeping checks, and the test-only contracts (tests/contracts/, outside the
production tree) compiled through brownie. Encodings come from codream.protocol."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from brownie import chain, compile_source, web3
from brownie.exceptions import VirtualMachineError
from eth_utils import keccak

from codream.devchain import patient_receipts  # noqa: F401  (anvil receipt race, see there)
from codream.protocol import (INVALID, NO_EVAL, PRODUCTION_PARAMS, EvalVerdict, Phase, Stage,  # noqa: F401
                              Status, appeal_commitment, eval_commitment, miner_commitment, rank, score_commitment,
                              seat_submissions, seat_vector)

REPO = Path(__file__).resolve().parent.parent
WINDOWS = [3600] * 5  # commit, evalReveal, reveal, scoreCommit, scoreReveal: the production minimum
BOUNTY = 10**18
BOND = 10**16
STAKE = 10**18
ACCURACY = 9500  # declared teacher accuracy on an eval set (bps)


def salt(i) -> bytes:
    return keccak(text=f"salt-{i}")


def reverts(name: str, fn, *args):
    """`fn(*args)` reverts with the custom error `name` (brownie shows it as "Name: args")."""
    with pytest.raises(VirtualMachineError) as exc:
        fn(*args)
    msg = exc.value.revert_msg or ""
    assert msg.split(":")[0] == name, msg
    return msg


def flatten(path: Path, seen: set | None = None) -> str:
    """One Solidity source from `path` and everything it imports (relative paths and the
    @openzeppelin remapping), each file once, dependencies first."""
    seen = set() if seen is None else seen
    path = path.resolve()
    if path in seen:
        return ""
    seen.add(path)
    text = path.read_text()
    out = []
    for dep in re.findall(r'^import\s+[^;]*"([^"]+)";', text, re.M):
        target = REPO / "node_modules" / dep if dep.startswith("@") else path.parent / dep
        out.append(flatten(target, seen))
    body = re.sub(r'^(import\s+[^;]*;|// SPDX-License-Identifier:.*|pragma solidity[^;]*;)\s*$', "", text,
                  flags=re.M)
    return "\n".join(out) + "\n" + body


def load_test_contracts():
    """tests/contracts/Attackers.sol (attackers and harnesses) compiled with the project's compiler
    settings; the containers by name."""
    src = "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\n" + flatten(REPO / "tests" / "contracts" /
                                                                              "Attackers.sol")
    return compile_source(src, solc_version="0.8.28", evm_version="cancun")


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
    """The market's balance == sum(claimable) over `addresses` + sum(escrow) + burned."""
    owed = sum(m.claimable(a) for a in set(map(str, addresses)))
    owed += sum(m.getTask(t)["escrow"] for t in range(1, m.taskCount() + 1))
    assert m.balance() == owed + m.burned()


def stake_active(reg, verifiers, amount: int = STAKE) -> None:
    """Stake, let the warm-up pass (devnet time), activate."""
    for v in verifiers:
        reg.stake({"from": v, "value": amount})
    chain.sleep(reg.WARMUP() + 1)
    chain.mine(1)
    for v in verifiers:
        reg.activate(v, {"from": v})
    chain.mine(1)


class Round:
    """One task driven through protocol v3; `truth[s]` is submission s's honest score, `votes[i]`
    the seats' eval verdict on owner i (default OK)."""

    def __init__(self, m, reg, lens, owner, k=5, r=5, min_gain=100, tolerance=150, fee_bps=1000, bounty=BOUNTY,
                 bond=BOND, windows=WINDOWS):
        self.m, self.reg, self.lens, self.owner, self.k, self.r, self.bond = m, reg, lens, owner, k, r, bond
        tx = m.createTask("bafyspec", eval_commitment("bafyeval-0", salt("eval-0")), ACCURACY, bond, k, r, min_gain,
                          tolerance, fee_bps, windows, {"from": owner, "value": bounty})
        self.id = tx.return_value
        self.owners = [owner]
        self.subs: list[tuple] = []  # (miner, cid, salt) by index
        self.truth: dict[int, int] = {}
        self.votes: dict[int, int] = {}

    # ------------------------------------------------------------------ owners and miners
    def join(self, who, amount):
        i = len(self.owners)
        self.m.joinTask(self.id, eval_commitment(f"bafyeval-{i}", salt(f"eval-{i}")), ACCURACY,
                        {"from": who, "value": amount})
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

    def reclaim(self, index: int):
        miner, cid, s = self.subs[index]
        return self.m.reclaimBond(self.id, index, cid, s, {"from": miner})

    def reveal_eval(self, i: int = 0):
        return self.m.revealEval(self.id, i, f"bafyeval-{i}", salt(f"eval-{i}"), {"from": self.owners[i]})

    def submit(self, miners, unrevealed=()):
        """each miner commits once; every owner reveals its eval set; the committee is drawn; all
        but the `unrevealed` indices reveal; ends in the score-commit window"""
        for miner in miners:
            self.commit(miner)
        self.to_eval()
        for i in range(len(self.owners)):
            self.reveal_eval(i)
        self.draw()
        for i in range(len(miners)):
            if i not in unrevealed:
                self.reveal(i)
        self.sleep_past(self.task()["revealEnd"])

    # ------------------------------------------------------------------ time
    def task(self):
        return self.m.getTask(self.id)

    def sleep_past(self, deadline: int):
        now = chain.time()
        if now <= deadline:
            chain.sleep(deadline - now + 1)
        chain.mine(1)

    def to_eval(self):
        self.sleep_past(self.task()["commitEnd"])

    def to_settlement(self):
        self.sleep_past(self.task()["appealEnd"])

    # ------------------------------------------------------------------ committee
    def draw(self) -> list[str]:
        """requests (unless pending), mines to the seed block, draws; returns the seat holders"""
        if self.task()["seedBlock"] == 0:
            self.m.requestDraw(self.id, {"from": self.owner})
        chain.mine(2)
        self.draw_tx = self.m.drawCommittee(self.id, {"from": self.owner})
        return self.seats()

    def seats(self) -> list[str]:
        return [str(a) for a in self.lens.getSeats(self.id)[0]]

    def vector(self, seat: int, score: Callable[[int, int], int]) -> list[int]:
        n = self.task()["submissionCount"]
        verdicts = [self.votes.get(i, EvalVerdict.OK) for i in range(len(self.owners))]
        return seat_vector(verdicts, [score(seat, s) for s in seat_submissions(seat, n, self.k, self.r)])

    def score(self, behaviour: Callable[[int, int], int] | None = None, silent=()):
        """each non-silent seat commits then reveals its vector (default scores: the truth); ends
        after the score-reveal window (in the appeal window)"""
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
        if self.m.phaseOf(self.id) == Phase.APPEAL:
            self.to_settlement()
        while self.m.phaseOf(self.id) != Phase.FINALIZED:
            txs.append(self.m.settle(self.id, batch, {"from": by or self.owner}))
        return txs

    def results(self) -> list[tuple[int, Status]]:
        res, st = self.lens.results(self.id, 0, self.task()["submissionCount"])
        return [(int(x), Status(y)) for x, y in zip(res, st)]
