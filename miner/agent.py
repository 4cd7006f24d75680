"""The mining agent: `codream miner run`.

Per task it walks: new → dreamed (bundles on disk, CIDs known) → salted (salts on disk) →
committed (indices from the Committed events) → revealed (bundles pinned and CIDs revealed once
the committee is drawn: protocol v3 reveals after the draw) → settled. If the round fails before
its draw (no eval set, no committee), nothing is revealed: committed → reclaiming → settled, the
bonds taken back with `reclaimBond`. Every stage is saved before the action that leaves it, so a killed agent resumes
where it was: a commit that reached the chain before the agent could record it is recognised
from the chain's events (its own commits, in the order it sent them) and never sent twice.

What it submits comes from a :class:`~miner.strategies.Strategy`: honest dreaming, or a
test/demo adversary. Usually one bundle per task; a spam strategy asks for several.
"""
from __future__ import annotations

import hashlib

from codream import bundle as bundlemod
from codream.agent import Agent, event
from codream.bundle import Binding
from codream.chain import ChainError, InsufficientFunds, TxReverted
from codream.market import eth, verdict
from codream.protocol import Phase, Status, miner_commitment, new_salt, salt_bytes, score_label
from codream.spec import SpecError, parse_bytes
from codream.teachers import TeacherError
from ipfs import cid_of_file

from .strategies import CannotMine, Honest, Strategy


class MinerAgent(Agent):
    role = "miner"
    DONE_STAGES = ("settled", "skipped", "missed")  # (reclaiming: waits for the failed round's settlement)

    def __init__(self, chain, ipfs, n: int = 1000, strategy: Strategy | None = None, task_filter: int | None = None,
                 claim: bool = True, verbose: bool = True):
        super().__init__(chain, ipfs, claim, verbose)
        self.n, self.strategy, self.task_filter = n, strategy or Honest(), task_filter

    def tasks(self) -> list[int]:
        return [self.task_filter] if self.task_filter else super().tasks()

    def joined_any(self) -> bool:
        """--until-idle: it joined a task and all it joined are settled, or there is nothing to join."""
        stages = [t["stage"] for t in self.state.data["tasks"].values()]
        return any(s not in ("new", "skipped") for s in stages) or (bool(stages) and all(s == "skipped" for s in stages))

    def advance(self, tid: int, st: dict, phase: int) -> bool:
        if st["stage"] == "new":
            if phase != Phase.COMMIT:
                self.save_stage(st, "skipped")
                return False
            self._dream(tid, st)
        if st["stage"] == "skipped":
            return False
        if st["stage"] == "dreamed" and phase == Phase.COMMIT:
            for sub in st["subs"]:
                sub.setdefault("salt", new_salt())
            self.save_stage(st, "salted")  # the salts are durable before any commitment leaves
        if st["stage"] == "salted":
            self._commit(tid, st, phase)
        if st["stage"] == "committed":
            if phase == Phase.REVEAL:
                self._reveal(tid, st)
            elif phase > Phase.REVEAL:
                if self.chain.view("getTask", tid)["revealEnd"] == 0:  # failed before its draw
                    self.save_stage(st, "reclaiming")
                    event(self.log, "the round failed before its draw: nothing is revealed, the bond comes back",
                          task=tid)
                else:
                    self._reveal_missed(tid, st)
        if st["stage"] == "reclaiming" and phase == Phase.FINALIZED:
            self._reclaim(tid, st)
        if st["stage"] == "revealed" and phase == Phase.FINALIZED:
            self._outcome(tid, st)
            self.save_stage(st, "settled")
        return st["stage"] not in self.DONE_STAGES

    # -- stages ------------------------------------------------------------------
    def _check_funds(self, amount: int) -> None:
        """Say so (in ETH, with what to do) before spending work or sending a doomed transaction."""
        have = self.chain.balance()
        if have < amount:
            raise InsufficientFunds(f"the task's bond(s) total {eth(amount)} but {self.me} has {eth(have)}" +
                                    (": fund it with `codream devnet fund ADDRESS`" if self.chain.devnet else ""))

    def _seed(self, tid: int, copy: int) -> int:
        """A seed of its own per miner, market, task and copy: dreams for two tasks with the same
        teacher differ (the same bytes twice would be a replay, which verifiers refuse)."""
        tag = f"{self.me.lower()}|{self.chain.chain_id}|{self.chain.address.lower()}|{tid}|{copy}".encode()
        return int.from_bytes(hashlib.sha256(tag).digest()[:6], "big")

    def _dream(self, tid: int, st: dict) -> None:
        task = self.chain.view("getTask", tid)
        copies = self.strategy.copies
        self._check_funds(task["minerBond"] * copies)  # before dreaming, not after
        try:
            spec = parse_bytes(self.ipfs.cat(task["specCid"], max_bytes=1 << 20))
            n = min(max(self.n, spec.bundle.min_images), spec.bundle.max_images)
            subs = []
            for c in range(copies):
                binding = Binding(self.chain.chain_id, self.chain.address, tid, self.me)
                images = self.strategy.images(spec, n, self._seed(tid, c), self.ipfs, binding)
                out = self.state.dir / (f"task-{tid}.safetensors" if copies == 1 else f"task-{tid}-{c}.safetensors")
                bundlemod.write(out, images, binding, self.strategy.last_receipt)
                subs.append({"bundle": str(out), "cid": cid_of_file(out), "n": len(images)})
        except (SpecError, TeacherError, CannotMine) as exc:  # broken, or not minable this way: nothing to mine
            self.save_stage(st, "skipped", reason=str(exc))
            event(self.log, "skipping a task that cannot be mined", task=tid, reason=str(exc))
            return
        self.save_stage(st, "dreamed", subs=subs, work_seconds=self.strategy.last_seconds)
        event(self.log, "bundle ready" if copies == 1 else f"{copies} bundles ready", task=tid,
              cids=[s["cid"] for s in subs], n=subs[0]["n"], strategy=self.strategy.name)

    def _commit(self, tid: int, st: dict, phase: int) -> None:
        # commits that reached the chain before a crash let us record them: ours, in sending order
        mine = [e["index"] for e in self.chain.events("Committed", tid) if e["miner"] == self.me]
        recorded = {s["index"] for s in st["subs"] if "index" in s}
        unrecorded = [i for i in mine if i not in recorded]
        for sub in st["subs"]:
            if "index" in sub:
                continue
            if unrecorded:
                sub["index"] = unrecorded.pop(0)
                self.state.save()
                continue
            if phase != Phase.COMMIT:
                self.save_stage(st, "missed")
                return
            c = miner_commitment(sub["cid"], salt_bytes(sub["salt"]), self.me, tid, self.chain.chain_id,
                                 self.chain.address)
            bond = self.chain.view("getTask", tid)["minerBond"]
            self._check_funds(bond)
            receipt = self.chain.send("commit", tid, c, value=bond)
            sub["index"] = self.chain.market.events.Committed().process_receipt(receipt)[0]["args"]["index"]
            self.state.save()
        self.save_stage(st, "committed")
        event(self.log, "committed", task=tid, index=[s["index"] for s in st["subs"]])

    def _reveal(self, tid: int, st: dict) -> None:
        for sub in st["subs"]:
            if sub.get("revealed"):
                continue
            # the bundle goes public only now: nobody could copy it before the commit window closed
            cid = self.ipfs.add_file(sub["bundle"])
            if cid != sub["cid"]:
                raise ChainError(f"bundle on disk changed: CID {cid} != committed {sub['cid']}")
            try:
                self.chain.send("reveal", tid, sub["index"], sub["cid"], salt_bytes(sub["salt"]))
            except TxReverted as exc:
                if exc.error != "AlreadyRevealed":
                    raise
            sub["revealed"] = True
            self.state.save()
        self.save_stage(st, "revealed")
        event(self.log, "revealed", task=tid, cids=[s["cid"] for s in st["subs"]])

    def _reclaim(self, tid: int, st: dict) -> None:
        """Take every bond of a round that failed before its draw back (proving the commitment;
        the bundle itself is never published)."""
        for sub in st["subs"]:
            if sub.get("reclaimed"):
                continue
            try:
                self.chain.send("reclaimBond", tid, sub["index"], sub["cid"], salt_bytes(sub["salt"]))
            except TxReverted as exc:
                if exc.error != "AlreadyRevealed":
                    raise
            sub["reclaimed"] = True
            self.state.save()
        self._outcome(tid, st)
        self.save_stage(st, "settled")

    def _reveal_missed(self, tid: int, st: dict) -> None:
        for sub in st["subs"]:  # a reveal that landed before a crash could record it
            sub["revealed"] = sub.get("revealed") or self.chain.call("getSubmissions", tid, sub["index"], 1,
                                                                     on="lens")[1][0]
        if all(s["revealed"] for s in st["subs"]):
            self.save_stage(st, "revealed")
        else:
            self.save_stage(st, "missed" if not any(s["revealed"] for s in st["subs"]) else "revealed")
            event(self.log, "missed the reveal window: the unrevealed bond(s) are forfeited", task=tid)

    def _outcome(self, tid: int, st: dict) -> None:
        """One line per settled task: the median, the verdict and what it earned or lost."""
        t = self.chain.view("getTask", tid)
        ours = {s["index"] for s in st["subs"]}
        for e in self.chain.events("SubmissionSettled", tid):
            if e["index"] not in ours:
                continue
            row = {"status": Status(e["status"]), "result": e["result"], "reclaimed": st["stage"] == "reclaiming"}
            net = e["reward"] + e["bondReturned"] - t["minerBond"]
            event(self.log, f"task {tid}: {row['status'].human}, net {eth(net, True)} — {verdict(row, t['minGainBps'])}",
                  task=tid, index=e["index"], result=score_label(e["result"]), reward_wei=e["reward"],
                  bond_back_wei=e["bondReturned"])
