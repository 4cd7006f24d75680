"""The verifying agent: `codream verifier run`.

It stakes once, keeps the protocol moving (requests and draws committees, finalizes
when due: anyone may), and on the committees it sits on: fetches the spec, teachers,
revealed eval set and bundles (CIDs verified), validates and scores each bundle,
persists scores and salt, commits, reveals, and claims. Per-task stages:
new → scored → committed → revealed → done, each saved before its transaction.
"""
from __future__ import annotations

import secrets
import time

from codream import content
from codream.agentstate import AgentState, agent_logger, event
from codream.bundle import Binding
from codream.chain import Chain, ChainError, TxReverted
from codream.protocol import INVALID, score_commitment
from codream.spec import parse_bytes
from ipfs import IpfsClient, IpfsError

AWAIT_DRAW, SCORE_COMMIT, SCORE_REVEAL, AWAIT_FINAL, FINAL = 4, 5, 6, 7, 8


class VerifierAgent:
    def __init__(self, chain: Chain, ipfs: IpfsClient, stake_wei: int, threads: int | None = 1,
                 claim: bool = True, keeper: bool = True, verbose: bool = True):
        self.chain, self.ipfs = chain, ipfs
        self.me = chain.account.address
        self.stake_wei, self.threads, self.claim, self.keeper = stake_wei, threads, claim, keeper
        self.state = AgentState("verifier", self.me, chain.address)
        self.log = agent_logger(f"verifier-{self.me[:8]}", self.state.dir, verbose)

    def run(self, poll: float = 2.0, until_idle: bool = False) -> None:
        event(self.log, "started", address=self.me, market=self.chain.address)
        while True:
            try:
                busy = self.step()
            except (ChainError, IpfsError) as exc:
                event(self.log, "retrying after error", error=str(exc))
                busy = True
            if until_idle and not busy and self.state.data["tasks"]:
                event(self.log, "idle: every task settled")  # (and at least one task was seen)
                return
            time.sleep(poll)

    def step(self) -> bool:
        self._ensure_stake()
        busy = False
        for tid in range(1, self.chain.call("taskCount") + 1):
            st = self.state.task(tid)
            if st["stage"] == "done":
                continue
            busy |= self._advance(tid, st, self.chain.phase(tid))
        if self.claim:
            owed = self.chain.call("claimable", self.me)
            if owed:
                self.chain.send("withdraw")
                event(self.log, "claimed", wei=owed)
        return busy

    def _ensure_stake(self) -> None:
        if self.state.data.get("staked"):
            return
        if self.chain.call("stakeOf", self.me) == 0:
            self.chain.send("stake", value=self.stake_wei)
            event(self.log, "staked", wei=self.stake_wei)
        self.state.data["staked"] = True
        self.state.save()

    def _member_index(self, tid: int) -> int | None:
        for j, m in enumerate(self.chain.committee(tid)):
            if m["verifier"] == self.me:
                return j
        return None

    def _advance(self, tid: int, st: dict, phase: int) -> bool:
        if phase == FINAL:
            st["stage"] = "done"
            self.state.save()
            return False
        if phase == AWAIT_DRAW and self.keeper:
            self._keep_draw(tid)
            return True
        if phase in (SCORE_COMMIT, SCORE_REVEAL, AWAIT_FINAL):
            j = self._member_index(tid)
            if j is not None:
                if st.get("round") != self.chain.task(tid)["redraws"]:  # a redraw starts afresh
                    st.clear()
                    st.update(stage="new", round=self.chain.task(tid)["redraws"])
                if st["stage"] == "new" and phase == SCORE_COMMIT:
                    self._score(tid, st)
                if st["stage"] == "scored":  # in the reveal window: only if the commit already landed
                    self._commit(tid, st, j, phase)
                if st["stage"] == "committed" and phase == SCORE_REVEAL:
                    self._reveal(tid, st, j)
            if phase == AWAIT_FINAL and self.keeper:  # also: the owner never revealed the eval set
                self._finalize(tid)
            return True
        return phase != 0

    # -- keeper duties -------------------------------------------------------------
    def _keep_draw(self, tid: int) -> None:
        t = self.chain.task(tid)
        try:
            if t["seedBlock"] == 0:
                self.chain.send("requestDraw", tid)
                event(self.log, "draw requested", task=tid)
            elif self.chain.block()["number"] > t["seedBlock"]:
                self.chain.send("drawCommittee", tid)
                event(self.log, "committee drawn", task=tid,
                      members=[m["verifier"] for m in self.chain.committee(tid)])
        except TxReverted as exc:  # another keeper was first, or too few verifiers yet
            event(self.log, "draw not possible now", task=tid, reason=exc.error)

    def _finalize(self, tid: int) -> None:
        try:
            self.chain.send("finalize", tid)
            event(self.log, "finalized", task=tid)
        except TxReverted as exc:
            event(self.log, "finalize not possible now", task=tid, reason=exc.error)

    # -- scoring ---------------------------------------------------------------------
    def _score(self, tid: int, st: dict) -> None:
        from verifier.score import load_eval_set, load_teachers, score_images
        from verifier.validate import validate_file

        t = self.chain.task(tid)
        spec = parse_bytes(self.ipfs.cat(t["specCid"], max_bytes=1 << 20))
        teachers = load_teachers(spec, client=self.ipfs)
        ev = load_eval_set(content.fetch(t["evalCid"], client=self.ipfs, max_bytes=256 << 20), spec)
        revealed = self.chain.revealed_cids(tid)
        scores, verdicts, earlier = [], {}, []
        for s in range(t["submissionCount"]):
            if s not in revealed:
                scores.append(0)  # not scored on chain: unrevealed submissions forfeit
                continue
            miner, cid = revealed[s]
            binding = Binding(self.chain.chain_id, self.chain.address, tid, miner)
            try:
                path = content.fetch(cid, client=self.ipfs, max_bytes=spec.bundle["max_bytes"])
                verdict = validate_file(path, spec, binding, earlier)
            except IpfsError as exc:
                if "larger than the limit" not in str(exc):
                    raise  # an outage: try again on the next pass
                verdicts[s] = {"verdict": "INVALID", "reasons": [{"code": "too_large", "detail": str(exc)}]}
                scores.append(INVALID)
                continue
            if not verdict.valid:
                verdicts[s] = {"verdict": "INVALID", "reasons": verdict.reasons, "miner": miner}
                scores.append(INVALID)
                continue
            earlier.append(verdict.hashes)
            r = score_images(spec, teachers, verdict.images, ev, self.threads)
            verdicts[s] = {"verdict": "VALID", "score_bps": r["score_bps"], "miner": miner,
                           "student_accuracy": r["student_accuracy"], "baseline_accuracy": r["baseline_accuracy"]}
            scores.append(r["score_bps"])
        st.update(stage="scored", scores=scores, verdicts=verdicts, salt="0x" + secrets.token_hex(32))
        self.state.save()  # scores and salt are durable before the commitment leaves
        event(self.log, "scored", task=tid, scores=scores)

    def _commit(self, tid: int, st: dict, j: int, phase: int) -> None:
        """Commit the saved scores; if killed after sending, the chain already has them."""
        if not self.chain.committee(tid)[j]["committed"]:
            if phase != SCORE_COMMIT:
                st["stage"] = "missed"
                self.state.save()
                event(self.log, "missed the score-commit window", task=tid)
                return
            c = score_commitment(st["scores"], bytes.fromhex(st["salt"][2:]), self.me, tid, self.chain.chain_id,
                                 self.chain.address)
            self.chain.send("commitScores", tid, j, c)
        st["stage"] = "committed"
        self.state.save()
        event(self.log, "scores committed", task=tid)

    def _reveal(self, tid: int, st: dict, j: int) -> None:
        if not self.chain.committee(tid)[j]["revealed"]:
            self.chain.send("revealScores", tid, j, st["scores"], bytes.fromhex(st["salt"][2:]))
        st["stage"] = "revealed"
        self.state.save()
        event(self.log, "scores revealed", task=tid)
