"""The verifying agent: `codream verifier run`.

It stakes once (in the stake registry), keeps the protocol moving as a keeper (requests and
draws committees, re-requests an expired draw, settles tasks in batches: anyone may), and for
the seats it holds: fetches the spec, teachers, every revealed eval set and the bundles its
seats are assigned (CIDs verified), validates and scores them, commits one score vector per
seat, reveals it, and claims.

Each pass first does every task's quick, deadline-bound step (draw, commit, reveal, settle),
then a slice of scoring work for the task whose score-commit deadline is nearest, saving each
score as it is computed. So scoring many bundles never makes it miss a reveal elsewhere, and a
killed agent resumes without rescoring. A bundle or eval set nobody serves becomes INVALID or
NO_EVAL (with the reason) once retrying cannot help any more.

Novelty (verification v2, ``codream/novelty.py``): a bundle is compared with the submissions
revealed before it in the task (commit order: the earliest commitment wins), with the task's
revealed eval sets, and with the accepted bundles of earlier tasks that share a teacher. That
last set is the persistent :class:`verifier.index.NoveltyIndex`, filled from chain events and
IPFS; so that every verifier compares with the same set, "earlier" means: a task with a smaller
id whose ``Finalized`` event is in a block no later than this task's ``CommitteeDrawn``.

Per-task stages: new → seated (seats known) → scored (vectors and salts saved) → committed →
revealed → done (or not seated → done).
"""
from __future__ import annotations

import logging
import time

from codream import content
from codream.agent import Agent, TaskError, event
from codream.bundle import Binding, BundleError, read
from codream.chain import TxReverted
from codream.evalset import EvalSetError, load_eval_set, union_eval_sets
from codream.market import duration, eth
from codream.protocol import INVALID, NO_EVAL, Phase, Status, new_salt, salt_bytes, score_commitment, score_label, \
    seat_submissions
from codream.spec import SpecError, TaskSpec, parse_bytes
from codream.teachers import TeacherError, load_teachers
from ipfs import CidNotFound, ContentTooLarge, IpfsTimeout

from .index import NoveltyIndex
from codream.novelty import Reference, reference
from .score import score_verdict
from .strategies import Honest, VerifierStrategy
from .validate import validate_file

SETTLE_BATCH = 200  # submissions or seats per settle call (well under 5M gas)
FETCH_ATTEMPTS = 3  # a CID nobody serves after this many tries is given up (INVALID / NO_EVAL)
BUNDLES_PER_PASS = 4  # scoring slice between two passes over the deadlines
EVAL_MAX_BYTES = 256 << 20


class VerifierAgent(Agent):
    role = "verifier"
    DONE_STAGES = ("done",)

    def __init__(self, chain, ipfs, stake_wei: int, threads: int | None = 1, claim: bool = True,
                 keeper: bool = True, verbose: bool = True, strategy: VerifierStrategy | None = None,
                 device: str = "cpu", index: NoveltyIndex | None = None):
        super().__init__(chain, ipfs, claim, verbose)
        self.stake_wei, self.threads, self.keeper, self.device = stake_wei, threads, keeper, device
        self.strategy = strategy or Honest()
        # one index per agent (its own folder: agents sharing a home never write the same files)
        self.index = index or NoveltyIndex(self.state.dir / "novelty-index")
        self._task_inputs: dict[int, tuple] = {}  # tid -> (spec, teachers, eval set or None, reason)
        self._refs: dict[int, dict] = {}  # tid -> submission -> novelty reference (None: unusable)
        self._earlier_tasks: dict[int, set] = {}  # tid -> {(task, submission)} its replay check may use
        self._draw_backoff: dict[int, float] = {}

    # -- the stake --------------------------------------------------------------------
    def prepare(self) -> None:
        if self.state.data.get("staked"):
            return
        if self.chain.call("stakeOf", self.me, on="registry") == 0:
            self.chain.send("stake", value=self.stake_wei, on="registry")
            event(self.log, "staked", stake=eth(self.stake_wei))
        self.state.data["staked"] = True
        self.state.save()

    def joined_any(self) -> bool:
        """--until-idle: every task it has seen is settled (seated or not: the draw is random)."""
        tasks = self.state.data["tasks"].values()
        return bool(tasks) and all(t.get("stage") == "done" for t in tasks)

    # -- one task's quick step -------------------------------------------------------
    def advance(self, tid: int, st: dict, phase: int) -> bool:
        phase = Phase(phase)
        if phase == Phase.FINALIZED:
            if st.get("seats"):
                self._outcome(tid, st)
            self.save_stage(st, "done")
            return False
        if phase == Phase.AWAITING_DRAW:
            if self.keeper:
                self._keep_draw(tid)
            return True
        if phase in (Phase.AWAITING_SETTLEMENT, Phase.SETTLING):
            if st.get("stage") == "committed":
                self.save_stage(st, "missed")  # the reveal window passed: nothing to do but be slashed
                event(self.log, "missed the score-reveal window", logging.WARNING, task=tid)
            if self.keeper:
                self._settle(tid)
            return True
        if phase in (Phase.SCORE_COMMIT, Phase.SCORE_REVEAL):
            if st["stage"] == "new":
                seats = list(self.chain.call("seatsOf", tid, self.me))
                if not seats:
                    self.save_stage(st, "done")  # not on this committee
                    return False
                t = self.chain.view("getTask", tid)
                self.save_stage(st, "seated", seats=seats, n=t["submissionCount"], k=t["seats"],
                                r=t["seatsPerSubmission"], scores={})
                event(self.log, "on the committee", task=tid, seats=seats,
                      bundles=len(self._work(st)), score_commit_closes_in=duration(t["scoreCommitEnd"] -
                                                                                   self.chain.block()["timestamp"]))
            if st["stage"] == "scored":
                self._commit(tid, st, phase)
            if st["stage"] == "committed" and phase == Phase.SCORE_REVEAL:
                self._reveal(tid, st)
            if st["stage"] == "seated" and phase == Phase.SCORE_REVEAL:
                self.save_stage(st, "missed")
                event(self.log, "missed the score-commit window: scoring took too long", logging.WARNING, task=tid)
            return st["stage"] not in ("revealed", "missed")
        return phase != Phase.NONE

    # -- keeper duties -------------------------------------------------------------
    def _keep_draw(self, tid: int) -> None:
        if time.monotonic() < self._draw_backoff.get(tid, 0):
            return
        t = self.chain.view("getTask", tid)
        block = self.chain.block()["number"]
        try:
            if t["seedBlock"] == 0 or block > t["seedBlock"] + 256:
                self.chain.send("requestDraw", tid)
                event(self.log, "draw requested" if t["seedBlock"] == 0 else "draw re-requested (seed expired)",
                      task=tid)
            elif block > t["seedBlock"]:
                self.chain.send("drawCommittee", tid)
                event(self.log, "committee drawn", task=tid)
            self._draw_backoff.pop(tid, None)
        except TxReverted as exc:  # another keeper was first, no stake yet, seed block not mined...
            wait = min(60.0, 2 * max(2.0, self._draw_backoff.get(tid, 0) - time.monotonic() + 2.0))
            self._draw_backoff[tid] = time.monotonic() + wait
            event(self.log, "draw not possible now", task=tid, reason=str(exc), retry_in=f"{wait:.0f} s")

    def _settle(self, tid: int) -> None:
        try:
            self.chain.send("settle", tid, SETTLE_BATCH)
            st = self.chain.view("getSettlement", tid)
            event(self.log, "settling", task=tid, stage=st["stage"], cursor=st["cursor"])
        except TxReverted as exc:
            event(self.log, "settle not possible now", task=tid, reason=str(exc))

    # -- scoring (the long work) -----------------------------------------------------------
    @staticmethod
    def _work(st: dict) -> list[int]:
        """The submissions this agent's seats score, ascending (commit order)."""
        return sorted({s for j in st["seats"] for s in seat_submissions(j, st["n"], st["k"], st["r"])})

    def background(self) -> bool:
        pending = [(tid, st) for tid, st in ((int(k), v) for k, v in self.state.data["tasks"].items())
                   if st.get("stage") == "seated"]
        if not pending:
            return False
        tid, st = min(pending, key=lambda p: p[0])
        self._score_some(tid, st)
        return True

    def _inputs(self, tid: int, st: dict):
        """(spec, teachers, eval set or None, why none) for a task, fetched once per process."""
        if tid in self._task_inputs:
            return self._task_inputs[tid]
        t = self.chain.view("getTask", tid)
        try:
            spec = parse_bytes(self.ipfs.cat(t["specCid"], max_bytes=1 << 20))
            teachers = load_teachers(spec, client=self.ipfs)
        except (SpecError, TeacherError) as exc:  # the owner published something unusable
            self._task_inputs[tid] = (None, None, None, f"task spec or teachers unusable: {exc}")
            return self._task_inputs[tid]
        evals = [e["evalCid"] for e in sorted(self.chain.events("EvalRevealed", tid), key=lambda e: e["ownerIndex"])]
        sets, why = [], None
        for cid in evals:
            try:
                sets.append(load_eval_set(self._fetch(st, cid, EVAL_MAX_BYTES), spec))
            except (CidNotFound, IpfsTimeout) as exc:
                if self._attempts(st, cid) < FETCH_ATTEMPTS:
                    raise TaskError(f"eval set {cid} not available yet ({exc})") from None
                why = f"eval set {cid} unavailable after {FETCH_ATTEMPTS} tries: {exc}"
            except (ContentTooLarge, EvalSetError) as exc:
                why = f"eval set {cid} unusable: {exc}"
        ev = None if why or not sets else union_eval_sets(sets)  # co-owned: the union, in owner order
        self._earlier_tasks[tid] = self._index_earlier_tasks(tid, st, spec)
        self._task_inputs[tid] = (spec, teachers, ev, why)
        return self._task_inputs[tid]

    def _index_earlier_tasks(self, tid: int, st: dict, spec: TaskSpec) -> set:
        """Add the accepted bundles of every earlier task sharing a teacher with ``tid`` to the
        novelty index; return their (task, submission) keys. Earlier: a smaller id, finalized in
        a block no later than this task's committee draw (the same set for every verifier)."""
        drawn = [e["blockNumber"] for e in self.chain.events("CommitteeDrawn", tid)]
        if not drawn:
            return set()
        cutoff = max(drawn)
        mine = {t["weights_cid"] for t in spec.teachers}
        keys = set()
        for fin in self.chain.events("Finalized"):
            u = fin["taskId"]
            if u >= tid or fin["blockNumber"] > cutoff:
                continue
            try:
                other = parse_bytes(self.ipfs.cat(self.chain.view("getTask", u)["specCid"], max_bytes=1 << 20))
            except (SpecError, CidNotFound, IpfsTimeout, ContentTooLarge):
                continue  # an unusable spec: that task accepted nothing
            shared = mine & {t["weights_cid"] for t in other.teachers}
            if not shared:
                continue
            cids = {e["index"]: e["cid"] for e in self.chain.events("Revealed", u)}
            for e in self.chain.events("SubmissionSettled", u):
                if e["status"] != Status.ACCEPTED:
                    continue
                key = (u, e["index"])
                source = {"chain_id": self.chain.chain_id, "contract": self.chain.address.lower(), "task_id": u,
                          "submission": e["index"], "cid": cids[e["index"]]}
                if not self.index.has(source):
                    images = self._bundle_images(st, cids[e["index"]], other)
                    if images is None:
                        continue  # nobody serves it any more: it cannot be replayed from the network either
                    self.index.add([t["weights_cid"] for t in other.teachers], images, source)
                keys.add(key)
        if keys:
            event(self.log, "replay check", task=tid, earlier_bundles=len(keys))
        return keys

    def _bundle_images(self, st: dict, cid: str, spec: TaskSpec):
        """The images of a bundle (uint8 [N, C, H, W]), or None when nobody serves it after
        FETCH_ATTEMPTS tries or it does not parse."""
        try:
            path = self._fetch(st, cid, spec.bundle["max_bytes"])
            images, _ = read(path.read_bytes())
            return images
        except (CidNotFound, IpfsTimeout) as exc:
            if self._attempts(st, cid) < FETCH_ATTEMPTS:
                raise TaskError(f"bundle {cid} not available yet ({exc})") from None
            return None
        except (ContentTooLarge, BundleError, OSError):
            return None

    def _attempts(self, st: dict, cid: str) -> int:
        tries = st.setdefault("fetch_tries", {})
        tries[cid] = tries.get(cid, 0) + 1
        self.state.save()
        return tries[cid]

    def _fetch(self, st: dict, cid: str, max_bytes: int):
        return content.fetch(cid, client=self.ipfs, max_bytes=max_bytes)

    def _score_some(self, tid: int, st: dict) -> None:
        revealed = {e["index"]: (e["miner"], e["cid"]) for e in self.chain.events("Revealed", tid)}
        if not self.strategy.scores:  # a demo adversary that does no work
            for s in self._work(st):
                st["scores"][str(s)] = {"score": 0, "verdict": "NOT SCORED", "miner": revealed.get(s, (None,))[0]}
            self._finish_scoring(tid, st)
            return
        spec, teachers, ev, why = self._inputs(tid, st)
        todo = [s for s in self._work(st) if str(s) not in st["scores"]]
        for s in todo[:BUNDLES_PER_PASS]:
            st["scores"][str(s)] = self._score_one(tid, st, s, spec, teachers, ev, why, revealed)
            self.state.save()  # each score is durable as soon as it exists
        if len(todo) <= BUNDLES_PER_PASS:
            self._finish_scoring(tid, st)

    def _score_one(self, tid, st, s, spec: TaskSpec | None, teachers, ev, why, revealed) -> dict:
        if s not in revealed:
            return {"score": 0, "verdict": "UNREVEALED", "miner": None}  # ignored on chain
        if spec is None:
            return {"score": INVALID, "verdict": "INVALID", "reasons": [{"code": "task_unusable", "detail": why}]}
        if ev is None:
            return {"score": NO_EVAL, "verdict": "NO_EVAL", "reasons": [{"code": "eval_unavailable", "detail": why}]}
        miner, cid = revealed[s]
        try:
            path = self._fetch(st, cid, spec.bundle["max_bytes"])
        except ContentTooLarge as exc:
            return {"score": INVALID, "verdict": "INVALID", "miner": miner,
                    "reasons": [{"code": "too_large", "detail": str(exc)}]}
        except (CidNotFound, IpfsTimeout) as exc:
            if self._attempts(st, cid) < FETCH_ATTEMPTS:
                raise TaskError(f"bundle {cid} of submission {s} not available yet ({exc})") from None
            return {"score": INVALID, "verdict": "INVALID", "miner": miner,
                    "reasons": [{"code": "unavailable", "detail": f"nobody served {cid}: {exc}"}]}
        earlier = self._earlier(tid, st, s, spec, revealed)
        allowed = self._earlier_tasks.get(tid, set())
        index = _IndexView(self.index, self.chain, allowed)
        verdict = validate_file(path, spec, Binding(self.chain.chain_id, self.chain.address, tid, miner), earlier,
                                index=index, eval_images=ev[0], device=self.device)
        novelty = verdict.novelty.to_json() if verdict.novelty is not None else None
        if not verdict.valid:
            return {"score": INVALID, "verdict": "INVALID", "miner": miner, "reasons": verdict.reasons,
                    "novelty": novelty}
        r = score_verdict(spec, teachers, verdict, ev, self.threads, self.device)
        return {"score": r["score_bps"], "verdict": "VALID", "miner": miner, "gain_bps": r["gain_bps"],
                "novel_images": r["novel_images"], "student_accuracy": r["student_accuracy"],
                "baseline_accuracy": r["baseline_accuracy"], "novelty": novelty}

    def _earlier(self, tid: int, st: dict, s: int, spec: TaskSpec, revealed: dict) -> list[Reference]:
        """Novelty references of every submission revealed before ``s`` in this task (commit
        order: the earliest commitment wins), whether or not this agent's seats score them.
        A bundle that does not parse, or that nobody serves, cannot have been first with anything."""
        cache = self._refs.setdefault(tid, {})
        out = []
        for e in sorted(i for i in revealed if i < s):
            if e not in cache:
                images = self._bundle_images(st, revealed[e][1], spec)
                ok = images is not None and tuple(images.shape[1:]) == tuple(spec.shape)
                cache[e] = reference("earlier_submission", f"submission {e}", images, spec) if ok else None
            if cache[e] is not None:
                out.append(cache[e])
        return out

    def _finish_scoring(self, tid: int, st: dict) -> None:
        vectors = {}
        for j in st["seats"]:
            subs = [st["scores"][str(s)] for s in seat_submissions(j, st["n"], st["k"], st["r"])]
            vectors[str(j)] = self.strategy.vector([x["score"] for x in subs], [x.get("miner") for x in subs])
        salts = {str(j): new_salt() for j in st["seats"]}
        # vectors and salts are durable before any commitment leaves
        self.save_stage(st, "scored", vectors=vectors, salts=salts)
        shown = {s: score_label(v["score"]) for s, v in sorted(st["scores"].items(), key=lambda kv: int(kv[0]))}
        event(self.log, "scored", task=tid, scores=shown)

    # -- commit / reveal -------------------------------------------------------------------
    def _commit(self, tid: int, st: dict, phase: Phase) -> None:
        """Commit every seat's vector; a seat already committed (killed after sending) is skipped."""
        _, committed, _ = self.chain.call("getSeats", tid)
        if not self.strategy.commits:  # a demo adversary that stays silent
            self.save_stage(st, "revealed")
            return
        for j in st["seats"]:
            if committed[j]:
                continue
            if phase != Phase.SCORE_COMMIT:
                self.save_stage(st, "missed")
                event(self.log, "missed the score-commit window", logging.WARNING, task=tid)
                return
            c = score_commitment(st["vectors"][str(j)], salt_bytes(st["salts"][str(j)]), self.me, tid, j,
                                 self.chain.chain_id, self.chain.address)
            self.chain.send("commitScores", tid, j, c)
        self.save_stage(st, "committed")
        event(self.log, "scores committed", task=tid, seats=st["seats"])

    def _reveal(self, tid: int, st: dict) -> None:
        _, _, revealed = self.chain.call("getSeats", tid)
        if self.strategy.copies_reveals:
            self._try_copied_reveal(tid, st, revealed)
            return
        for j in st["seats"]:
            if not revealed[j]:
                self.chain.send("revealScores", tid, j, st["vectors"][str(j)], salt_bytes(st["salts"][str(j)]))
        self.save_stage(st, "revealed")
        event(self.log, "scores revealed", task=tid, seats=st["seats"])

    def _try_copied_reveal(self, tid: int, st: dict, revealed: list[bool]) -> None:
        """The copier adversary: wait for another seat with the same submissions to reveal, then try
        to reveal its vector as our own. The commitment binds sender, seat and salt, so it reverts."""
        others = [j for j, r in enumerate(revealed) if r and j not in st["seats"]]
        if not others:
            return  # nothing to copy yet; try again next pass
        copied = list(self.chain.call("getScores", tid, others[0]))
        for j in st["seats"]:
            try:
                self.chain.send("revealScores", tid, j, copied[:len(st["vectors"][str(j)])], salt_bytes(st["salts"][str(j)]))
            except TxReverted as exc:
                event(self.log, "copying another seat's reveal failed", logging.WARNING, task=tid, seat=j,
                      reason=exc.error)
        self.save_stage(st, "revealed")

    def _outcome(self, tid: int, st: dict) -> None:
        """One line per settled task: what the seats earned or lost, and why."""
        settled = [e for e in self.chain.events("SeatSettled", tid) if e["verifier"] == self.me]
        fee = sum(e["amount"] for e in self.chain.events("Credited", tid, account=self.me))
        slashed = sum(e["slashed"] for e in settled)
        faulty = [e["seat"] for e in settled if e["faulty"]]
        why = (f"seats {faulty} faulty (silent or outside tolerance): slashed {eth(slashed)}" if faulty
               else "every seat agreed with the majority")
        event(self.log, f"task {tid} settled: fee {eth(fee, True)}, {why}", task=tid, fee_wei=fee,
              slashed_wei=slashed)


class _IndexView:
    """The novelty index as one task's check sees it: only the accepted bundles of this
    market's earlier tasks that the deterministic cut-off allows (see the module doc)."""

    def __init__(self, index: NoveltyIndex, chain, allowed: set):
        self.index, self.allowed = index, allowed
        self.chain_id, self.contract = chain.chain_id, chain.address.lower()

    def references(self, teacher_cids):
        if not self.allowed:
            return []
        return self.index.references(teacher_cids, where=lambda s: s.get("chain_id") == self.chain_id
                                     and s.get("contract") == self.contract
                                     and (s.get("task_id"), s.get("submission")) in self.allowed)
