"""How a verifier turns its work into the score vectors it commits.

``honest`` commits the scores it computed. Every other strategy is a **test/demo adversary**
(the adversarial round, `codream demo --adversarial`, runs them to show that cheating loses
stake or earns nothing); they are hidden from `codream verifier run --help`.
"""
from __future__ import annotations

from codream.protocol import INVALID


class VerifierStrategy:
    name = "strategy"
    demo_only = True
    scores = True  # does it do the scoring work at all?
    commits = True  # does it commit (and then reveal) its vectors?
    copies_reveals = False  # does it try to reveal another seat's vector instead of its own?
    appeals = False  # does it appeal results its scores contradict?

    def vector(self, honest: list[int], miners: list[str | None]) -> list[int]:
        """The scores it commits for one seat, given the honest scores of the seat's submissions
        (in the seat's order) and their miners."""
        return honest

    def verdicts(self, honest: list[int]) -> list[int]:
        """The eval verdicts it commits (one per owner), given the honest ones."""
        return honest

    def appeal_score(self, honest: int, miner: str | None) -> int:
        """The score it commits on an appeal committee, given the honest one."""
        return self.vector([honest], [miner])[0]


class Honest(VerifierStrategy):
    name, demo_only, appeals = "honest", False, True


class Lazy(VerifierStrategy):
    """Demo adversary: scores nothing and reveals a plausible constant for every submission."""

    name, scores = "lazy", False

    def __init__(self, constant: int = 5000):
        self.constant = constant

    def vector(self, honest, miners):
        return [self.constant] * len(honest)


class Silent(VerifierStrategy):
    """Demo adversary: takes the seat, does nothing (never commits, never reveals)."""

    name, scores, commits = "silent", False, False


class Copier(VerifierStrategy):
    """Demo adversary: does no work, commits to something it cannot know yet, then tries to reveal
    another seat's revealed vector (the commitment binds sender, seat and salt: it cannot)."""

    name, scores, copies_reveals = "copier", False, True

    def vector(self, honest, miners):
        return [0] * len(honest)


class Colluder(VerifierStrategy):
    """Demo adversary: scores honestly except one miner's submissions, which it under-scores
    (``mode="zero"``), calls INVALID (``mode="invalid"``) or scores 10,000 (``mode="accept"``: a
    bribed verifier voting a briber's junk in, or a staller voting an outlier on its own junk)."""

    name = "colluder"
    MODES = {"zero": 0, "invalid": INVALID, "accept": 10_000}

    def __init__(self, rival: str, mode: str = "invalid"):
        if mode not in self.MODES:
            raise ValueError(f"colluder mode must be one of {', '.join(self.MODES)}, got {mode!r}")
        self.rival, self.mode = rival.lower(), mode

    def vector(self, honest, miners):
        bad = self.MODES[self.mode]
        return [bad if (m or "").lower() == self.rival else h for h, m in zip(honest, miners)]


STRATEGIES = {cls.name: cls for cls in (Honest, Lazy, Silent, Copier, Colluder)}
