"""The mining agent: `codream miner run`.

Per task it walks: new → dreamed (bundle on disk, CID known) → salted (salt on disk)
→ committed (index from the Committed event) → revealed (bundle pinned, CID revealed)
→ settled. Every stage is saved before the action that leaves it, so a killed agent
resumes where it was: a salted task whose commit reached the chain is recognised from
the chain's events and never committed twice. What it submits comes from a
:class:`~miner.strategies.Strategy` (honest dreaming, or a demo adversary).
"""
from __future__ import annotations

from codream import bundle as bundlemod
from codream.agent import Agent, event
from codream.bundle import Binding
from codream.chain import ChainError, TxReverted
from codream.protocol import Phase, miner_commitment, new_salt, salt_bytes
from codream.spec import SpecError, parse_bytes
from codream.teachers import TeacherError
from ipfs import cid_of_file

from .strategies import Honest, Strategy


class MinerAgent(Agent):
    role = "miner"
    DONE_STAGES = ("settled", "skipped", "missed")

    def __init__(self, chain, ipfs, n: int = 1000, strategy: Strategy | None = None, task_filter: int | None = None,
                 claim: bool = True, verbose: bool = True):
        super().__init__(chain, ipfs, claim, verbose)
        self.n, self.strategy, self.task_filter = n, strategy or Honest(), task_filter

    def tasks(self) -> list[int]:
        return [self.task_filter] if self.task_filter else super().tasks()

    def joined_any(self) -> bool:
        return any(t["stage"] not in ("new", "skipped") for t in self.state.data["tasks"].values())

    def advance(self, tid: int, st: dict, phase: int) -> bool:
        if st["stage"] == "new":
            if phase != Phase.COMMIT:
                self.save_stage(st, "skipped")
                return False
            self._dream(tid, st)
        if st["stage"] == "skipped":
            return False
        if st["stage"] == "dreamed" and phase == Phase.COMMIT:
            self.save_stage(st, "salted", salt=new_salt())  # the salt is durable before the commitment leaves
        if st["stage"] == "salted":
            self._commit(tid, st, phase)
        if st["stage"] == "committed":
            if phase == Phase.REVEAL:
                self._reveal(tid, st)
            elif phase > Phase.REVEAL and self.chain.call("getSubmissions", tid)[1][st["index"]]:
                self.save_stage(st, "revealed")  # the reveal landed before a crash could record it
            elif phase > Phase.REVEAL:
                self.save_stage(st, "missed")
                event(self.log, "missed the reveal window", task=tid)
                return False
        if st["stage"] == "revealed" and phase == Phase.FINALIZED:
            self.save_stage(st, "settled")
            event(self.log, "task settled", task=tid)
        return st["stage"] not in self.DONE_STAGES

    # -- stages ------------------------------------------------------------------
    def _dream(self, tid: int, st: dict) -> None:
        task = self.chain.task(tid)
        try:
            spec = parse_bytes(self.ipfs.cat(task["specCid"], max_bytes=1 << 20))
            n = min(max(self.n, spec.bundle["min_images"]), spec.bundle["max_images"])
            images = self.strategy.images(spec, n, int(self.me[2:10], 16), self.ipfs)
        except (SpecError, TeacherError) as exc:  # the task itself is broken: nothing to mine
            self.save_stage(st, "skipped", reason=str(exc))
            event(self.log, "skipping a task that cannot be mined", task=tid, reason=str(exc))
            return
        out = self.state.dir / f"task-{tid}.safetensors"
        bundlemod.write(out, images, Binding(self.chain.chain_id, self.chain.address, tid, self.me))
        self.save_stage(st, "dreamed", bundle=str(out), cid=cid_of_file(out))
        event(self.log, "bundle ready", task=tid, cid=st["cid"], n=len(images), strategy=self.strategy.name)

    def _find_my_commit(self, tid: int) -> int | None:
        for e in self.chain.events("Committed", tid):
            if e["miner"] == self.me:
                return e["index"]
        return None

    def _commit(self, tid: int, st: dict, phase: int) -> None:
        index = self._find_my_commit(tid)  # already on chain? (killed after sending)
        if index is None:
            if phase != Phase.COMMIT:
                self.save_stage(st, "missed")
                return
            c = miner_commitment(st["cid"], salt_bytes(st["salt"]), self.me, tid, self.chain.chain_id,
                                 self.chain.address)
            receipt = self.chain.send("commit", tid, c, value=self.chain.task(tid)["minerBond"])
            index = self.chain.market.events.Committed().process_receipt(receipt)[0]["args"]["index"]
        self.save_stage(st, "committed", index=index)
        event(self.log, "committed", task=tid, index=index)

    def _reveal(self, tid: int, st: dict) -> None:
        # the bundle goes public only now: nobody could copy it before the commit window closed
        cid = self.ipfs.add_file(st["bundle"])
        if cid != st["cid"]:
            raise ChainError(f"bundle on disk changed: CID {cid} != committed {st['cid']}")
        try:
            self.chain.send("reveal", tid, st["index"], st["cid"], salt_bytes(st["salt"]))
        except TxReverted as exc:
            if exc.error != "AlreadyRevealed":
                raise
        self.save_stage(st, "revealed")
        event(self.log, "revealed", task=tid, cid=st["cid"])
