// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Rules} from "../libraries/Rules.sol";
import {Scores} from "../libraries/Scores.sol";
import {MarketState} from "./MarketState.sol";

/// @title MarketResults: settlement stage Results, the judgement of every revealed submission.
/// @notice Owns the result of each submission (the lower median of its eligible seats' scores if a
/// majority of them agrees with it within the tolerance, or the result of the appeal that overturned
/// it), its status and the forfeit of its bond, and each seat's agree / disagree count against those
/// results (docs/protocol-v3.md §5.1, §6.2). A batch works on a copy of the committee in memory
/// (`Batch`), loaded once and written back once. MarketSettlement runs it between Owners and Seats.
abstract contract MarketResults is MarketState {
    /// Working copy of the committee for one batch of stage Results.
    struct Batch {
        uint256 k;
        uint256 r;
        uint256 offset; // owner verdicts ahead of the scores in every vector
        uint256 tolerance;
        int256 minGain;
        bool appealed; // whether any appeal was made (else no final result to read)
        address[] verifier;
        bool[] revealed;
        uint256[] agree;
        uint256[] disagree;
        uint256[] nextRank; // position of the next score of each seat in its vector
        uint256[] wordIndex; // which word of each seat's vector is cached (type(uint256).max: none)
        uint256[] word;
        uint256[] keys; // the current submission's scores with their seats, sorted (Scores.insertSorted)
    }

    /// @dev stage Results: per submission, its judgement (or the result of the appeal that
    /// overturned it) and status; per seat, agree / disagree counts against the final result
    function _results(uint256 taskId, Task storage t, Settlement storage st, uint256 from, uint256 to) internal {
        Batch memory b = _loadBatch(taskId, t, from);
        uint256 forfeits;
        uint256 weight = st.acceptedWeight;
        uint256 accepted = st.accepted;
        uint256 bond = t.minerBond;
        mapping(uint256 => Submission) storage subs = _submissions[taskId];
        for (uint256 s = from; s < to; ++s) {
            Submission memory sub = subs[s];
            if (sub.status == Status.Committed) { // never revealed: the whole bond goes to the verifier pot
                for (uint256 d; d < b.r; ++d) b.nextRank[Scores.seatOf(s, d, b.k)] += 1;
                forfeits += bond;
                continue;
            }
            address miner = address(bytes20(sub.data));
            (int32 m, Status status) = _judge(taskId, b, s, miner);
            if (status == Status.Accepted) {
                weight += uint256(uint32(m));
                ++accepted;
            }
            forfeits += bond - Rules.bondBack(status, bond);
            subs[s] = Submission(_settledData(miner, m), sub.commitBlock, status);
        }
        _storeBatch(taskId, b);
        st.acceptedWeight = uint32(weight);
        st.accepted = uint16(accepted);
        st.pot += uint128(forfeits);
    }

    /// @dev the result of one revealed submission and the agreement of the seats that scored it
    function _judge(uint256 taskId, Batch memory b, uint256 s, address miner)
        private view returns (int32 m, Status status)
    {
        uint256 eligible;
        uint256 c; // values collected, kept sorted as (value, seat) keys
        uint256[] memory keys = b.keys;
        uint256 j = s % b.k;
        for (uint256 d; d < b.r; ++d) {
            uint256 q = b.nextRank[j] + b.offset;
            b.nextRank[j] += 1;
            if (b.verifier[j] != miner) { // a verifier never scores its own submission: that seat abstains
                ++eligible;
                if (b.revealed[j]) { // a silent seat counts in the majority's denominator only
                    if (b.wordIndex[j] != q / 8) {
                        b.wordIndex[j] = q / 8;
                        b.word[j] = _scoreWords[taskId][(j << 32) | (q / 8)];
                    }
                    c = Scores.insertSorted(keys, c, Scores.unpack(b.word[j], q % 8), j);
                }
            }
            j = j + 1 == b.k ? 0 : j + 1;
        }
        if (eligible == 0) return (Scores.NO_EVAL, Status.Unscored); // its own miner holds every seat of it
        (int32 median, bool majority, uint256 mask) = Scores.decide(keys, c, eligible, b.tolerance);
        m = median;
        uint256 fin = b.appealed ? _finalResults[taskId][s] : 0;
        if (fin != 0) { // an appeal committee's majority overturned the result: it is final
            m = int32(uint32(fin));
            majority = true;
            mask = 0;
            for (uint256 i; i < c; ++i) {
                if (Scores.within(Scores.keyValue(keys[i]), m, b.tolerance)) mask |= 1 << i;
            }
        }
        if (!majority) return (m, Status.Unresolved);
        for (uint256 i; i < c; ++i) {
            uint256 seat_ = Scores.keyTag(keys[i]);
            if (mask & (1 << i) != 0) b.agree[seat_] += 1;
            else b.disagree[seat_] += 1;
        }
        status = Rules.statusOf(m, b.minGain);
    }

    function _loadBatch(uint256 taskId, Task storage t, uint256 from) private view returns (Batch memory b) {
        uint256 k = t.seats;
        uint256 r = t.seatsPerSubmission;
        (b.k, b.r, b.offset, b.tolerance, b.minGain) = (k, r, t.ownerCount, t.toleranceBps, t.minGainBps);
        b.appealed = t.appealCount != 0;
        b.verifier = new address[](k);
        b.revealed = new bool[](k);
        b.agree = new uint256[](k);
        b.disagree = new uint256[](k);
        b.nextRank = new uint256[](k);
        b.wordIndex = new uint256[](k);
        b.word = new uint256[](k);
        b.keys = new uint256[](r);
        mapping(uint256 => Seat) storage seats_ = _seats[taskId];
        for (uint256 j; j < k; ++j) {
            Seat memory se = seats_[j];
            (b.verifier[j], b.revealed[j], b.agree[j], b.disagree[j]) = (se.verifier, se.revealed, se.agree, se.disagree);
            b.nextRank[j] = Scores.rank(j, from, k, r);
            b.wordIndex[j] = type(uint256).max;
        }
    }

    function _storeBatch(uint256 taskId, Batch memory b) private {
        mapping(uint256 => Seat) storage seats_ = _seats[taskId];
        for (uint256 j; j < b.k; ++j) {
            Seat storage se = seats_[j];
            if (se.agree != b.agree[j] || se.disagree != b.disagree[j]) {
                seats_[j] = Seat(b.verifier[j], b.revealed[j], uint32(b.agree[j]), uint32(b.disagree[j]));
            }
        }
    }
}
