// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../interfaces/ICoDreamMarket.sol";
import {Scores} from "./Scores.sol";

/// @title Rules: the settlement maths of protocol v3 (docs/protocol-v3.md §6), as pure functions.
/// @notice What a result means (status), what a bond gets back, how the owners' verdicts follow
/// from the seats' votes, and how pots split. Mirrored once in Python (codream/protocol.py) and
/// fuzzed against it. Every split rounds down; the market burns the remainder, so rounding never
/// favours a party.
library Rules {
    uint256 internal constant BPS = 10_000;
    /// a Rejected submission loses this share of its bond
    uint256 internal constant BELOW_MIN_FORFEIT_BPS = 5000;

    /// @dev the status of a submission whose result `m` a majority supports
    function statusOf(int32 m, int256 minGain) internal pure returns (ICoDreamMarket.Status) {
        if (m == Scores.INVALID) return ICoDreamMarket.Status.Invalid;
        if (m == Scores.NO_EVAL) return ICoDreamMarket.Status.Unresolved; // no usable eval set: unjudged
        if (m > 0 && m >= minGain) return ICoDreamMarket.Status.Accepted;
        return ICoDreamMarket.Status.Rejected;
    }

    /// @dev the part of its bond a settled submission gets back: all of it unless judged below the
    /// bar (half) or INVALID / never revealed (nothing)
    function bondBack(ICoDreamMarket.Status status, uint256 bond) internal pure returns (uint256) {
        if (status == ICoDreamMarket.Status.Rejected) return bond - bond * BELOW_MIN_FORFEIT_BPS / BPS;
        if (status == ICoDreamMarket.Status.Invalid || status == ICoDreamMarket.Status.Unrevealed) return 0;
        return bond; // Accepted, Unresolved, Unscored
    }

    /// @dev the verifiers' fee out of the funded bounty
    function fee(uint256 funded, uint256 feeBps) internal pure returns (uint256) {
        return funded * feeBps / BPS;
    }

    /// @dev `amount` * part / whole, rounded down (0 when whole is 0)
    function proRata(uint256 amount, uint256 part, uint256 whole) internal pure returns (uint256) {
        return whole == 0 ? 0 : amount * part / whole;
    }

    /// @dev owner `i`'s votes: for each revealed seat, its vector's entry i (in the first word)
    function tallyOwner(uint256[] memory firstWords, bool[] memory revealed, uint256 i)
        internal pure returns (uint256 ok, uint256 notOk)
    {
        for (uint256 j; j < firstWords.length; ++j) {
            if (!revealed[j]) continue;
            if (Scores.unpack(firstWords[j], i) == Scores.EVAL_OK) ++ok;
            else ++notOk;
        }
    }

    /// @dev a revealed owner's verdict: a majority of ALL seats (silent ones included) decides
    function ownerVerdict(uint256 ok, uint256 notOk, uint256 seats) internal pure returns (ICoDreamMarket.Verdict) {
        if (2 * ok > seats) return ICoDreamMarket.Verdict.Good;
        if (2 * notOk > seats) return ICoDreamMarket.Verdict.Faulty;
        return ICoDreamMarket.Verdict.Unjudged;
    }

    /// @dev whether a seat's vote on an owner agrees with the owner's verdict (only Good and
    /// Faulty verdicts are judgements a seat can agree or disagree with)
    function agreesWithOwnerVerdict(int32 vote, ICoDreamMarket.Verdict v) internal pure returns (bool) {
        return (vote == Scores.EVAL_OK) == (v == ICoDreamMarket.Verdict.Good);
    }
}
