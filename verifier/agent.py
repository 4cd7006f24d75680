"""The verifying agent: `codream verifier run`.

It stakes once, keeps the protocol moving (requests and draws committees, finalizes
when due: anyone may), and on the committees it sits on: fetches the spec, teachers,
revealed eval set and bundles (CIDs verified), validates and scores each bundle,
persists scores and salt, commits, reveals, and claims. Per-task stages:
new → scored → committed → revealed → done, each saved before its transaction.
"""
from __future__ import annotations

from codream import content
from codream.agent import Agent, event
from codream.bundle import Binding
from codream.chain import TxReverted
from codream.evalset import load_eval_set
from codream.protocol import INVALID, Phase, new_salt, salt_bytes, score_commitment
from codream.spec import parse_bytes
from codream.teachers import load_teachers
from ipfs import ContentTooLarge

from .novelty import reference
from .score import score_verdict
from .validate import validate_file


class VerifierAgent(Agent):
    role = "verifier"
    DONE_STAGES = ("done",)

    def __init__(self, chain, ipfs, stake_wei: int, threads: int | None = 1, claim: bool = True,
                 keeper: bool = True, verbose: bool = True, device: str = "cpu"):
        super().__init__(chain, ipfs, claim, verbose)
        self.stake_wei, self.threads, self.keeper, self.device = stake_wei, threads, keeper, device

    def prepare(self) -> None:
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

    def advance(self, tid: int, st: dict, phase: int) -> bool:
        if phase == Phase.FINALIZED:
            self.save_stage(st, "done")
            return False
        if phase == Phase.AWAITING_DRAW and self.keeper:
            self._keep_draw(tid)
            return True
        if phase in (Phase.SCORE_COMMIT, Phase.SCORE_REVEAL, Phase.AWAITING_FINALIZE):
            j = self._member_index(tid)
            if j is not None:
                if st.get("round") != self.chain.task(tid)["redraws"]:  # a redraw starts afresh
                    st.clear()
                    st.update(stage="new", round=self.chain.task(tid)["redraws"])
                if st["stage"] == "new" and phase == Phase.SCORE_COMMIT:
                    self._score(tid, st)
                if st["stage"] == "scored":  # in the reveal window: only if the commit already landed
                    self._commit(tid, st, j, phase)
                if st["stage"] == "committed" and phase == Phase.SCORE_REVEAL:
                    self._reveal(tid, st, j)
            if phase == Phase.AWAITING_FINALIZE and self.keeper:  # also: the owner never revealed the eval set
                self._finalize(tid)
            return True
        return phase != Phase.NONE

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
            except ContentTooLarge as exc:
                verdicts[s] = {"verdict": "INVALID", "reasons": [{"code": "too_large", "detail": str(exc)}]}
                scores.append(INVALID)
                continue
            # novelty against the eval set and the submissions committed before this one
            # (earlier tasks: the lead's v2 agent passes a verifier.index.NoveltyIndex)
            verdict = validate_file(path, spec, binding, earlier, eval_images=ev[0], device=self.device)
            if verdict.images is not None:
                earlier.append(reference("earlier_submission", f"submission {s}", verdict.images))
            novelty = verdict.novelty.to_json() if verdict.novelty is not None else None
            if not verdict.valid:
                verdicts[s] = {"verdict": "INVALID", "reasons": verdict.reasons, "miner": miner, "novelty": novelty}
                scores.append(INVALID)
                continue
            r = score_verdict(spec, teachers, verdict, ev, self.threads, self.device)
            verdicts[s] = {"verdict": "VALID", "score_bps": r["score_bps"], "miner": miner, "gain_bps": r["gain_bps"],
                           "student_accuracy": r["student_accuracy"], "baseline_accuracy": r["baseline_accuracy"],
                           "novelty": novelty}
            scores.append(r["score_bps"])
        # scores and salt are durable before the commitment leaves
        self.save_stage(st, "scored", scores=scores, verdicts=verdicts, salt=new_salt())
        event(self.log, "scored", task=tid, scores=scores)

    def _commit(self, tid: int, st: dict, j: int, phase: int) -> None:
        """Commit the saved scores; if killed after sending, the chain already has them."""
        if not self.chain.committee(tid)[j]["committed"]:
            if phase != Phase.SCORE_COMMIT:
                self.save_stage(st, "missed")
                event(self.log, "missed the score-commit window", task=tid)
                return
            c = score_commitment(st["scores"], salt_bytes(st["salt"]), self.me, tid, self.chain.chain_id,
                                 self.chain.address)
            self.chain.send("commitScores", tid, j, c)
        self.save_stage(st, "committed")
        event(self.log, "scores committed", task=tid)

    def _reveal(self, tid: int, st: dict, j: int) -> None:
        if not self.chain.committee(tid)[j]["revealed"]:
            self.chain.send("revealScores", tid, j, st["scores"], salt_bytes(st["salt"]))
        self.save_stage(st, "revealed")
        event(self.log, "scores revealed", task=tid)
