"""The verifying agent: `codream verifier run`.

It stakes once (in the stake registry) and activates its stake when the warm-up is over; keeps
the protocol moving as a keeper (`verifier/keeper.py`: requests and draws committees and appeal
committees, re-requests a missed draw window, resolves appeals and settles tasks in batches sized
by eth_estimateGas: anyone may); and for the seats it holds: fetches the spec, teachers and every revealed eval set,
checks each owner's set against its declared teacher accuracy (one eval verdict per owner),
fetches the bundles its seats are assigned (CIDs verified), validates and scores them on the union
of the eval sets it judged OK, commits one vector per seat, reveals it, and claims. In the appeal
window it appeals a result its own score disagrees with (outside tolerance, or no standing
result), and it serves on appeal committees like on any committee.

Each pass first does every task's quick, deadline-bound step (draw, commit, reveal, appeal,
settle), then a slice of scoring work for the task whose score-commit deadline is nearest, saving
each score as it is computed. So scoring many bundles never makes it miss a reveal elsewhere, and
a killed agent resumes without rescoring. A bundle nobody serves becomes INVALID, an eval set
nobody serves EVAL_UNAVAILABLE (with the reason) once retrying cannot help any more.

Novelty (verification v2, ``codream/novelty.py``): a bundle is compared with the submissions
revealed before it in the task (commit order: the earliest commitment wins), with the task's
revealed eval sets, and with the accepted bundles of earlier tasks that share a teacher. That
last set is the persistent :class:`verifier.index.NoveltyIndex`, filled from chain events and
IPFS; so that every verifier compares with the same set, "earlier" means: a task with a smaller
id whose ``Finalized`` event is in a block no later than this task's ``CommitteeDrawn``.

Scoring itself is :func:`verifier.score.score`, a pure function of one job (the task's inputs,
the bundle's CID, binding, earlier submissions and recipe seed): run here by default, or with a
``backend`` (``verifier run --ray-address``: :class:`verifier.ray_backend.RayBackend`) on a
cluster's workers; this process keeps the key, the state and the chain either way.

Per-task stages (:class:`Stage`): new → drawn (seats known, bundles being revealed) → seated (scoring) → scored
(vectors and salts saved) → committed → revealed → done; or new → watching (not on the committee:
still a keeper and a possible appeal seat) → done. Appeal seats and appeals it made are kept per
task under ``appeal_seats`` and ``appealed``.
"""
from __future__ import annotations

import logging
from enum import StrEnum

from codream import content
from codream.arithmetic import ArithmeticMismatch
from codream.agent import Agent, TaskError, event
from codream.bundle import Binding, BundleError, read
from codream.chain import ChainError, TxReverted
from codream.evalset import EvalCheck, EvalSetError, check_eval_set, load_eval_set, union_eval_sets
from codream.market import contradicts, duration, eth, task_judging_seed
from codream.protocol import INVALID, NO_EVAL, AppealStage, EvalVerdict, Phase, Status, appeal_commitment, new_salt, \
    recipe_seed, salt_bytes, score_commitment, score_label, seat_submissions, seat_vector
from codream.spec import SpecError, TaskSpec, parse_bytes
from codream.teachers import TeacherError, load_teachers
from ipfs import CidNotFound, ContentTooLarge, IpfsError, IpfsTimeout

from .index import NoveltyIndex
from .keeper import MAX_CALL_GAS, Keeper
from codream.novelty import Reference, reference
from .score import BundleJob, StaticIndex, TaskInputs, score
from .strategies import Honest, VerifierStrategy

FETCH_ATTEMPTS = 3  # a CID nobody serves after this many tries is given up (INVALID / EVAL_UNAVAILABLE)
BUNDLES_PER_PASS = 4  # scoring slice between two passes over the deadlines
EVAL_MAX_BYTES = 256 << 20


class Stage(StrEnum):
    """Where one task stands for this agent (saved in its state file as the value)."""
    NEW = "new"
    WATCHING = "watching"  # not on the committee: a keeper, maybe an appeal seat
    DRAWN = "drawn"        # seats known, bundles being revealed
    SEATED = "seated"      # scoring
    SCORED = "scored"      # vectors and salts saved (before any commitment leaves)
    COMMITTED = "committed"
    REVEALED = "revealed"
    MISSED = "missed"      # a window passed: nothing left to do but be slashed
    DONE = "done"


class VerifierAgent(Agent):
    role = "verifier"
    DONE_STAGES = (Stage.DONE,)

    def __init__(self, chain, ipfs, stake_wei: int, threads: int | None = 1, claim: bool = True,
                 keeper: bool = True, verbose: bool = True, strategy: VerifierStrategy | None = None,
                 device: str = "cpu", index: NoveltyIndex | None = None, appeals: bool = True,
                 max_call_gas: int = MAX_CALL_GAS, score_memo: dict | None = None, backend=None,
                 backend_wait: float = 1.0):
        super().__init__(chain, ipfs, claim, verbose)
        self.stake_wei, self.threads, self.device = stake_wei, threads, device
        self.strategy = strategy or Honest()
        self.appeals = appeals
        # the keeper's duties (draws, settlement, appeal draws and resolution): None when --no-keeper
        self.keeper = Keeper(chain, self.log, max_call_gas) if keeper else None
        # (task, submission) -> score record, shared by agents run in one process (the adversarial
        # demo's worker): scoring is deterministic, so each would compute the same record
        self.score_memo = score_memo
        # one index per agent (its own folder: agents sharing a home never write the same files)
        self.index = index or NoveltyIndex(self.state.dir / "novelty-index")
        self._task_inputs: dict[int, tuple] = {}  # tid -> (spec, teachers, union of OK eval sets or None, reason)
        self._refs: dict[int, dict] = {}  # tid -> submission -> novelty reference (None: unusable)
        self._earlier_tasks: dict[int, set] = {}  # tid -> {(task, submission)} its replay check may use
        # where bundles are scored: None = here, in this process (the default); else a cluster
        # backend (submit / pending / results, e.g. verifier.ray_backend.RayBackend). The key,
        # the chain and the state stay in this process either way.
        self.backend, self.backend_wait = backend, backend_wait
        self._jobs_inputs: dict[int, TaskInputs] = {}

    # -- the stake --------------------------------------------------------------------
    def prepare(self) -> None:
        if not self.state.data.get("staked"):
            if self.chain.call("stakeOf", self.me, on="registry") == 0:
                self.chain.send("stake", value=self.stake_wei, on="registry")
                event(self.log, "staked (warming up before it counts in draws)", stake=eth(self.stake_wei))
            self.state.data["staked"] = True
            self.state.save()
        pending = self.chain.view("pendingOf", self.me, on="registry")
        if pending["amount"] and pending["activatesAt"] <= self.chain.block()["timestamp"]:
            try:
                self.chain.send("activate", self.me, on="registry", min_gas=self.chain.tree_write_gas())
                event(self.log, "stake activated: it counts in draws now", stake=eth(pending["amount"]))
            except TxReverted as exc:  # unbonding, or someone activated it first
                event(self.log, "activation not possible now", reason=str(exc))

    def joined_any(self) -> bool:
        """--until-idle: every task it has seen is settled (seated or not: the draw is random)."""
        tasks = self.state.data["tasks"].values()
        return bool(tasks) and all(t.get("stage") == Stage.DONE for t in tasks)

    # -- one task's quick step -------------------------------------------------------
    def advance(self, tid: int, st: dict, phase: int) -> bool:
        phase = Phase(phase)
        if phase == Phase.FINALIZED:
            if st.get("seats") or st.get("appeal_seats") or st.get("appealed"):
                self._outcome(tid, st)
            self.save_stage(st, Stage.DONE)
            return False
        if phase == Phase.AWAITING_DRAW:
            if self.keeper:
                self.keeper.draw(tid)
            return True
        if phase in (Phase.AWAITING_SETTLEMENT, Phase.SETTLING):
            if st.get("stage") == Stage.COMMITTED:
                self.save_stage(st, Stage.MISSED)  # the reveal window passed: nothing to do but be slashed
                event(self.log, "missed the score-reveal window", logging.WARNING, task=tid)
            if self.keeper:
                self.keeper.settle(tid)
            return True
        if phase >= Phase.REVEAL:
            self._committee_step(tid, st, phase)
        if phase == Phase.APPEAL:
            self._appeal_step(tid, st)
        return phase != Phase.NONE

    def _committee_step(self, tid: int, st: dict, phase: Phase) -> None:
        """From the draw to the score reveal: learn the seats, score, commit, reveal."""
        if st["stage"] == Stage.NEW:
            seats = list(self.chain.call("seatsOf", tid, self.me, on="lens"))
            if not seats:
                self.save_stage(st, Stage.WATCHING)  # not on the committee: a keeper, maybe an appeal seat
                return
            t = self.chain.view("getTask", tid)
            self.save_stage(st, Stage.DRAWN, seats=seats, n=t["submissionCount"], k=t["seats"],
                            r=t["seatsPerSubmission"], owners=t["ownerCount"], seed="0x" + bytes(t["seed"]).hex(),
                            scores={})
            event(self.log, "on the committee", task=tid, seats=seats, bundles=len(self._work(st)),
                  reveal_closes_in=duration(t["revealEnd"] - self.chain.block()["timestamp"]),
                  score_commit_closes_in=duration(t["scoreCommitEnd"] - self.chain.block()["timestamp"]))
        if st["stage"] == Stage.DRAWN and phase >= Phase.SCORE_COMMIT and self._judging_seed(tid, st):
            self.save_stage(st, Stage.SEATED)  # every bundle is revealed (or never will be): score
        if st["stage"] == Stage.SCORED:
            self._commit(tid, st, phase)
        if st["stage"] == Stage.COMMITTED and phase == Phase.SCORE_REVEAL:
            self._reveal(tid, st)
        if st["stage"] in (Stage.DRAWN, Stage.SEATED) and phase >= Phase.SCORE_REVEAL:
            self.save_stage(st, Stage.MISSED)
            event(self.log, "missed the score-commit window: scoring took too long", logging.WARNING, task=tid)
        if st["stage"] == Stage.COMMITTED and phase > Phase.SCORE_REVEAL:
            self.save_stage(st, Stage.MISSED)
            event(self.log, "missed the score-reveal window", logging.WARNING, task=tid)

    # -- appeals ---------------------------------------------------------------------------
    def _appeal_step(self, tid: int, st: dict) -> None:
        """In the appeal phase: appeal results its own scores contradict, serve on appeal
        committees, and (as a keeper) draw and resolve appeals."""
        if self.appeals and st.get("stage") == Stage.REVEALED and self.strategy.appeals:
            self._maybe_appeal(tid, st)
        count = self.chain.call("appealCount", tid, on="appeals")
        for a in range(count):
            x = self.chain.view("getAppeal", tid, a, on="appeals")
            stage = AppealStage(x["stage"])
            if stage == AppealStage.SCORING:
                self._serve_appeal_seats(tid, st, a, x)
            if self.keeper and stage != AppealStage.RESOLVED:
                self.keeper.appeal(tid, a, x, stage)

    def _maybe_appeal(self, tid: int, st: dict) -> None:
        """Appeal each submission it scored whose standing result its score contradicts: another
        status, outside tolerance, or no majority at all (an unjudged submission it did judge)."""
        t = self.chain.view("getTask", tid)
        if self.chain.block()["timestamp"] > t["appealEnd"]:
            return
        done = st.setdefault("appealed", {})
        for s_key, rec in sorted(st["scores"].items(), key=lambda kv: int(kv[0])):
            if s_key in done or rec.get("verdict") in ("UNREVEALED", "NOT SCORED") or rec.get("miner") == self.me:
                continue
            mine = rec["score"]
            j = self.chain.view("judge", tid, int(s_key), on="lens")
            if not contradicts(mine, j, t["toleranceBps"], t["minGainBps"]):
                continue
            if self.chain.call("appealed", tid, int(s_key), on="appeals"):
                done[s_key] = {"by": "someone else"}
                continue
            deposit = self.chain.call("depositFor", tid, on="appeals")
            try:
                receipt = self.chain.send("appeal", tid, int(s_key), value=deposit, on="appeals")
            except (TxReverted, ChainError) as exc:
                event(self.log, "appeal not possible", logging.WARNING, task=tid, submission=s_key, reason=str(exc))
                done[s_key] = {"error": str(exc)}
                self.state.save()
                continue
            aid = self.chain.appeals.events.Appealed().process_receipt(receipt)[0]["args"]["appealId"]
            done[s_key] = {"appeal": aid, "deposit": deposit, "mine": mine, "standing": j["result"],
                           "majority": j["majority"]}
            self.state.save()
            event(self.log, "appealed", task=tid, submission=int(s_key), mine=score_label(mine),
                  standing=score_label(j["result"]) if j["majority"] else "no majority", deposit=eth(deposit))

    def _serve_appeal_seats(self, tid: int, st: dict, a: int, x: dict) -> None:
        """Score the appealed submission for every seat this agent holds on the appeal committee,
        commit, then reveal (a seat held by the submission's own miner abstains)."""
        verifiers, committed, revealed, _ = self.chain.call("getAppealSeats", tid, a, on="appeals")
        mine = [j for j, v in enumerate(verifiers) if v == self.me]
        if not mine:
            return
        rec = st.setdefault("appeal_seats", {}).setdefault(str(a), {"seats": mine, "submission": x["submission"]})
        now = self.chain.block()["timestamp"]
        if "score" not in rec:
            if not self.strategy.commits:
                rec["score"] = None  # a silent adversary
            else:
                rec["score"] = self._appeal_score(tid, st, x["submission"])
                rec["salts"] = {str(j): new_salt() for j in mine}
            self.state.save()
            event(self.log, "on an appeal committee", task=tid, appeal=a, submission=x["submission"], seats=mine,
                  score=score_label(rec["score"]) if rec["score"] is not None else "silent")
        if rec["score"] is None:
            return
        if now <= x["commitEnd"]:
            for j in mine:
                if not committed[j]:
                    c = appeal_commitment(rec["score"], salt_bytes(rec["salts"][str(j)]), self.me, tid, a, j,
                                          self.chain.chain_id, self.chain.appeals.address)
                    self.chain.send("commitAppealScore", tid, a, j, c, on="appeals")
        elif now <= x["revealEnd"]:
            for j in mine:
                if committed[j] and not revealed[j]:
                    self.chain.send("revealAppealScore", tid, a, j, rec["score"], salt_bytes(rec["salts"][str(j)]),
                                    on="appeals")

    def _appeal_score(self, tid: int, st: dict, s: int) -> int:
        """Its score of submission s: the one it computed on the committee, or computed now."""
        if str(s) in st.get("scores", {}):
            return self.strategy.appeal_score(st["scores"][str(s)]["score"], st["scores"][str(s)].get("miner"))
        revealed = {e["index"]: (e["miner"], e["cid"]) for e in self.chain.events("Revealed", tid)}
        rec = self._score_one(tid, st, s, revealed)
        st.setdefault("appeal_scores", {})[str(s)] = rec
        return self.strategy.appeal_score(rec["score"], rec.get("miner"))

    # -- scoring (the long work) -----------------------------------------------------------
    @staticmethod
    def _work(st: dict) -> list[int]:
        """The submissions this agent's seats score, ascending (commit order)."""
        return sorted({s for j in st["seats"] for s in seat_submissions(j, st["n"], st["k"], st["r"])})

    def background(self) -> bool:
        pending = [(tid, st) for tid, st in ((int(k), v) for k, v in self.state.data["tasks"].items())
                   if st.get("stage") == Stage.SEATED]
        if not pending:
            return False
        tid, st = min(pending, key=lambda p: p[0])
        self._score_some(tid, st)
        return True

    def _inputs(self, tid: int, st: dict):
        """(spec, teachers, union of the eval sets it judged OK or None, why none) for a task,
        fetched and checked once per process; the per-owner checks go to ``st["eval_checks"]``."""
        if tid in self._task_inputs:
            return self._task_inputs[tid]
        t = self.chain.view("getTask", tid)
        owners = self.chain.view_list("owners", tid)
        try:
            spec = parse_bytes(self.ipfs.cat(t["specCid"], max_bytes=1 << 20))
            teachers = load_teachers(spec, client=self.ipfs)
        except (SpecError, TeacherError) as exc:  # the creator published something unusable
            why = f"task spec or teachers unusable: {exc}"
            st["eval_checks"] = [{"verdict": int(EvalVerdict.FAILED), "measured_bps": None, "reason": why}
                                 for _ in owners]
            self.state.save()
            self._task_inputs[tid] = (None, None, None, why)
            return self._task_inputs[tid]
        evals = {e["ownerIndex"]: e["evalCid"] for e in self.chain.events("EvalRevealed", tid)}
        checks, ok_sets = [], []
        for i, o in enumerate(owners):
            check, ev = self._check_owner(st, spec, teachers, evals.get(i), o["evalAccuracyBps"])
            checks.append({"verdict": int(check.verdict), "measured_bps": check.measured_bps, "reason": check.reason})
            if check.ok:
                ok_sets.append(ev)
        st["eval_checks"] = checks
        self.state.save()
        event(self.log, "eval sets checked", task=tid,
              verdicts=[f"{EvalVerdict(c['verdict']).name}: {c['reason']}" for c in checks])
        ev = union_eval_sets(ok_sets) if ok_sets else None  # co-owned: the union, in owner order
        why = None if ok_sets else "no revealed eval set passed the checks"
        self._earlier_tasks[tid] = self._index_earlier_tasks(tid, st, spec)
        self._task_inputs[tid] = (spec, teachers, ev, why)
        return self._task_inputs[tid]

    def _check_owner(self, st: dict, spec: TaskSpec, teachers, cid: str | None, declared: int):
        """One owner's eval verdict and its loaded set (None unless OK)."""
        if cid is None:
            return EvalCheck(EvalVerdict.UNAVAILABLE, None, "never revealed"), None
        try:
            ev = load_eval_set(self._fetch(st, cid, EVAL_MAX_BYTES), spec)
        except (CidNotFound, IpfsTimeout) as exc:
            if self._attempts(st, cid) < FETCH_ATTEMPTS:
                raise TaskError(f"eval set {cid} not available yet ({exc})") from None
            return EvalCheck(EvalVerdict.UNAVAILABLE, None, f"nobody served {cid} after {FETCH_ATTEMPTS} tries"), None
        except (ContentTooLarge, EvalSetError) as exc:
            return check_eval_set(spec, teachers, exc, declared), None
        check = check_eval_set(spec, teachers, ev, declared)
        return check, ev if check.ok else None

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
            path = self._fetch(st, cid, spec.bundle.max_bytes)
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
            st["eval_checks"] = [{"verdict": int(EvalVerdict.OK), "measured_bps": None, "reason": "not checked"}
                                 for _ in range(st["owners"])]
            self._finish_scoring(tid, st)
            return
        # the task's inputs first: its eval-set checks (st["eval_checks"]) are part of every seat's
        # vector, even when no bundle is left to score here (all unrevealed, or scored by a shared memo)
        self._inputs(tid, st)
        todo = [s for s in self._work(st) if str(s) not in st["scores"]]
        if self.backend is not None:
            self._score_on_backend(tid, st, todo, revealed)
            return
        for s in todo[:BUNDLES_PER_PASS]:
            memo = self.score_memo if self.score_memo is not None else {}
            if (tid, s) not in memo:
                memo[(tid, s)] = self._guarded(tid, s, lambda: self._score_one(tid, st, s, revealed))
            self._save_score(st, s, memo[(tid, s)])
        if len(todo) <= BUNDLES_PER_PASS:
            self._finish_scoring(tid, st)

    def _save_score(self, st: dict, s: int, rec: dict) -> None:
        st["scores"][str(s)] = {k: v for k, v in rec.items() if k != "memo"}
        self.state.save()  # each score is durable as soon as it exists

    def _guarded(self, tid: int, s: int, fn):
        """Run one bundle's scoring step; a bug on one bundle must not stop the agent: the task backs off."""
        try:
            return fn()
        except (ChainError, IpfsError, TaskError):
            raise
        except ArithmeticMismatch as exc:  # this machine cannot judge receipts: say so, never guess INVALID
            raise TaskError(str(exc)) from None
        except Exception as exc:
            self.log.exception("internal error scoring task %s submission %s", tid, s)
            raise TaskError(f"could not score submission {s} of task {tid}: {type(exc).__name__}: {exc} "
                            "(an internal error; agent.log has the traceback)") from exc

    def _score_on_backend(self, tid: int, st: dict, todo: list[int], revealed: dict) -> None:
        """Scoring on a cluster (``backend``, e.g. :class:`verifier.ray_backend.RayBackend`): every
        bundle still to score is one job, sent once (a worker that dies is retried by the
        backend); each result is saved as it arrives, and the seats' vectors are made from the
        saved results only, so a result can never be committed twice. A job lost with this
        process (a crash) is sent again after the restart: its score was not saved."""
        for s in todo:
            if self.backend.pending((tid, s)):
                continue
            job = self._guarded(tid, s, lambda: self._job(tid, st, s, revealed))
            if isinstance(job, dict):  # nothing to fetch: unrevealed, or no usable eval set
                self._save_score(st, s, job)
            else:
                self.backend.submit((tid, s), *job)
        for (u, s), outcome in self.backend.results(timeout=self.backend_wait):
            other = self.state.task(u)
            if str(s) in other.get("scores", {}) or other.get("stage") != Stage.SEATED:
                continue  # a task that moved on (missed its window) meanwhile
            miner, cid = revealed[s] if u == tid else \
                next((e["miner"], e["cid"]) for e in self.chain.events("Revealed", u) if e["index"] == s)
            st_u = other
            if isinstance(outcome, (CidNotFound, IpfsTimeout)):
                if self._attempts(st_u, cid) < FETCH_ATTEMPTS:
                    continue  # sent again next pass
                outcome = _unavailable(cid, outcome)
            elif isinstance(outcome, Exception):
                self._guarded(u, s, lambda: _raise(outcome))
            self._save_score(st_u, s, {**outcome, "miner": miner})
        if all(str(s) in st["scores"] for s in todo):
            self._finish_scoring(tid, st)

    def _job(self, tid: int, st: dict, s: int, revealed: dict):
        """Submission s's scoring job: (TaskInputs, BundleJob), or its record when there is
        nothing to score (not revealed: ignored on chain; no usable spec or eval set: not the
        miner's fault, unjudged, its bond comes back)."""
        if s not in revealed:
            return {"score": 0, "verdict": "UNREVEALED", "miner": None}
        miner, cid = revealed[s]
        spec, teachers, ev, why = self._inputs(tid, st)
        if spec is None or ev is None:
            return {"score": NO_EVAL, "verdict": "NO_EVAL", "miner": miner,
                    "reasons": [{"code": "task_unusable" if spec is None else "eval_unavailable", "detail": why}]}
        if tid not in self._jobs_inputs:
            allowed = self._earlier_tasks.get(tid, set())
            refs = _IndexView(self.index, self.chain, allowed).references([t["weights_cid"] for t in spec.teachers])
            self._jobs_inputs[tid] = TaskInputs(spec, ev, StaticIndex(refs), self.ipfs.api, self.threads, self.device)
        judged = self._judging_seed(tid, st)
        if judged is None:  # only before the reveal window closed: nothing scores before that
            raise TaskError(f"task {tid}'s judging seed is not fixed yet (its reveal window is open, or the block "
                            "after it is not final yet)")
        seed = recipe_seed(judged, cid)
        return self._jobs_inputs[tid], BundleJob(cid=cid, binding=Binding(self.chain.chain_id, self.chain.address,
                                                                          tid, miner),
                                                 earlier=tuple(self._earlier(tid, st, s, spec, revealed)), seed=seed)

    def _score_one(self, tid: int, st: dict, s: int, revealed: dict) -> dict:
        """Score submission s here, in this process (the default: no cluster)."""
        job = self._job(tid, st, s, revealed)
        if isinstance(job, dict):
            return job
        miner, cid = revealed[s]
        try:
            rec = score(*job, teachers=self._task_inputs[tid][1], client=self.ipfs)
        except (CidNotFound, IpfsTimeout) as exc:
            if self._attempts(st, cid) < FETCH_ATTEMPTS:
                raise TaskError(f"bundle {cid} of submission {s} not available yet ({exc})") from None
            rec = _unavailable(cid, exc)
        return {**rec, "miner": miner}

    def _judging_seed(self, tid: int, st: dict) -> bytes | None:
        """The task's judging seed (``codream.market.task_judging_seed``), read once the reveal
        window closed and kept in the task's state: the recipe seed of every bundle and its
        replayed shard derive from it, for committee and appeal seats alike."""
        if not st.get("judging_seed"):
            judged = task_judging_seed(self.chain, tid)
            if judged is None:
                if not st.get("seal_waiting"):  # said once: off a devnet finality takes minutes
                    st["seal_waiting"] = True
                    event(self.log, "waiting for the block after the reveal window to be final (the judging seed)",
                          task=tid)
                return None
            st["judging_seed"] = "0x" + judged.hex()
            self.state.save()
        return bytes.fromhex(st["judging_seed"][2:])

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
        verdicts = self.strategy.verdicts([c["verdict"] for c in st["eval_checks"]])
        vectors = {}
        for j in st["seats"]:
            subs = [st["scores"][str(s)] for s in seat_submissions(j, st["n"], st["k"], st["r"])]
            scores = self.strategy.vector([x["score"] for x in subs], [x.get("miner") for x in subs])
            vectors[str(j)] = seat_vector(verdicts, scores)
        salts = {str(j): new_salt() for j in st["seats"]}
        # vectors and salts are durable before any commitment leaves
        self.save_stage(st, Stage.SCORED, vectors=vectors, salts=salts)
        shown = {s: score_label(v["score"]) for s, v in sorted(st["scores"].items(), key=lambda kv: int(kv[0]))}
        event(self.log, "scored", task=tid, scores=shown)

    # -- commit / reveal -------------------------------------------------------------------
    def _commit(self, tid: int, st: dict, phase: Phase) -> None:
        """Commit every seat's vector; a seat already committed (killed after sending) is skipped."""
        _, committed, _ = self.chain.call("getSeats", tid, on="lens")
        if not self.strategy.commits:  # a demo adversary that stays silent
            self.save_stage(st, Stage.REVEALED)
            return
        for j in st["seats"]:
            if committed[j]:
                continue
            if phase != Phase.SCORE_COMMIT:
                self.save_stage(st, Stage.MISSED)
                event(self.log, "missed the score-commit window", logging.WARNING, task=tid)
                return
            c = score_commitment(st["vectors"][str(j)], salt_bytes(st["salts"][str(j)]), self.me, tid, j,
                                 self.chain.chain_id, self.chain.address)
            self.chain.send("commitScores", tid, j, c)
        self.save_stage(st, Stage.COMMITTED)
        event(self.log, "scores committed", task=tid, seats=st["seats"])

    def _reveal(self, tid: int, st: dict) -> None:
        _, _, revealed = self.chain.call("getSeats", tid, on="lens")
        if self.strategy.copies_reveals:
            self._try_copied_reveal(tid, st, revealed)
            return
        for j in st["seats"]:
            if not revealed[j]:
                self.chain.send("revealScores", tid, j, st["vectors"][str(j)], salt_bytes(st["salts"][str(j)]))
        self.save_stage(st, Stage.REVEALED)
        event(self.log, "scores revealed", task=tid, seats=st["seats"])

    def _try_copied_reveal(self, tid: int, st: dict, revealed: list[bool]) -> None:
        """The copier adversary: wait for another seat with the same submissions to reveal, then try
        to reveal its vector as our own. The commitment binds sender, seat and salt, so it reverts."""
        others = [j for j, r in enumerate(revealed) if r and j not in st["seats"]]
        if not others:
            return  # nothing to copy yet; try again next pass
        copied = list(self.chain.call("getScores", tid, others[0], on="lens"))
        for j in st["seats"]:
            try:
                self.chain.send("revealScores", tid, j, copied[:len(st["vectors"][str(j)])], salt_bytes(st["salts"][str(j)]))
            except TxReverted as exc:
                event(self.log, "copying another seat's reveal failed", logging.WARNING, task=tid, seat=j,
                      reason=exc.error)
        self.save_stage(st, Stage.REVEALED)

    def _outcome(self, tid: int, st: dict) -> None:
        """One line per settled task: what the seats earned or lost (slashes are burned), and the
        appeals it made or served on."""
        settled = [e for e in self.chain.events("SeatSettled", tid) if e["verifier"] == self.me]
        credited = sum(e["amount"] for e in self.chain.events("Credited", tid, account=self.me))
        slashed = sum(e["slashed"] for e in settled)
        slashed += sum(e["slashed"] for e in self.chain.events("AppealSeatSettled", tid, on="appeals",
                                                               verifier=self.me))
        slashed += sum(e["slashed"] for e in self.chain.events("OriginalSeatOverturned", tid, on="appeals",
                                                               verifier=self.me))
        faulty = [e["seat"] for e in settled if e["faulty"]]
        why = (f"seats {faulty} faulty (silent or outvoted): slashed {eth(slashed)}, burned" if faulty
               else "every seat agreed with the majority" if settled else "not on the committee")
        appealed = {k: v for k, v in st.get("appealed", {}).items() if "appeal" in v}
        if appealed:
            why += f"; appealed submissions {sorted(int(k) for k in appealed)}"
        if st.get("appeal_seats"):
            why += f"; served on appeals {sorted(int(a) for a in st['appeal_seats'])}"
        event(self.log, f"task {tid} settled: credited {eth(credited, True)}, {why}", task=tid, credited_wei=credited,
              slashed_wei=slashed)


def _unavailable(cid: str, exc: Exception) -> dict:
    return {"score": INVALID, "verdict": "INVALID", "reasons": [{"code": "unavailable",
                                                                 "detail": f"nobody served {cid}: {exc}"}]}


def _raise(exc: Exception):
    raise exc


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
