"""Helpers for contract tests."""
from eth_utils import keccak

from codream.protocol import INVALID, eval_commitment, miner_commitment, score_commitment  # noqa: F401

WINDOWS = [3600, 3600, 3600, 3600, 3600]  # commit, reveal, evalReveal, scoreCommit, scoreReveal


def salt(i: int) -> bytes:
    return keccak(text=f"salt-{i}")
