// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ICoDreamAppeals: appeals of one submission's result to a larger, fresh committee
/// (protocol v3, docs/protocol-v3.md §7).
interface ICoDreamAppeals {
    /// an appeal's progress: its committee is drawn, scores, then the appeal is resolved in batches
    enum AppealStage {
        None,
        Drawing,
        Scoring,
        Resolving,
        Resolved
    }

    /// Confirmed: the appeal committee's majority agrees with the original result (the deposit
    /// pays the appeal seats that agreed). Overturned: it differs (another status, or the original
    /// result is outside tolerance of it); the original majority's seats that are outside
    /// tolerance of the new result are slashed, the appellant gets its deposit back and a share
    /// of those slashes. Void: no committee in time, or no majority: the deposit comes back and
    /// the original result stands.
    enum Outcome {
        None,
        Confirmed,
        Overturned,
        Void
    }

    struct Appeal {
        // slot 0
        address appellant;
        uint16 submission;
        uint8 seats; // 2r + 1
        AppealStage stage;
        Outcome outcome;
        uint16 cursor; // resolution progress: appeal seats, then the original seats
        bool originalMajority; // whether the original result had a majority
        // slot 1
        uint64 snapshotBlock; // stakes as of this block's end decide the draw (fixed at the appeal)
        uint64 seedBlock; // the draw is valid in blocks [seedBlock, seedBlock + DRAW_WINDOW_BLOCKS]
        uint32 drawDeadline;
        uint32 commitEnd; // 0 until drawn
        uint32 revealEnd;
        int32 result; // the appeal committee's result (Confirmed / Overturned)
        // slot 2
        uint96 deposit;
        int32 original; // the original result (lower median of the original seats)
        uint8 agreeing; // eligible appeal seats that supported the result
        bytes32 seed;
    }

    /// One appeal seat: who holds it, whether it revealed, and its score.
    struct AppealSeat {
        address verifier;
        bool revealed;
        int32 score;
    }

    event Appealed(uint256 indexed taskId, uint256 indexed appealId, uint256 indexed index, address appellant,
        uint256 deposit, uint256 snapshotBlock, uint256 seedBlock);
    event AppealDrawRequested(uint256 indexed taskId, uint256 indexed appealId, uint256 seedBlock);
    event AppealDrawn(uint256 indexed taskId, uint256 indexed appealId, address[] seats, bytes32 seed,
        uint256 commitEnd, uint256 revealEnd);
    event AppealScoreCommitted(uint256 indexed taskId, uint256 indexed appealId, uint256 seat, address indexed verifier);
    event AppealScoreRevealed(uint256 indexed taskId, uint256 indexed appealId, uint256 seat, address indexed verifier,
        int32 score);
    event AppealDecided(uint256 indexed taskId, uint256 indexed appealId, uint256 indexed index, Outcome outcome,
        int32 original, int32 result);
    event AppealSeatSettled(uint256 indexed taskId, uint256 indexed appealId, uint256 seat, address indexed verifier,
        bool faulty, uint256 slashed, uint256 paid);
    event OriginalSeatOverturned(uint256 indexed taskId, uint256 indexed appealId, uint256 seat,
        address indexed verifier, uint256 slashed, uint256 toAppellant);
    event AppealResolved(uint256 indexed taskId, uint256 indexed appealId, Outcome outcome);

    error NotRevealed(uint256 taskId, uint256 index);
    error AlreadyAppealed(uint256 taskId, uint256 index);
    error TooManyAppeals(uint256 max);
    error WrongDeposit(uint256 required, uint256 given);
    error UnknownAppeal(uint256 taskId, uint256 appealId);
    error WrongAppealStage(uint256 taskId, uint256 appealId, AppealStage stage);
    error AppealDrawPending(uint256 lastBlock);
    error AppealDrawClosed(uint256 drawDeadline);
    error SeedNotReached(uint256 seedBlock);
    error DrawWindowMissed(uint256 lastBlock);
    error NoEligibleStake();
    error NotAppealSeatHolder(uint256 taskId, uint256 appealId, uint256 seat, address caller);
    error AppealWindowClosed(uint256 end);
    error AppealNotOver(uint256 end);
    error AlreadyCommitted(uint256 seat);
    error NotCommitted(uint256 seat);
    error AlreadyRevealed(uint256 seat);
    error BadAppealReveal(uint256 seat);
    error BadScore(int32 score);
    error ZeroCommitment();
    error ZeroItems();

    /// @notice Appeal submission `index`'s result in the task's appeal window, with exactly
    /// `depositFor(taskId)` as deposit. Fixes the appeal committee's stake snapshot and seed block.
    function appeal(uint256 taskId, uint256 index) external payable returns (uint256 appealId);
    /// @notice Fix a new seed block after the previous draw window passed (same snapshot).
    function requestAppealDraw(uint256 taskId, uint256 appealId) external;
    /// @notice Draw the appeal committee (2r + 1 seats) from the prevrandao of this block.
    function drawAppeal(uint256 taskId, uint256 appealId) external;
    /// @notice Commit to an appeal seat's score of the appealed submission.
    function commitAppealScore(uint256 taskId, uint256 appealId, uint256 seat, bytes32 commitment) external;
    /// @notice Reveal an appeal seat's committed score.
    function revealAppealScore(uint256 taskId, uint256 appealId, uint256 seat, int32 score, bytes32 salt) external;
    /// @notice Advance an appeal's resolution by at most `maxItems` seats (capped per call).
    function resolveAppeal(uint256 taskId, uint256 appealId, uint256 maxItems) external;

    /// @notice The deposit an appeal of this task needs.
    function depositFor(uint256 taskId) external view returns (uint256);
    /// @notice How many appeals a task has.
    function appealCount(uint256 taskId) external view returns (uint256);
    /// @notice One appeal.
    function getAppeal(uint256 taskId, uint256 appealId) external view returns (Appeal memory);
    /// @notice One appeal's seats: verifier, committed, revealed, score (0 until revealed).
    function getAppealSeats(uint256 taskId, uint256 appealId) external view
        returns (address[] memory verifiers, bool[] memory committed, bool[] memory revealed, int32[] memory scores);
    /// @notice Whether submission `index` of a task was appealed.
    function appealed(uint256 taskId, uint256 index) external view returns (bool);
}
