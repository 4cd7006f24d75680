// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ICoDreamAppeals} from "./interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "./interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "./interfaces/IStakeRegistry.sol";
import {Cursor} from "./libraries/Cursor.sol";
import {Rules} from "./libraries/Rules.sol";
import {Scores} from "./libraries/Scores.sol";

/// @title CoDreamAppeals: one appeal level over a submission's result (docs/protocol-v3.md §7).
/// @notice In a task's appeal window anyone may appeal one submission's result with a deposit
/// (at least APPEAL_DEPOSIT_MIN, and APPEAL_DEPOSIT_BPS of the bounty). A fresh committee of
/// 2r + 1 seats (new snapshot, prevrandao seed, the registry's warm-up applies) scores that
/// submission alone, commit then reveal; a majority of its eligible seats decides, as in the
/// round. If its result differs from the original (another status, or the original result is
/// outside tolerance of it), the original majority's seats outside tolerance of the new result
/// are overturned: each is slashed OVERTURN_SLASH_BPS of its verifier's stake (at least
/// OVERTURN_SLASH_MIN), APPELLANT_SHARE_BPS of that goes to the appellant with its deposit, the
/// rest is burned; the market settles the submission on the appeal's result (seats that were
/// outvoted but agree with it are not faulty). If the appeal confirms, the deposit pays the
/// appeal seats that agreed. Faulty appeal seats (silent, or against the appeal's majority) are
/// slashed SEAT_SLASH, burned. One level: an appeal's result is final; the committee is about
/// twice as large, so capturing it costs about a majority of the whole stake (§7).
/// Holds no ETH: deposits, payouts and slashes are booked by the market (its appeal hooks).
contract CoDreamAppeals is ICoDreamAppeals, ReentrancyGuardTransient {
    uint256 public constant MAX_APPEALS = 16; // per task: filling them costs 16 deposits (1.6 bounties)
    uint256 public constant APPEAL_DEPOSIT_MIN = 0.01 ether;
    uint256 public constant APPEAL_DEPOSIT_BPS = 1000; // of the task's bounty
    uint256 public constant OVERTURN_SLASH_BPS = 1000; // of the overturned seat's verifier's stake
    uint256 public constant OVERTURN_SLASH_MIN = 0.1 ether; // 5 x SEAT_SLASH
    uint256 public constant APPELLANT_SHARE_BPS = 5000; // of each overturn slash; the rest is burned
    uint256 public constant RESOLVE_ITEMS = 12; // seats per resolveAppeal call (each may slash)
    uint256 private constant BPS = 10_000;

    ICoDreamMarket public immutable market;
    IStakeRegistry public immutable registry;
    uint256 public immutable drawTimeout;
    uint256 public immutable scoreWindow;

    mapping(uint256 => Appeal[]) internal _appeals;
    /// task => appeal => seat
    mapping(uint256 => mapping(uint256 => mapping(uint256 => AppealSeat))) internal _seats;
    mapping(uint256 => mapping(uint256 => mapping(uint256 => bytes32))) internal _commitments;
    /// @notice task => submission => appealed already (one appeal per submission)
    mapping(uint256 => mapping(uint256 => bool)) public appealed;

    constructor(ICoDreamMarket market_, IStakeRegistry registry_, uint256 minWindow, uint256 drawTimeout_,
        uint256 scoreWindow_)
    {
        market = market_;
        registry = registry_;
        drawTimeout = drawTimeout_;
        scoreWindow = scoreWindow_ < minWindow ? minWindow : scoreWindow_;
    }

    // ------------------------------------------------------------------ appeal
    /// @notice Appeal submission `index`'s result (anyone, in the task's appeal window, once per
    /// submission, at most MAX_APPEALS per task), paying exactly `depositFor(taskId)`.
    function appeal(uint256 taskId, uint256 index) external payable nonReentrant returns (uint256 appealId) {
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        if (index >= t.submissionCount || market.submission(taskId, index).status != ICoDreamMarket.Status.Revealed) {
            revert NotRevealed(taskId, index);
        }
        if (block.timestamp > t.appealEnd) revert AppealWindowClosed(t.appealEnd);
        if (appealed[taskId][index]) revert AlreadyAppealed(taskId, index);
        Appeal[] storage list = _appeals[taskId];
        appealId = list.length;
        if (appealId >= MAX_APPEALS) revert TooManyAppeals(MAX_APPEALS);
        uint256 deposit = _deposit(t.bounty);
        if (msg.value != deposit) revert WrongDeposit(deposit, msg.value);
        uint256 snap = block.number - 1;
        if (registry.totalAt(snap) == 0) revert NoEligibleStake();
        appealed[taskId][index] = true;
        market.depositAppeal{value: msg.value}(taskId); // checks the phase and the window again
        Appeal storage a = list.push();
        a.appellant = msg.sender;
        a.submission = uint16(index);
        a.seats = 2 * t.seatsPerSubmission + 1;
        a.stage = AppealStage.Drawing;
        a.snapshotBlock = uint64(snap);
        a.seedBlock = uint64(block.number + market.DRAW_DELAY_BLOCKS());
        a.drawDeadline = SafeCast.toUint32(block.timestamp + drawTimeout);
        a.deposit = uint96(deposit);
        emit Appealed(taskId, appealId, index, msg.sender, deposit, snap, a.seedBlock);
    }

    /// @notice Fix a new seed block for an appeal whose draw window passed undrawn (anyone, before
    /// its draw deadline); the snapshot stays.
    function requestAppealDraw(uint256 taskId, uint256 appealId) external {
        Appeal storage a = _appeal(taskId, appealId, AppealStage.Drawing);
        if (block.timestamp > a.drawDeadline) revert AppealDrawClosed(a.drawDeadline);
        uint256 last = a.seedBlock + market.DRAW_WINDOW_BLOCKS();
        if (block.number <= last) revert AppealDrawPending(last);
        a.seedBlock = uint64(block.number + market.DRAW_DELAY_BLOCKS());
        emit AppealDrawRequested(taskId, appealId, a.seedBlock);
    }

    /// @notice Draw the appeal committee (anyone) in a block of [seedBlock, seedBlock + 32]: 2r + 1
    /// stake-weighted samples of the appeal's snapshot, seeded by this block's prevrandao; each
    /// seat locks its verifier's stake until the appeal is resolved.
    function drawAppeal(uint256 taskId, uint256 appealId) external nonReentrant {
        Appeal storage a = _appeal(taskId, appealId, AppealStage.Drawing);
        if (block.timestamp > a.drawDeadline) revert AppealDrawClosed(a.drawDeadline);
        uint256 seedBlock = a.seedBlock;
        if (block.number < seedBlock) revert SeedNotReached(seedBlock);
        uint256 last = seedBlock + market.DRAW_WINDOW_BLOCKS();
        if (block.number > last) revert DrawWindowMissed(last);
        uint256 snap = a.snapshotBlock;
        bytes32 seed = keccak256(abi.encode(block.prevrandao, taskId, snap, "appeal", appealId));
        uint256 total = registry.totalAt(snap);
        uint256 k = a.seats;
        address[] memory drawn = new address[](k);
        mapping(uint256 => AppealSeat) storage seats_ = _seats[taskId][appealId];
        for (uint256 j; j < k; ++j) {
            address v = registry.sampleAt(snap, uint256(keccak256(abi.encode(seed, j))) % total);
            drawn[j] = v;
            seats_[j].verifier = v;
            market.lockForAppeal(v, true);
        }
        uint256 commitEnd = block.timestamp + scoreWindow;
        a.stage = AppealStage.Scoring;
        a.seed = seed;
        a.commitEnd = SafeCast.toUint32(commitEnd);
        a.revealEnd = SafeCast.toUint32(commitEnd + scoreWindow);
        emit AppealDrawn(taskId, appealId, drawn, seed, commitEnd, commitEnd + scoreWindow);
    }

    /// @notice Commit to appeal seat `seat`'s score of the appealed submission (its holder, until
    /// commitEnd): keccak256(abi.encode(int32 score, salt, msg.sender, taskId, appealId, seat,
    /// block.chainid, address(this))). The score is computed as a round seat would (the union of
    /// the eval sets the seat judges OK, the recipe seed of the task's draw).
    function commitAppealScore(uint256 taskId, uint256 appealId, uint256 seat, bytes32 commitment) external {
        Appeal storage a = _appeal(taskId, appealId, AppealStage.Scoring);
        if (block.timestamp > a.commitEnd) revert AppealWindowClosed(a.commitEnd);
        _holder(taskId, appealId, seat, a.seats);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        mapping(uint256 => bytes32) storage cs = _commitments[taskId][appealId];
        if (cs[seat] != bytes32(0)) revert AlreadyCommitted(seat);
        cs[seat] = commitment;
        emit AppealScoreCommitted(taskId, appealId, seat, msg.sender);
    }

    /// @notice Reveal appeal seat `seat`'s committed score, after commitEnd until revealEnd.
    function revealAppealScore(uint256 taskId, uint256 appealId, uint256 seat, int32 score, bytes32 salt) external {
        Appeal storage a = _appeal(taskId, appealId, AppealStage.Scoring);
        if (block.timestamp <= a.commitEnd) revert AppealNotOver(a.commitEnd);
        if (block.timestamp > a.revealEnd) revert AppealWindowClosed(a.revealEnd);
        AppealSeat storage s = _holder(taskId, appealId, seat, a.seats);
        if (s.revealed) revert AlreadyRevealed(seat);
        bytes32 c = _commitments[taskId][appealId][seat];
        if (c == bytes32(0)) revert NotCommitted(seat);
        if (keccak256(abi.encode(score, salt, msg.sender, taskId, appealId, seat, block.chainid, address(this))) != c) {
            revert BadAppealReveal(seat);
        }
        if (!Scores.isValid(score)) revert BadScore(score);
        s.revealed = true;
        s.score = score;
        emit AppealScoreRevealed(taskId, appealId, seat, msg.sender, score);
    }

    // ------------------------------------------------------------------ resolution
    /// @notice Resolve an appeal (anyone) once its reveal window closed, or its draw deadline
    /// passed undrawn: the first call decides the outcome, then at most RESOLVE_ITEMS seats per
    /// call are settled (appeal seats, then, if overturned, the original seats); the last call
    /// pays or returns the deposit, hands an overturning result to the market and closes the appeal.
    function resolveAppeal(uint256 taskId, uint256 appealId, uint256 maxItems) external nonReentrant {
        if (maxItems == 0) revert ZeroItems();
        if (appealId >= _appeals[taskId].length) revert UnknownAppeal(taskId, appealId);
        Appeal storage a = _appeals[taskId][appealId];
        ICoDreamMarket.Task memory t = market.getTask(taskId);
        if (a.stage == AppealStage.Drawing) {
            if (block.timestamp <= a.drawDeadline) revert AppealNotOver(a.drawDeadline);
            a.seats = 0; // nobody was drawn
            _decided(taskId, appealId, a, Outcome.Void);
        } else if (a.stage == AppealStage.Scoring) {
            if (block.timestamp <= a.revealEnd) revert AppealNotOver(a.revealEnd);
            _decide(taskId, appealId, a, t);
        } else if (a.stage != AppealStage.Resolving) {
            revert WrongAppealStage(taskId, appealId, a.stage);
        }
        uint256 k = a.seats;
        uint256 r = a.outcome == Outcome.Overturned ? t.seatsPerSubmission : 0;
        uint256 from = a.cursor;
        uint256 n = maxItems < RESOLVE_ITEMS ? maxItems : RESOLVE_ITEMS;
        uint256 to = Cursor.next(from, n, k + r);
        address miner = address(bytes20(market.submission(taskId, a.submission).data));
        for (uint256 i = from; i < to; ++i) {
            if (i < k) _settleAppealSeat(taskId, appealId, a, t, i, miner);
            else _settleOriginalSeat(taskId, appealId, a, t, i - k, miner);
        }
        a.cursor = uint16(to);
        if (to == k + r) _finish(taskId, appealId, a);
    }

    /// @dev the appeal committee's judgement against the original one: the outcome
    function _decide(uint256 taskId, uint256 appealId, Appeal storage a, ICoDreamMarket.Task memory t) private {
        address miner = address(bytes20(market.submission(taskId, a.submission).data));
        (int32 m, bool majority, uint256 agreeing) = _appealResult(taskId, appealId, a.seats, t.toleranceBps, miner);
        if (!majority) return _decided(taskId, appealId, a, Outcome.Void);
        (int32 original, bool originalMajority) = _original(taskId, a.submission, t, miner);
        a.result = m;
        a.original = original;
        a.originalMajority = originalMajority;
        a.agreeing = uint8(agreeing);
        _decided(taskId, appealId, a, _confirms(original, originalMajority, m, t) ? Outcome.Confirmed
            : Outcome.Overturned);
    }

    /// @dev the appeal committee's result: lower median of its eligible revealed scores, whether a
    /// majority of its eligible seats supports it, and how many do
    function _appealResult(uint256 taskId, uint256 appealId, uint256 k, uint256 tolerance, address miner)
        private view returns (int32 m, bool majority, uint256 agreeing)
    {
        uint256[] memory keys = new uint256[](k);
        uint256 c;
        uint256 eligible;
        mapping(uint256 => AppealSeat) storage seats_ = _seats[taskId][appealId];
        for (uint256 j; j < k; ++j) {
            AppealSeat memory s = seats_[j];
            if (s.verifier == miner) continue; // a verifier never scores its own submission
            ++eligible;
            if (s.revealed) c = Scores.insertSorted(keys, c, s.score, j);
        }
        uint256 mask;
        (m, majority, mask) = Scores.decide(keys, c, eligible, tolerance);
        for (uint256 i; i < c; ++i) if (mask & (1 << i) != 0) ++agreeing;
    }

    /// @dev the appeal confirms: the original had a majority, of the same status, within tolerance
    function _confirms(int32 original, bool originalMajority, int32 m, ICoDreamMarket.Task memory t)
        private pure returns (bool)
    {
        return originalMajority && Rules.statusOf(original, t.minGainBps) == Rules.statusOf(m, t.minGainBps)
            && Scores.within(original, m, t.toleranceBps);
    }

    function _decided(uint256 taskId, uint256 appealId, Appeal storage a, Outcome outcome) private {
        a.outcome = outcome;
        a.stage = AppealStage.Resolving;
        emit AppealDecided(taskId, appealId, a.submission, outcome, a.original, a.result);
    }

    /// @dev the original judgement of submission s: the lower median of its eligible revealed
    /// seats' scores and whether a majority of its eligible seats supports it (the market's rule)
    function _original(uint256 taskId, uint256 s, ICoDreamMarket.Task memory t, address miner)
        private view returns (int32 m, bool majority)
    {
        uint256 r = t.seatsPerSubmission;
        uint256[] memory keys = new uint256[](r);
        uint256 c;
        uint256 eligible;
        for (uint256 d; d < r; ++d) {
            (bool ok, bool revealed, int32 x) = _originalScore(taskId, s, d, t, miner);
            if (!ok) continue;
            ++eligible;
            if (revealed) c = Scores.insertSorted(keys, c, x, d);
        }
        (m, majority,) = Scores.decide(keys, c, eligible, t.toleranceBps);
    }

    /// @dev the d-th original seat of submission s: eligible (not its miner's), revealed, its score
    function _originalScore(uint256 taskId, uint256 s, uint256 d, ICoDreamMarket.Task memory t, address miner)
        private view returns (bool eligible, bool revealed, int32 x)
    {
        uint256 j = Scores.seatOf(s, d, t.seats);
        ICoDreamMarket.Seat memory se = market.seat(taskId, j);
        if (se.verifier == miner) return (false, false, 0);
        if (!se.revealed) return (true, false, 0);
        uint256 q = t.ownerCount + Scores.rank(j, s, t.seats, t.seatsPerSubmission);
        return (true, true, Scores.unpack(market.scoreWord(taskId, j, q / 8), q % 8));
    }

    /// @dev appeal seat j: slashed (burned) if faulty, paid its share of the deposit if it agreed
    /// with a confirming result, unlocked
    function _settleAppealSeat(uint256 taskId, uint256 appealId, Appeal storage a, ICoDreamMarket.Task memory t,
        uint256 j, address miner) private
    {
        AppealSeat memory s = _seats[taskId][appealId][j];
        uint256 slashed;
        uint256 paid;
        bool faulty;
        if (s.verifier != miner) {
            bool decided = a.outcome != Outcome.Void;
            bool agrees = s.revealed && decided && Scores.within(s.score, a.result, t.toleranceBps);
            faulty = !s.revealed || (decided && !agrees);
            if (faulty) {
                slashed = market.slashForAppeal(taskId, s.verifier, market.SEAT_SLASH(), address(0), 0);
            } else if (agrees && a.outcome == Outcome.Confirmed) {
                paid = a.deposit / a.agreeing;
                market.payFromAppeal(taskId, s.verifier, paid);
            }
        }
        market.lockForAppeal(s.verifier, false);
        emit AppealSeatSettled(taskId, appealId, j, s.verifier, faulty, slashed, paid);
    }

    /// @dev original seat d of an overturned submission: if it supported the original result and
    /// is outside tolerance of the appeal's, its verifier is slashed in proportion to its stake
    function _settleOriginalSeat(uint256 taskId, uint256 appealId, Appeal storage a, ICoDreamMarket.Task memory t,
        uint256 d, address miner) private
    {
        (bool eligible, bool revealed, int32 x) = _originalScore(taskId, a.submission, d, t, miner);
        if (!eligible || !revealed || !a.originalMajority) return;
        if (!Scores.within(x, a.original, t.toleranceBps) || Scores.within(x, a.result, t.toleranceBps)) return;
        address v = market.seat(taskId, Scores.seatOf(a.submission, d, t.seats)).verifier;
        uint256 amount = registry.stakeOf(v) * OVERTURN_SLASH_BPS / BPS;
        if (amount < OVERTURN_SLASH_MIN) amount = OVERTURN_SLASH_MIN;
        uint256 taken = market.slashForAppeal(taskId, v, amount, a.appellant, APPELLANT_SHARE_BPS);
        emit OriginalSeatOverturned(taskId, appealId, Scores.seatOf(a.submission, d, t.seats), v, taken,
            taken * APPELLANT_SHARE_BPS / BPS);
    }

    /// @dev the deposit: back to the appellant unless confirmed (then the agreeing seats got it;
    /// the rounding dust is burned); an overturning result goes to the market; the appeal closes
    function _finish(uint256 taskId, uint256 appealId, Appeal storage a) private {
        uint256 deposit = a.deposit;
        if (a.outcome == Outcome.Confirmed) {
            uint256 dust = deposit - (deposit / a.agreeing) * a.agreeing;
            if (dust != 0) market.payFromAppeal(taskId, address(0), dust);
        } else {
            market.payFromAppeal(taskId, a.appellant, deposit);
        }
        a.stage = AppealStage.Resolved;
        market.closeAppeal(taskId, a.outcome == Outcome.Overturned, a.submission, a.result);
        emit AppealResolved(taskId, appealId, a.outcome);
    }

    // ------------------------------------------------------------------ views
    /// @notice The deposit an appeal of this task needs: APPEAL_DEPOSIT_BPS of its bounty, at
    /// least APPEAL_DEPOSIT_MIN.
    function depositFor(uint256 taskId) external view returns (uint256) {
        return _deposit(market.getTask(taskId).bounty);
    }

    function appealCount(uint256 taskId) external view returns (uint256) {
        return _appeals[taskId].length;
    }

    function getAppeal(uint256 taskId, uint256 appealId) external view returns (Appeal memory) {
        if (appealId >= _appeals[taskId].length) revert UnknownAppeal(taskId, appealId);
        return _appeals[taskId][appealId];
    }

    function getAppealSeats(uint256 taskId, uint256 appealId) external view
        returns (address[] memory verifiers, bool[] memory committed, bool[] memory revealed, int32[] memory scores)
    {
        if (appealId >= _appeals[taskId].length) revert UnknownAppeal(taskId, appealId);
        Appeal storage a = _appeals[taskId][appealId];
        uint256 k = a.commitEnd == 0 ? 0 : a.seats;
        verifiers = new address[](k);
        committed = new bool[](k);
        revealed = new bool[](k);
        scores = new int32[](k);
        for (uint256 j; j < k; ++j) {
            AppealSeat memory s = _seats[taskId][appealId][j];
            (verifiers[j], revealed[j], scores[j]) = (s.verifier, s.revealed, s.score);
            committed[j] = _commitments[taskId][appealId][j] != bytes32(0);
        }
    }

    // ------------------------------------------------------------------ helpers
    function _deposit(uint256 bounty) private pure returns (uint256 d) {
        d = bounty * APPEAL_DEPOSIT_BPS / BPS;
        if (d < APPEAL_DEPOSIT_MIN) d = APPEAL_DEPOSIT_MIN;
    }

    function _appeal(uint256 taskId, uint256 appealId, AppealStage stage) private view returns (Appeal storage a) {
        if (appealId >= _appeals[taskId].length) revert UnknownAppeal(taskId, appealId);
        a = _appeals[taskId][appealId];
        if (a.stage != stage) revert WrongAppealStage(taskId, appealId, a.stage);
    }

    function _holder(uint256 taskId, uint256 appealId, uint256 seat, uint256 seats)
        private view returns (AppealSeat storage s)
    {
        s = _seats[taskId][appealId][seat];
        if (seat >= seats || s.verifier != msg.sender) revert NotAppealSeatHolder(taskId, appealId, seat, msg.sender);
    }
}
