"""The keeper: the duties that keep the protocol moving and need no scoring — request and make
the committee draw (again after a missed draw window), settle a task in batches the block gas
allows, and draw and resolve appeal committees. Any staked verifier may run them (`verifier run`
does unless `--no-keeper`); each call is open to anyone, so a keeper that lost a race just backs
off and tries again. It signs with the agent's chain client and keeps no state of its own beyond
its back-off timers (a restarted keeper reads everything from the chain)."""
from __future__ import annotations

import logging
import time

from codream.agent import event
from codream.chain import TxReverted
from codream.protocol import AppealStage

MAX_CALL_GAS = 8_000_000  # a keeper call this agent sends (the contract caps every call below a block)
SETTLE_ITEMS = 4096  # items per settle / resolveAppeal call, halved until eth_estimateGas fits MAX_CALL_GAS


class Keeper:
    def __init__(self, chain, log: logging.Logger, max_call_gas: int = MAX_CALL_GAS):
        self.chain, self.log, self.max_call_gas = chain, log, max_call_gas
        self._backoff: dict[tuple, float] = {}  # (duty, task[, appeal]) -> monotonic time to try again

    def _backing_off(self, key: tuple) -> bool:
        return time.monotonic() < self._backoff.get(key, 0)

    def _back_off(self, key: tuple, what: str, exc: Exception, **fields) -> None:
        wait = min(60.0, 2 * max(2.0, self._backoff.get(key, 0) - time.monotonic() + 2.0))
        self._backoff[key] = time.monotonic() + wait
        event(self.log, what, reason=str(exc), retry_in=f"{wait:.0f} s", **fields)

    def draw(self, tid: int) -> None:
        """Request the draw (or again after a missed window), then draw in the seed block's window."""
        key = ("draw", tid)
        if self._backing_off(key):
            return
        t = self.chain.view("getTask", tid)
        block = self.chain.block()["number"]
        last = t["seedBlock"] + self.chain.call("DRAW_WINDOW_BLOCKS")
        try:
            if t["seedBlock"] == 0 or block > last:
                self.chain.send("requestDraw", tid)
                event(self.log, "draw requested" if t["seedBlock"] == 0 else "draw re-requested (window missed)",
                      task=tid)
            elif block + 1 >= t["seedBlock"]:  # the transaction lands in the next block
                self.chain.send("drawCommittee", tid)
                event(self.log, "committee drawn", task=tid)
            self._backoff.pop(key, None)
        except TxReverted as exc:  # another keeper was first, no active stake yet, seed block not reached...
            self._back_off(key, "draw not possible now", exc, task=tid)

    def sized(self, fn_name: str, *args, on: str = "market") -> int:
        """The most items (from SETTLE_ITEMS, halving) whose call eth_estimateGas puts under
        max_call_gas (the contract caps the work of a call anyway)."""
        n = SETTLE_ITEMS
        while n > 1 and self.chain.estimate_gas(fn_name, *args, n, on=on) > self.max_call_gas:
            n //= 2
        return n

    def settle(self, tid: int) -> None:
        try:
            n = self.sized("settle", tid)
            self.chain.send("settle", tid, n)
            st = self.chain.view("getSettlement", tid)
            event(self.log, "settling", task=tid, stage=st["stage"], cursor=st["cursor"], items=n)
        except TxReverted as exc:
            event(self.log, "settle not possible now", task=tid, reason=str(exc))

    def appeal(self, tid: int, a: int, x: dict, stage: AppealStage) -> None:
        """Appeal ``a`` of task ``tid`` (``x``: its view): request and make its draw, then resolve it."""
        key = ("appeal", tid, a)
        if self._backing_off(key):
            return
        block = self.chain.block()
        try:
            if stage == AppealStage.DRAWING and block["timestamp"] <= x["drawDeadline"]:
                last = x["seedBlock"] + self.chain.call("DRAW_WINDOW_BLOCKS")
                if block["number"] > last:
                    self.chain.send("requestAppealDraw", tid, a, on="appeals")
                elif block["number"] + 1 >= x["seedBlock"]:
                    self.chain.send("drawAppeal", tid, a, on="appeals")
                    event(self.log, "appeal committee drawn", task=tid, appeal=a)
            elif stage == AppealStage.RESOLVING or (stage == AppealStage.SCORING and block["timestamp"] > x["revealEnd"]) \
                    or (stage == AppealStage.DRAWING and block["timestamp"] > x["drawDeadline"]):
                self.chain.send("resolveAppeal", tid, a, self.sized("resolveAppeal", tid, a, on="appeals"),
                                on="appeals")
                y = self.chain.view("getAppeal", tid, a, on="appeals")
                event(self.log, "resolving appeal", task=tid, appeal=a, stage=AppealStage(y["stage"]).name.lower())
            self._backoff.pop(key, None)
        except TxReverted as exc:
            self._back_off(key, "appeal step not possible now", exc, task=tid, appeal=a)
