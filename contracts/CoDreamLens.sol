// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "./interfaces/ICoDreamMarket.sol";
import {Rules} from "./libraries/Rules.sol";
import {Scores} from "./libraries/Scores.sol";

/// @title CoDreamLens: read-only views over a CoDreamMarket (docs/protocol-v3.md §9).
/// @notice Pages of submissions and results, the committee, each seat's assignment and vector,
/// one submission's judgement as it stands, and the owners' verdicts as the revealed vectors
/// give them. Stateless: anyone can deploy one for a market; the market's own views are the
/// raw slots these read.
contract CoDreamLens {
    ICoDreamMarket public immutable market;

    constructor(ICoDreamMarket market_) {
        market = market_;
    }

    /// @notice Submissions [from, from + count) (clamped): miner (zero until revealed), revealed.
    /// CIDs are in the market's `Revealed` events.
    function getSubmissions(uint256 taskId, uint256 from, uint256 count)
        external view returns (address[] memory miners, bool[] memory revealed)
    {
        uint256 n = _clamp(market.getTask(taskId).submissionCount, from, count);
        miners = new address[](n);
        revealed = new bool[](n);
        for (uint256 i; i < n; ++i) {
            ICoDreamMarket.Submission memory sub = market.submission(taskId, from + i);
            revealed[i] = sub.status != ICoDreamMarket.Status.Committed;
            if (revealed[i]) miners[i] = address(bytes20(sub.data));
        }
    }

    /// @notice Results [from, from + count) (clamped): the result (0 before settlement; INVALID /
    /// NO_EVAL sentinels) and the status; a commitment never revealed reads Unrevealed once the
    /// reveal window is over, or once its round failed before the draw.
    function results(uint256 taskId, uint256 from, uint256 count)
        external view returns (int32[] memory result, ICoDreamMarket.Status[] memory status)
    {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        bool over = (t.revealEnd != 0 && block.timestamp > t.revealEnd)
            || market.getSettlement(taskId).failed;
        uint256 n = _clamp(t.submissionCount, from, count);
        result = new int32[](n);
        status = new ICoDreamMarket.Status[](n);
        for (uint256 i; i < n; ++i) {
            ICoDreamMarket.Submission memory sub = market.submission(taskId, from + i);
            status[i] = sub.status;
            if (sub.status == ICoDreamMarket.Status.Committed) {
                if (over) status[i] = ICoDreamMarket.Status.Unrevealed;
            } else {
                result[i] = int32(uint32(uint192(sub.data)));
            }
        }
    }

    /// @notice The committee: per seat its verifier, whether it committed and revealed.
    function getSeats(uint256 taskId)
        external view returns (address[] memory verifiers, bool[] memory committed, bool[] memory revealed)
    {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        uint256 k = t.revealEnd == 0 ? 0 : t.seats;
        verifiers = new address[](k);
        committed = new bool[](k);
        revealed = new bool[](k);
        for (uint256 j; j < k; ++j) {
            ICoDreamMarket.Seat memory se = market.seat(taskId, j);
            verifiers[j] = se.verifier;
            committed[j] = market.scoreCommitment(taskId, j) != bytes32(0);
            revealed[j] = se.revealed;
        }
    }

    /// @notice The seats `verifier` holds in a task's committee (one verifier can hold several).
    function seatsOf(uint256 taskId, address verifier) external view returns (uint256[] memory out) {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        uint256 k = t.revealEnd == 0 ? 0 : t.seats;
        uint256[] memory tmp = new uint256[](k);
        uint256 c;
        for (uint256 j; j < k; ++j) {
            if (market.seat(taskId, j).verifier == verifier) tmp[c++] = j;
        }
        out = new uint256[](c);
        for (uint256 i; i < c; ++i) out[i] = tmp[i];
    }

    /// @notice The submission indices seat `seat` scores, ascending: its vector's order after the
    /// owner verdicts.
    function assigned(uint256 taskId, uint256 seat) external view returns (uint256[] memory) {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        if (seat >= t.seats) return new uint256[](0);
        return Scores.seatSubmissions(seat, t.submissionCount, t.seats, t.seatsPerSubmission);
    }

    /// @notice Seat `seat`'s revealed vector (empty until revealed): one eval verdict per owner,
    /// then its scores in `assigned` order.
    function getScores(uint256 taskId, uint256 seat) external view returns (int32[] memory out) {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        if (seat >= t.seats || !market.seat(taskId, seat).revealed) return out;
        out = new int32[](t.ownerCount + Scores.count(seat, t.submissionCount, t.seats, t.seatsPerSubmission));
        uint256 word;
        for (uint256 i; i < out.length; ++i) {
            if (i % 8 == 0) word = market.scoreWord(taskId, seat, i / 8);
            out[i] = Scores.unpack(word, i % 8);
        }
    }

    /// One submission's judgement as the revealed vectors give it.
    struct Judgement {
        int32 result; // lower median of the eligible revealed scores (NO_EVAL if none)
        bool majority; // whether more than half of the eligible seats support it
        ICoDreamMarket.Status status; // what settlement makes of it (before any appeal)
        uint256[] seats; // its r seats
        int32[] scores; // their scores (0 where silent or not eligible)
        bool[] revealed; // false: silent
        bool[] eligible; // false: held by its own miner (abstains)
    }

    /// @notice Submission `index`'s judgement from the revealed vectors, as settlement (and an
    /// appeal's decision) computes it. Agents compare it with their own score to decide an appeal.
    function judge(uint256 taskId, uint256 index) external view returns (Judgement memory out) {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        uint256 r = t.seatsPerSubmission;
        address miner = address(bytes20(market.submission(taskId, index).data));
        (out.seats, out.scores, out.revealed, out.eligible) = (new uint256[](r), new int32[](r), new bool[](r),
            new bool[](r));
        uint256[] memory keys = new uint256[](r);
        uint256 c;
        uint256 n;
        for (uint256 d; d < r; ++d) {
            uint256 j = Scores.seatOf(index, d, t.seats);
            out.seats[d] = j;
            ICoDreamMarket.Seat memory se = market.seat(taskId, j);
            out.eligible[d] = se.verifier != miner;
            out.revealed[d] = se.revealed;
            if (!out.eligible[d]) continue;
            ++n;
            if (!se.revealed) continue;
            out.scores[d] = _scoreOf(taskId, t, j, index);
            c = Scores.insertSorted(keys, c, out.scores[d], d);
        }
        if (n == 0) {
            (out.result, out.status) = (Scores.NO_EVAL, ICoDreamMarket.Status.Unscored);
            return out;
        }
        (out.result, out.majority,) = Scores.decide(keys, c, n, t.toleranceBps);
        out.status = out.majority ? Rules.statusOf(out.result, t.minGainBps) : ICoDreamMarket.Status.Unresolved;
    }

    function _scoreOf(uint256 taskId, ICoDreamMarket.Task memory t, uint256 j, uint256 index)
        private view returns (int32)
    {
        uint256 q = t.ownerCount + Scores.rank(j, index, t.seats, t.seatsPerSubmission);
        return Scores.unpack(market.scoreWord(taskId, j, q / 8), q % 8);
    }

    /// @notice Each owner's verdict as the revealed vectors give it now (final once the score
    /// reveal window closed; settlement records it), with its OK and not-OK votes.
    function ownerVerdicts(uint256 taskId) external view
        returns (ICoDreamMarket.Verdict[] memory verdicts, uint256[] memory ok, uint256[] memory notOk)
    {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        ICoDreamMarket.Owner[] memory os = market.owners(taskId);
        uint256 k = t.revealEnd == 0 ? 0 : t.seats;
        uint256[] memory first = new uint256[](k);
        bool[] memory rev = new bool[](k);
        for (uint256 j; j < k; ++j) {
            rev[j] = market.seat(taskId, j).revealed;
            if (rev[j]) first[j] = market.scoreWord(taskId, j, 0);
        }
        (verdicts, ok, notOk) = (new ICoDreamMarket.Verdict[](os.length), new uint256[](os.length),
            new uint256[](os.length));
        for (uint256 i; i < os.length; ++i) {
            if (os[i].verdict != ICoDreamMarket.Verdict.None) {
                verdicts[i] = os[i].verdict;
            } else if (!os[i].revealed) {
                verdicts[i] = t.submissionCount == 0 ? ICoDreamMarket.Verdict.Unjudged : ICoDreamMarket.Verdict.Faulty;
            } else if (k == 0) {
                verdicts[i] = ICoDreamMarket.Verdict.Unjudged;
            } else {
                (ok[i], notOk[i]) = Rules.tallyOwner(first, rev, i);
                verdicts[i] = Rules.ownerVerdict(ok[i], notOk[i], k);
            }
        }
    }

    function _clamp(uint256 n, uint256 from, uint256 count) private pure returns (uint256) {
        if (from >= n) return 0;
        return n - from < count ? n - from : count;
    }
}
