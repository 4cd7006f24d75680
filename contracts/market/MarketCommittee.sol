// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Scores} from "../libraries/Scores.sol";
import {MarketState} from "./MarketState.sol";

/// @title MarketCommittee: the committee of a task, from its draw to its revealed vectors.
/// @notice Owns `requestDraw` and `drawCommittee` (the stake snapshot, the RANDAO seed, K
/// stake-weighted seats and the windows that follow: docs/protocol-v3.md §4) and the seats'
/// commit-reveal of their vectors, one eval verdict per owner then one score per assigned
/// submission, stored packed eight to a word (§5, §9). Settlement reads what it stores.
abstract contract MarketCommittee is MarketState {
    // ------------------------------------------------------------------ committee
    /// @notice Fix the stake snapshot (the first request only: the end of the previous block) and
    /// the seed block of the committee draw (anyone), once the eval sets are revealed. A
    /// re-request is possible only after the previous draw window passed, and keeps the snapshot.
    function requestDraw(uint256 taskId) external {
        Task storage t = _task(taskId);
        Phase p = phaseOf(taskId);
        if (p != Phase.AwaitingDraw) revert WrongPhase(taskId, Phase.AwaitingDraw, p);
        uint256 seedBlock = t.seedBlock;
        if (seedBlock != 0 && block.number <= seedBlock + DRAW_WINDOW_BLOCKS) {
            revert DrawPending(taskId, seedBlock + DRAW_WINDOW_BLOCKS);
        }
        uint256 snap = t.snapshotBlock;
        if (snap == 0) {
            snap = block.number - 1;
            if (registry.totalAt(snap) == 0) revert NoEligibleStake();
            t.snapshotBlock = uint64(snap);
        }
        seedBlock = block.number + DRAW_DELAY_BLOCKS;
        t.seedBlock = uint64(seedBlock);
        emit DrawRequested(taskId, snap, seedBlock);
    }

    /// @notice Draw the committee (anyone) in a block of [seedBlock, seedBlock + 32]: its seed is
    /// keccak256(prevrandao, taskId, snapshot) of the block this call lands in (a builder can only
    /// leave the call out of its block, not choose the value). K seats, each an independent
    /// stake-weighted sample of the snapshot (with replacement), each locking its verifier's stake
    /// until settlement. The miners' reveal window starts now; the score-commit window is at least
    /// minWindow + secondsPerBundle x the busiest seat's bundles.
    function drawCommittee(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Phase p = phaseOf(taskId);
        if (p != Phase.AwaitingDraw) revert WrongPhase(taskId, Phase.AwaitingDraw, p);
        uint256 seedBlock = t.seedBlock;
        if (seedBlock == 0) revert DrawNotRequested(taskId);
        if (block.number < seedBlock) revert SeedNotReached(seedBlock);
        if (block.number > seedBlock + DRAW_WINDOW_BLOCKS) revert DrawWindowMissed(seedBlock + DRAW_WINDOW_BLOCKS);
        uint256 snap = t.snapshotBlock;
        bytes32 seed = keccak256(abi.encode(block.prevrandao, taskId, snap));
        uint256 total = registry.totalAt(snap);
        uint256 k = t.seats;
        address[] memory drawn = new address[](k);
        mapping(uint256 => Seat) storage seats_ = _seats[taskId];
        for (uint256 j; j < k; ++j) {
            address v = registry.sampleAt(snap, uint256(keccak256(abi.encode(seed, j))) % total);
            drawn[j] = v;
            seats_[j].verifier = v;
            registry.lock(v, 1);
        }
        uint256 r = t.seatsPerSubmission;
        uint256 busiest = r * ((uint256(t.submissionCount) + k - 1) / k); // most bundles one seat scores
        uint256 commitWindow = _minWindow + _secondsPerBundle * busiest;
        if (commitWindow < t.scoreCommitWindow) commitWindow = t.scoreCommitWindow;
        uint256 revealEnd = block.timestamp + t.revealWindow;
        uint256 scoreCommitEnd = revealEnd + commitWindow;
        uint256 scoreRevealEnd = scoreCommitEnd + t.scoreRevealWindow;
        uint256 appealEnd = scoreRevealEnd + _appealWindow;
        t.revealEnd = SafeCast.toUint32(revealEnd);
        t.scoreCommitEnd = SafeCast.toUint32(scoreCommitEnd);
        t.scoreRevealEnd = SafeCast.toUint32(scoreRevealEnd);
        t.appealEnd = SafeCast.toUint32(appealEnd);
        t.seed = seed;
        emit CommitteeDrawn(taskId, drawn, seed, revealEnd, scoreCommitEnd, scoreRevealEnd, appealEnd);
    }

    /// @notice Commit to seat `seat`'s vector (its holder only, in the score-commit window, which
    /// follows the miners' reveal window): keccak256(abi.encode(int32[] vector, salt, msg.sender,
    /// taskId, seat, block.chainid, address(this))).
    function commitScores(uint256 taskId, uint256 seat_, bytes32 commitment) external {
        Task storage t = _task(taskId);
        if (block.timestamp <= t.revealEnd || block.timestamp > t.scoreCommitEnd) {
            revert WrongPhase(taskId, Phase.ScoreCommit, phaseOf(taskId));
        }
        _holder(taskId, seat_);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (_scoreCommitments[taskId][seat_] != bytes32(0)) revert ScoresAlreadyCommitted(taskId, seat_);
        _scoreCommitments[taskId][seat_] = commitment;
        emit ScoresCommitted(taskId, seat_, msg.sender);
    }

    /// @notice Reveal seat `seat`'s committed vector in the score-reveal window: first one eval
    /// verdict per owner (EVAL_OK = 1, EVAL_FAILED = 2, EVAL_UNAVAILABLE = 3; anything of those for
    /// an owner that never revealed), then one score per submission the seat is assigned, ascending:
    /// a gain in bps in [-10000, 10000], INVALID or NO_EVAL, computed on the union of the eval sets
    /// the seat judged OK. The vector is then readable (CoDreamLens.getScores).
    function revealScores(uint256 taskId, uint256 seat_, int32[] calldata scores, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (block.timestamp <= t.scoreCommitEnd || block.timestamp > t.scoreRevealEnd) {
            revert WrongPhase(taskId, Phase.ScoreReveal, phaseOf(taskId));
        }
        Seat storage st = _holder(taskId, seat_);
        if (st.revealed) revert ScoresAlreadyRevealed(taskId, seat_);
        bytes32 c = _scoreCommitments[taskId][seat_];
        if (c == bytes32(0)) revert ScoresNotCommitted(taskId, seat_);
        uint256 o = t.ownerCount;
        uint256 n = o + Scores.count(seat_, t.submissionCount, t.seats, t.seatsPerSubmission);
        if (scores.length != n) revert WrongScoreCount(n, scores.length);
        if (keccak256(abi.encode(scores, salt, msg.sender, taskId, seat_, block.chainid, address(this))) != c) {
            revert BadScoreReveal(taskId, seat_);
        }
        for (uint256 i; i < o; ++i) {
            if (!Scores.isVerdict(scores[i])) revert BadVerdict(i, scores[i]);
        }
        st.revealed = true;
        _storeScores(taskId, seat_, scores);
        emit ScoresRevealed(taskId, seat_, msg.sender);
    }

    // ------------------------------------------------------------------ helpers
    function _holder(uint256 taskId, uint256 seat_) private view returns (Seat storage st) {
        st = _seats[taskId][seat_];
        if (seat_ >= _tasks[taskId].seats || st.verifier != msg.sender) revert NotSeatHolder(taskId, seat_, msg.sender);
    }

    function _storeScores(uint256 taskId, uint256 seat_, int32[] calldata scores) private {
        mapping(uint256 => uint256) storage words = _scoreWords[taskId];
        uint256 n = scores.length;
        uint256 word;
        for (uint256 i; i < n; ++i) {
            int32 x = scores[i];
            if (!Scores.isValid(x)) revert BadScore(x);
            word = Scores.pack(word, i % 8, x);
            if (i % 8 == 7 || i + 1 == n) {
                words[(seat_ << 32) | (i / 8)] = word;
                word = 0;
            }
        }
    }
}
