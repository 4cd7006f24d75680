// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {StakeRegistry} from "../StakeRegistry.sol";

/// @title ICoDreamMarket: the market's types, events, errors and external functions.
/// @notice Everything agents, the dapp and tests need to talk to CoDreamMarket (protocol v2,
/// spec/protocol-v2.md) without compiling the market itself.
interface ICoDreamMarket {
    /// where a task stands now (a view over its windows and state)
    enum Phase {
        None,
        Commit,
        Reveal,
        EvalReveal,
        AwaitingDraw,
        ScoreCommit,
        ScoreReveal,
        AwaitingSettlement,
        Settling,
        Finalized
    }

    /// a submission: Committed -> Revealed -> (settlement) Accepted / Rejected / Invalid / Unresolved /
    /// Unscored; a commitment never revealed reads as Unrevealed once the reveal window is over.
    /// Unscored: every seat that should score it is held by its own miner (all abstain), so nobody
    /// could judge it; its bond comes back but it takes no share (else a verifier could mine junk and
    /// hold its seats to collect an unresolved share).
    enum Status {
        Committed,
        Revealed,
        Unrevealed,
        Accepted,
        Rejected,
        Invalid,
        Unresolved,
        Unscored
    }

    /// settlement stages, in order. A failed round (no committee) runs Results, Payouts, Refund;
    /// a task without any revealed submission only Refund.
    enum Stage {
        None,
        Results, // per submission: result and status; per seat: agree / disagree counts
        Seats, // per seat: slash the faulty, unlock every seat
        Payouts, // per submission: reward, bond back, pot share when no seat earned
        Fees, // per seat: the verifier pot pro rata to agreements
        Refund, // one item: what the miners did not earn goes back to the owners
        Finalized
    }

    /// Packed so that commit and reveal each read one task slot.
    struct Task {
        // slot 0: commit / reveal
        uint96 escrow; // wei held for this task (see contract notice); 0 once finalized
        uint72 minerBond;
        uint16 submissionCount; // committed submissions (N)
        uint32 commitEnd;
        uint32 revealEnd;
        bool anyRevealed;
        // slot 1: evals, committee shape, score windows
        uint32 evalRevealEnd;
        uint8 ownerCount;
        uint8 ownersRevealed;
        uint8 seats; // K
        uint8 seatsPerSubmission; // r
        int16 minGainBps;
        uint16 toleranceBps;
        uint16 feeBps;
        uint32 scoreCommitWindow;
        uint32 scoreRevealWindow;
        uint32 scoreCommitEnd; // 0 until the committee is drawn
        uint32 scoreRevealEnd;
        // slot 2: draw and bounty
        uint64 snapshotBlock; // stakes as of this block's end decide the draw
        uint64 seedBlock; // its hash seeds the draw (0: not requested)
        uint32 requestedAt; // time of the request that took the snapshot
        uint96 bounty; // sum of the owners' contributions
        string specCid;
    }

    struct Owner {
        address addr;
        uint96 contribution;
        bytes32 evalCommitment; // keccak256(abi.encode(evalCid, salt))
        bool revealed;
    }

    struct Settlement {
        Stage stage;
        bool failed; // no eval set, no committee or nobody revealed: no scores, fixed refund rules
        uint16 cursor; // next submission or seat of the current stage
        uint16 revealed; // R
        uint16 unresolved; // U
        uint16 lastRevealed; // index of the last revealed submission (gets rounding dust)
        uint8 lastPaidSeat; // the last seat with a fee (gets rounding dust)
        uint32 acceptedWeight; // W: sum of accepted results
        uint32 totalAgree; // sum of agree counts over the non-faulty seats
        uint128 pot; // verifier pot: fee + forfeited bonds + slashes (failed round: forfeited bonds)
        uint128 minersPaid; // rewards paid out of the miner pot (failed round: everything paid to miners)
        uint128 potPaid; // pot paid to seats, or to the revealed miners when no seat earned
    }

    // ------------------------------------------------------------------ events
    event TaskCreated(uint256 indexed taskId, address indexed creator, string specCid, uint256 bounty,
        uint256 minerBond, uint256 seats, uint256 seatsPerSubmission);
    event TaskJoined(uint256 indexed taskId, address indexed owner, uint256 ownerIndex, uint256 contribution);
    event Committed(uint256 indexed taskId, address indexed miner, uint256 index);
    event Revealed(uint256 indexed taskId, address indexed miner, uint256 index, string cid);
    event EvalRevealed(uint256 indexed taskId, uint256 ownerIndex, string evalCid);
    event DrawRequested(uint256 indexed taskId, uint256 snapshotBlock, uint256 seedBlock);
    event CommitteeDrawn(uint256 indexed taskId, address[] seats, uint256 scoreCommitEnd, uint256 scoreRevealEnd);
    event ScoresCommitted(uint256 indexed taskId, uint256 seat, address indexed verifier);
    event ScoresRevealed(uint256 indexed taskId, uint256 seat, address indexed verifier);
    event Settled(uint256 indexed taskId, Stage stage, uint256 cursor);
    event SubmissionSettled(uint256 indexed taskId, uint256 indexed index, address indexed miner, int32 result,
        Status status, uint256 reward, uint256 bondReturned);
    event SeatSettled(uint256 indexed taskId, uint256 seat, address indexed verifier, uint256 agree,
        uint256 disagree, bool faulty, uint256 slashed);
    event Finalized(uint256 indexed taskId, uint256 minersPaid, uint256 potPaid, bool potToMiners,
        uint256 ownersRefund);
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors
    error UnknownTask(uint256 taskId);
    error WrongPhase(uint256 taskId, Phase expected, Phase actual);
    error NoBounty();
    error MinBond(uint256 required, uint256 given);
    error BadSeats(uint256 seats, uint256 seatsPerSubmission, uint256 maxSeats);
    error ToleranceTooHigh(uint256 max, uint256 given);
    error FeeTooHigh(uint256 max, uint256 given);
    error BadMinGain(int256 given);
    error BadWindow(uint256 index, uint256 duration);
    error BadCid(uint256 length);
    error ZeroCommitment();
    error TooManyOwners(uint256 max);
    error AlreadyOwner(uint256 taskId, address owner);
    error NotOwner(uint256 taskId, uint256 ownerIndex, address caller);
    error EvalAlreadyRevealed(uint256 taskId, uint256 ownerIndex);
    error BadEvalReveal(uint256 taskId, uint256 ownerIndex);
    error WrongBond(uint256 required, uint256 given);
    error TooManySubmissions(uint256 max);
    error UnknownSubmission(uint256 taskId, uint256 index);
    error AlreadyRevealed(uint256 taskId, uint256 index);
    error RevealInCommitBlock(uint256 commitBlock);
    error BadReveal(uint256 taskId, uint256 index);
    error DuplicateCid(uint256 taskId, bytes32 cidHash);
    error DrawPending(uint256 taskId, uint256 seedBlock);
    error NoEligibleStake();
    error DrawNotRequested(uint256 taskId);
    error SeedNotMined(uint256 seedBlock);
    error SeedExpired(uint256 seedBlock);
    error NotSeatHolder(uint256 taskId, uint256 seat, address caller);
    error ScoresAlreadyCommitted(uint256 taskId, uint256 seat);
    error ScoresNotCommitted(uint256 taskId, uint256 seat);
    error ScoresAlreadyRevealed(uint256 taskId, uint256 seat);
    error WrongScoreCount(uint256 expected, uint256 given);
    error BadScoreReveal(uint256 taskId, uint256 seat);
    error BadScore(int32 score);
    error ZeroItems();
    error NothingToWithdraw(address account);
    error TransferFailed(address to, uint256 amount);
    error NotRegistry(address sender);

    // ------------------------------------------------------------------ functions
    /// @notice Create a task escrowing `msg.value` as bounty; the caller is owner 0.
    function createTask(string calldata specCid, bytes32 evalCommitment, uint256 minerBond, uint8 seats,
        uint8 seatsPerSubmission, int16 minGainBps, uint16 toleranceBps, uint16 feeBps, uint32[5] calldata windows)
        external payable returns (uint256 taskId);
    /// @notice Join a task as a co-owner during its commit window.
    function joinTask(uint256 taskId, bytes32 evalCommitment) external payable returns (uint256 ownerIndex);
    /// @notice Reveal an owner's eval set in the eval-reveal window.
    function revealEval(uint256 taskId, uint256 ownerIndex, string calldata evalCid, bytes32 salt) external;
    /// @notice Commit to a bundle CID, bonding `minerBond`.
    function commit(uint256 taskId, bytes32 commitment) external payable returns (uint256 index);
    /// @notice Reveal a committed CID in the reveal window.
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external;
    /// @notice Fix the stake snapshot and the seed block of the committee draw.
    function requestDraw(uint256 taskId) external;
    /// @notice Draw the committee from the seed block's hash.
    function drawCommittee(uint256 taskId) external;
    /// @notice Commit to a seat's score vector.
    function commitScores(uint256 taskId, uint256 seat, bytes32 commitment) external;
    /// @notice Reveal a seat's committed score vector.
    function revealScores(uint256 taskId, uint256 seat, int32[] calldata scores, bytes32 salt) external;
    /// @notice Advance a task's settlement by at most `maxItems` items.
    function settle(uint256 taskId, uint256 maxItems) external;
    /// @notice Withdraw everything credited to the caller.
    function withdraw() external;

    /// @notice The stake registry the market deployed.
    function registry() external view returns (StakeRegistry);
    /// @notice Number of tasks created (ids 1..taskCount).
    function taskCount() external view returns (uint256);
    /// @notice Wei an address can withdraw.
    function claimable(address account) external view returns (uint256);
    /// @notice Whether keccak256(cid) was already revealed in a task.
    function cidUsed(uint256 taskId, bytes32 cidHash) external view returns (bool);
    /// @notice Where a task stands now.
    function phaseOf(uint256 taskId) external view returns (Phase);
    /// @notice A task's parameters, windows, draw state, bounty and escrow.
    function getTask(uint256 taskId) external view returns (Task memory);
    /// @notice A task's owners.
    function owners(uint256 taskId) external view returns (Owner[] memory);
    /// @notice Submissions [from, from + count): miner and whether revealed.
    function getSubmissions(uint256 taskId, uint256 from, uint256 count)
        external view returns (address[] memory miners, bool[] memory revealed);
    /// @notice Results [from, from + count): result and status.
    function results(uint256 taskId, uint256 from, uint256 count)
        external view returns (int32[] memory result, Status[] memory status);
    /// @notice The committee: verifier, committed, revealed per seat.
    function getSeats(uint256 taskId)
        external view returns (address[] memory verifiers, bool[] memory committed, bool[] memory revealed);
    /// @notice The seats a verifier holds in a task's committee.
    function seatsOf(uint256 taskId, address verifier) external view returns (uint256[] memory);
    /// @notice The submissions a seat scores, ascending.
    function assigned(uint256 taskId, uint256 seat) external view returns (uint256[] memory);
    /// @notice A seat's revealed score vector.
    function getScores(uint256 taskId, uint256 seat) external view returns (int32[] memory);
    /// @notice A seat's agree / disagree counts.
    function seatStats(uint256 taskId, uint256 seat) external view returns (uint256 agree, uint256 disagree);
    /// @notice Settlement progress and totals.
    function getSettlement(uint256 taskId) external view returns (Settlement memory);
    /// @notice A seat's score commitment (0 until committed).
    function scoreCommitment(uint256 taskId, uint256 seat) external view returns (bytes32);
    /// @notice Wei slashed per faulty seat (capped at the verifier's stake).
    function SEAT_SLASH() external view returns (uint256);
    /// @notice Most committee seats a task can have.
    function MAX_SEATS() external view returns (uint256);
    /// @notice Most submissions a task can have.
    function MAX_SUBMISSIONS() external view returns (uint256);
    /// @notice Least miner bond a task can ask for.
    function MIN_BOND() external view returns (uint256);
    /// @notice Largest score tolerance a task can set.
    function MAX_TOLERANCE_BPS() external view returns (uint256);
    /// @notice Time after the eval-reveal deadline by which a committee must be drawn.
    function DRAW_TIMEOUT() external view returns (uint256);
    /// @notice How long a re-requested draw keeps the first stake snapshot.
    function SNAPSHOT_TTL() external view returns (uint256);
}
