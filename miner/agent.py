"""The mining agent: `codream miner run`.

Per task it walks: new → dreamed (bundle on disk, CID known) → salted (salt on disk)
→ committed (index from the Committed event) → revealed (bundle pinned, CID revealed)
→ settled → claimed. Every stage is saved before the action that leaves it, so a
killed agent resumes where it was: a salted task whose commit reached the chain is
recognised from the chain's events and never committed twice.

Strategies (the demo uses all three): ``honest`` dreams; ``noise`` submits seeded
noise; ``copy`` re-binds someone else's bundle to its own address (it gets INVALID).
"""
from __future__ import annotations

import secrets
import time
from pathlib import Path

import torch

from codream import bundle as bundlemod
from codream.agentstate import AgentState, agent_logger, event
from codream.bundle import Binding
from codream.chain import Chain, ChainError, TxReverted
from codream.distill import noise_images
from codream.protocol import miner_commitment
from codream.spec import parse_bytes
from ipfs import IpfsClient, IpfsError, cid_of_file

COMMIT, REVEAL, FINAL = 1, 2, 8


class MinerAgent:
    def __init__(self, chain: Chain, ipfs: IpfsClient, n: int = 1000, strategy: str = "honest",
                 copy_from: str | None = None, task_filter: int | None = None, steps: int | None = None,
                 device: str = "cpu", claim: bool = True, verbose: bool = True):
        self.chain, self.ipfs = chain, ipfs
        self.me = chain.account.address
        self.n, self.strategy, self.copy_from = n, strategy, copy_from
        self.task_filter, self.steps, self.device, self.claim = task_filter, steps, device, claim
        self.state = AgentState("miner", self.me, chain.address)
        self.log = agent_logger(f"miner-{self.me[:8]}", self.state.dir, verbose)

    # -- the loop ----------------------------------------------------------------
    def run(self, poll: float = 2.0, until_idle: bool = False) -> None:
        event(self.log, "started", address=self.me, strategy=self.strategy, market=self.chain.address)
        while True:
            try:
                busy = self.step()
            except (ChainError, IpfsError) as exc:  # outages: report, back off, carry on
                event(self.log, "retrying after error", error=str(exc))
                busy = True
                time.sleep(poll)
            if until_idle and not busy and self._joined_any():
                event(self.log, "idle: every task settled")
                return
            time.sleep(poll)

    def _joined_any(self) -> bool:
        return any(t["stage"] not in ("new", "skipped") for t in self.state.data["tasks"].values())

    def tasks(self) -> list[int]:
        if self.task_filter:
            return [self.task_filter]
        return list(range(1, self.chain.call("taskCount") + 1))

    def step(self) -> bool:
        """One pass over the tasks; True while some task still needs this agent."""
        busy = False
        for tid in self.tasks():
            st = self.state.task(tid)
            if st["stage"] in ("claimed", "skipped", "missed"):
                continue
            phase = self.chain.phase(tid)
            busy |= self._advance(tid, st, phase)
        if self.claim:
            busy |= self._claim()
        return busy

    def _advance(self, tid: int, st: dict, phase: int) -> bool:
        if st["stage"] == "new":
            if phase != COMMIT:
                st["stage"] = "skipped"
                self.state.save()
                return False
            self._dream(tid, st)
        if st["stage"] == "dreamed" and phase == COMMIT:
            st["salt"] = "0x" + secrets.token_hex(32)
            st["stage"] = "salted"
            self.state.save()  # the salt is durable before the commitment leaves
        if st["stage"] == "salted":
            self._commit(tid, st, phase)
        if st["stage"] == "committed":
            if phase == REVEAL:
                self._reveal(tid, st)
            elif phase > REVEAL and self.chain.call("getSubmissions", tid)[1][st["index"]]:
                st["stage"] = "revealed"  # the reveal landed before a crash could record it
                self.state.save()
            elif phase > REVEAL:
                st["stage"] = "missed"
                self.state.save()
                event(self.log, "missed the reveal window", task=tid)
                return False
        if st["stage"] == "revealed" and phase == FINAL:
            st["stage"] = "settled"
            self.state.save()
            event(self.log, "task settled", task=tid)
        return st["stage"] not in ("settled", "missed", "skipped")

    # -- stages ------------------------------------------------------------------
    def _dream(self, tid: int, st: dict) -> None:
        task = self.chain.task(tid)
        binding = Binding(self.chain.chain_id, self.chain.address, tid, self.me)
        out = self.state.dir / f"task-{tid}.safetensors"
        if self.strategy == "copy":
            images = self._copied_images()
        else:
            spec = parse_bytes(self.ipfs.cat(task["specCid"], max_bytes=1 << 20))
            if self.strategy == "noise":
                images = noise_images(self.n, spec.shape, int.from_bytes(bytes.fromhex(self.me[2:10]), "big"))
            else:
                images = self._dream_images(spec)
        bundlemod.write(out, images, binding)
        st.update(stage="dreamed", bundle=str(out), cid=cid_of_file(out))
        self.state.save()
        event(self.log, "bundle ready", task=tid, cid=st["cid"], n=len(images))

    def _dream_images(self, spec) -> torch.Tensor:
        from miner.synthesis import DreamConfig, dream
        from verifier.score import load_teachers

        teachers = load_teachers(spec, client=self.ipfs)
        cfg = DreamConfig(seed=int(self.me[2:10], 16))
        if self.steps:
            cfg.steps = self.steps
        n = min(max(self.n, spec.bundle["min_images"]), spec.bundle["max_images"])
        return dream(teachers, n, spec.num_classes, spec.shape, spec.mean, spec.std, cfg, self.device).images

    def _copied_images(self) -> torch.Tensor:
        """The copier: someone else's dreams, re-ordered, bound to this miner."""
        path = Path(self.copy_from or "")
        deadline = time.monotonic() + 600
        while not path.exists():
            if time.monotonic() > deadline:
                raise ChainError(f"--copy-from {path} never appeared")
            time.sleep(1)
        images, _ = bundlemod.read(path.read_bytes())
        return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(7))]

    def _find_my_commit(self, tid: int) -> int | None:
        for e in self.chain.events("Committed", tid):
            if e["miner"] == self.me:
                return e["index"]
        return None

    def _commit(self, tid: int, st: dict, phase: int) -> None:
        index = self._find_my_commit(tid)  # already on chain? (killed after sending)
        if index is None:
            if phase != COMMIT:
                st["stage"] = "missed"
                self.state.save()
                return
            salt = bytes.fromhex(st["salt"][2:])
            c = miner_commitment(st["cid"], salt, self.me, tid, self.chain.chain_id, self.chain.address)
            bond = self.chain.task(tid)["minerBond"]
            receipt = self.chain.send("commit", tid, c, value=bond)
            index = self.chain.market.events.Committed().process_receipt(receipt)[0]["args"]["index"]
        st.update(stage="committed", index=index)
        self.state.save()
        event(self.log, "committed", task=tid, index=index)

    def _reveal(self, tid: int, st: dict) -> None:
        # the bundle goes public only now: nobody could copy it before the commit window closed
        cid = self.ipfs.add_file(st["bundle"])
        if cid != st["cid"]:
            raise ChainError(f"bundle on disk changed: CID {cid} != committed {st['cid']}")
        try:
            self.chain.send("reveal", tid, st["index"], st["cid"], bytes.fromhex(st["salt"][2:]))
        except TxReverted as exc:
            if exc.error != "AlreadyRevealed":
                raise
        st["stage"] = "revealed"
        self.state.save()
        event(self.log, "revealed", task=tid, cid=st["cid"])

    def _claim(self) -> bool:
        owed = self.chain.call("claimable", self.me)
        if owed:
            self.chain.send("withdraw")
            event(self.log, "claimed", wei=owed)
        return False
