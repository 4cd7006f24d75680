// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Cursor} from "../libraries/Cursor.sol";
import {Rules} from "../libraries/Rules.sol";
import {Scores} from "../libraries/Scores.sol";
import {MarketResults} from "./MarketResults.sol";

/// @title MarketSettlement: `settle`, the batched settlement of a task (docs/protocol-v3.md §6, §8).
/// @notice Owns the stage machine (Owners -> Results -> Seats -> Payouts -> Fees -> Refund ->
/// Finalized), the work cap of one call (SETTLE_UNITS), the batch cursor, and every stage but
/// Results (MarketResults): the owners' verdicts and the funded bounty, the seats' slashes and
/// unlocks, the miners' rewards and bonds, the verifiers' fees, the owners' refund and the dust.
/// Money moves only through MarketState's `_credit` and `_burn`.
abstract contract MarketSettlement is MarketResults {
    // ------------------------------------------------------------------ settlement
    /// @notice Advance the settlement of a task by at most `maxItems` items (owners' verdicts,
    /// submissions, seats, the refund) — anyone, any number of calls. The contract caps the work
    /// of one call (SETTLE_UNITS) whatever `maxItems` is, so every call fits a block at the
    /// protocol's maxima. Allowed once the appeal window closed with no open appeal, or the round
    /// failed before its draw (no submission, no eval set revealed, no committee in time).
    function settle(uint256 taskId, uint256 maxItems) external nonReentrant {
        if (maxItems == 0) revert ZeroItems();
        Task storage t = _task(taskId);
        Settlement storage st = _settlements[taskId];
        if (st.stage == Stage.None) {
            Phase p = phaseOf(taskId);
            if (p != Phase.AwaitingSettlement) revert WrongPhase(taskId, Phase.AwaitingSettlement, p);
            st.failed = t.revealEnd == 0; // no committee: nobody revealed a bundle
            st.stage = Stage.Owners;
        } else if (st.stage == Stage.Finalized) {
            revert WrongPhase(taskId, Phase.AwaitingSettlement, Phase.Finalized);
        }
        uint256 units = SETTLE_UNITS;
        while (maxItems != 0 && st.stage != Stage.Finalized) {
            uint256 cost = _unitCost(st.stage, t.seatsPerSubmission);
            uint256 n = units / cost;
            if (n == 0) break;
            if (n > maxItems) n = maxItems;
            uint256 done = _runStage(taskId, t, st, n);
            maxItems -= done;
            units -= done * cost;
        }
        emit Settled(taskId, st.stage, st.cursor);
    }

    /// @dev units one item of a stage costs (SETTLE_UNITS per call); calibrated by the forge
    /// scale test at the maxima so that one call stays under about 8M gas
    function _unitCost(Stage stage, uint256 r) private pure returns (uint256) {
        if (stage == Stage.Results) return 8 + 2 * r;
        if (stage == Stage.Seats) return 150; // a slash rewrites the registry's sum tree
        if (stage == Stage.Payouts) return 12;
        if (stage == Stage.Fees) return 12;
        return 600; // Owners, Refund: one item over every seat or owner
    }

    /// @dev runs up to n items of the current stage; returns how many it ran
    function _runStage(uint256 taskId, Task storage t, Settlement storage st, uint256 n) private returns (uint256) {
        Stage stage = st.stage;
        if (stage == Stage.Owners) {
            _judgeOwners(taskId, t, st);
            return 1;
        }
        if (stage == Stage.Refund) {
            _refund(taskId, t, st);
            return 1;
        }
        bool perSeat = stage == Stage.Seats || stage == Stage.Fees;
        uint256 end = perSeat ? t.seats : t.submissionCount;
        uint256 from = st.cursor;
        uint256 to = Cursor.next(from, n, end);
        if (stage == Stage.Results) _results(taskId, t, st, from, to);
        else if (stage == Stage.Seats) _judgeSeats(taskId, st, from, to);
        else if (stage == Stage.Payouts) _payouts(taskId, t, st, from, to);
        else _fees(taskId, st, from, to);
        if (to < end) {
            st.cursor = uint16(to);
        } else {
            st.cursor = 0;
            st.stage = stage == Stage.Fees || (stage == Stage.Payouts && st.totalAgree == 0) ? Stage.Refund
                : Stage(uint8(stage) + 1);
        }
        return to - from;
    }

    /// @dev stage Owners: each owner's verdict from the seats' first entries (a majority of all
    /// seats), faulty contributions burned, the funded bounty B and the verifiers' fee; seats
    /// that voted against a Good or Faulty verdict disagree. In a round that failed before its
    /// draw an owner who revealed is Unjudged (refunded) and one who did not is Faulty.
    function _judgeOwners(uint256 taskId, Task storage t, Settlement storage st) private {
        Owner[] storage owners_ = _owners[taskId];
        uint256 k = st.failed ? 0 : t.seats;
        uint256[] memory first = new uint256[](k);
        bool[] memory revealed = new bool[](k);
        uint256[] memory agree = new uint256[](k);
        uint256[] memory disagree = new uint256[](k);
        mapping(uint256 => Seat) storage seats_ = _seats[taskId];
        for (uint256 j; j < k; ++j) {
            revealed[j] = seats_[j].revealed;
            if (revealed[j]) first[j] = _scoreWords[taskId][j << 32];
        }
        uint256 funded;
        for (uint256 i; i < owners_.length; ++i) {
            Owner storage o = owners_[i];
            (uint256 ok, uint256 notOk) = (0, 0);
            Verdict v;
            if (!o.revealed) {
                v = t.submissionCount == 0 ? Verdict.Unjudged : Verdict.Faulty; // nothing happened: no fault
            } else if (st.failed) {
                v = Verdict.Unjudged;
            } else {
                (ok, notOk) = Rules.tallyOwner(first, revealed, i);
                v = Rules.ownerVerdict(ok, notOk, k);
                if (v != Verdict.Unjudged) {
                    for (uint256 j; j < k; ++j) {
                        if (!revealed[j]) continue;
                        if (Rules.agreesWithOwnerVerdict(Scores.unpack(first[j], i), v)) ++agree[j];
                        else ++disagree[j];
                    }
                }
            }
            o.verdict = v;
            if (v == Verdict.Faulty) _burn(taskId, t, st, o.contribution, BurnReason.FaultyOwner);
            else funded += o.contribution;
            emit OwnerJudged(taskId, i, o.addr, v, ok, notOk);
        }
        for (uint256 j; j < k; ++j) {
            if (agree[j] != 0 || disagree[j] != 0) {
                Seat storage se = seats_[j];
                (se.agree, se.disagree) = (uint32(agree[j]), uint32(disagree[j]));
            }
        }
        st.funded = uint96(funded);
        if (!st.failed) st.pot = uint128(Rules.fee(funded, t.feeBps));
        st.stage = st.failed ? Stage.Refund : Stage.Results;
    }

    /// @dev stage Seats: a seat that did not reveal or disagreed with any judgement is faulty; its
    /// verifier is slashed SEAT_SLASH, which is burned (never paid to the majority that outvoted
    /// it: bribes must not pay). Every seat is unlocked.
    function _judgeSeats(uint256 taskId, Settlement storage st, uint256 from, uint256 to) private {
        uint256 totalAgree = st.totalAgree;
        for (uint256 j = from; j < to; ++j) {
            Seat memory se = _seats[taskId][j];
            uint256 taken;
            bool faulty = !se.revealed || se.disagree != 0;
            if (faulty) {
                taken = registry.slash(se.verifier, SEAT_SLASH);
                _burnSlash(taskId, st, taken, BurnReason.SeatSlash);
            } else {
                totalAgree += se.agree;
            }
            registry.unlock(se.verifier, 1);
            emit SeatSettled(taskId, j, se.verifier, se.agree, se.disagree, faulty, taken);
        }
        st.totalAgree = uint32(totalAgree); // (no escrow moves: slashed stake arrives from the registry)
    }

    /// @dev stage Payouts: each revealed submission's reward (Accepted: the miner pot pro rata to
    /// its result) and the part of its bond its status returns
    function _payouts(uint256 taskId, Task storage t, Settlement storage st, uint256 from, uint256 to) private {
        uint256 funded = st.funded;
        uint256 minerPot = funded - Rules.fee(funded, t.feeBps);
        uint256 weight = st.acceptedWeight;
        uint256 bond = t.minerBond;
        uint256 paid;
        for (uint256 s = from; s < to; ++s) {
            Submission memory sub = _submissions[taskId][s];
            if (sub.status == Status.Committed) continue; // unrevealed: its bond is in the pot
            address miner = address(bytes20(sub.data));
            int32 m = int32(uint32(uint192(sub.data)));
            uint256 reward = sub.status == Status.Accepted ? Rules.proRata(minerPot, uint32(m), weight) : 0;
            uint256 back = Rules.bondBack(sub.status, bond);
            paid += reward;
            _credit(miner, taskId, reward + back);
            emit SubmissionSettled(taskId, s, miner, m, sub.status, reward, back);
        }
        st.minersPaid += uint128(paid);
    }

    /// @dev stage Fees: the verifier pot (fee + forfeited bonds) pro rata to the agree counts of
    /// the non-faulty seats (skipped when no seat earned: see _refund)
    function _fees(uint256 taskId, Settlement storage st, uint256 from, uint256 to) private {
        uint256 pot = st.pot;
        uint256 totalAgree = st.totalAgree;
        uint256 paid;
        for (uint256 j = from; j < to; ++j) {
            Seat memory se = _seats[taskId][j];
            if (se.agree == 0 || !se.revealed || se.disagree != 0) continue;
            uint256 fee = Rules.proRata(pot, se.agree, totalAgree);
            paid += fee;
            _credit(se.verifier, taskId, fee);
        }
        st.potPaid += uint128(paid);
    }

    /// @dev stage Refund: the Good and Unjudged owners get back, pro rata to their contributions,
    /// what no judgement assigned: the miner pot if nothing was accepted, the fee if no seat
    /// earned (the forfeited bonds are then burned); in a failed round, their contributions. No
    /// owner is ever credited more than it paid. What is left of the escrow (rounding dust) is
    /// burned, except, in a failed round, the committers' bonds (reclaimBond).
    function _refund(uint256 taskId, Task storage t, Settlement storage st) private {
        uint256 funded = st.funded;
        uint256 refund = funded;
        uint256 reserved;
        if (st.failed) {
            reserved = uint256(t.submissionCount) * t.minerBond;
        } else {
            uint256 fee = Rules.fee(funded, t.feeBps);
            refund = st.accepted == 0 ? funded - fee : 0;
            if (st.totalAgree == 0) {
                refund += fee;
                _burn(taskId, t, st, st.pot - fee, BurnReason.ForfeitedBonds);
            }
        }
        Owner[] storage owners_ = _owners[taskId];
        for (uint256 i; i < owners_.length; ++i) {
            Owner storage o = owners_[i];
            if (o.verdict != Verdict.Faulty) _credit(o.addr, taskId, Rules.proRata(refund, o.contribution, funded));
        }
        _burn(taskId, t, st, t.escrow - reserved, BurnReason.Dust);
        st.stage = Stage.Finalized;
        emit Finalized(taskId, funded, st.minersPaid, st.potPaid, refund, st.burned);
    }
}
