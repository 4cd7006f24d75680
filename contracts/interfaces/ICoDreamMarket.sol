// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStakeRegistry} from "./IStakeRegistry.sol";

/// @title ICoDreamMarket: the market's types, events, errors and external functions.
/// @notice Everything agents, the dapp, the appeals module, the lens and tests need to talk to
/// CoDreamMarket (protocol v3, docs/protocol-v3.md) without compiling it.
interface ICoDreamMarket {
    /// where a task stands now (a view over its windows and state), in the order a round runs
    enum Phase {
        None,
        Commit, // miners commit CIDs; co-owners join
        EvalReveal, // owners reveal their eval sets (every CID is already committed)
        AwaitingDraw, // anyone requests, then draws, the committee
        Reveal, // miners reveal their bundles (the committee and its seed are known)
        ScoreCommit, // seats commit their vectors: one eval verdict per owner, then scores
        ScoreReveal,
        Appeal, // anyone may appeal one submission's result; open appeals are scored
        AwaitingSettlement,
        Settling,
        Finalized
    }

    /// a submission: Committed -> Revealed -> (settlement) Accepted / Rejected / Invalid /
    /// Unresolved / Unscored; a commitment never revealed reads as Unrevealed once the reveal
    /// window is over (or in a round that failed before its draw, where its bond comes back).
    /// Unresolved (no majority, or a NO_EVAL majority) and Unscored (its own miner held every seat
    /// that should score it) are unjudged: bond back, nothing else.
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

    /// an owner's verdict at settlement: Good (a majority of all seats found its eval set OK),
    /// Faulty (a majority found it failed or unavailable, or it was never revealed: its whole
    /// contribution is burned), Unjudged (no majority either way, or the round failed before its
    /// draw and it did reveal): Good and Unjudged owners fund the round and share the refunds
    enum Verdict {
        None,
        Good,
        Faulty,
        Unjudged
    }

    /// settlement stages, in order. A round that failed before its draw runs Owners, Payouts
    /// (every bond back) and Refund.
    enum Stage {
        None,
        Owners, // one item: owner verdicts, faulty contributions burned, the funded bounty
        Results, // per submission: result (or its appeal's) and status; per seat: agree / disagree
        Seats, // per seat: slash (burned) the faulty, unlock every seat
        Payouts, // per submission: reward and bond back
        Fees, // per seat: the verifier pot pro rata to agreements
        Refund, // one item: owners' refunds; what is left of the escrow is burned (dust)
        Finalized
    }

    /// why wei was burned (kept in the market forever: `burned`)
    enum BurnReason {
        FaultyOwner, // an owner's whole contribution
        SeatSlash, // a faulty seat's slash (never paid to the majority that outvoted it)
        OverturnSlash, // an overturned seat's slash, less the appellant's share
        ForfeitedBonds, // forfeited bonds when no seat earned anything
        Dust // rounding remainders and what no rule assigns
    }

    /// Protocol parameters, fixed at deployment (production values: docs/protocol-v3.md §2).
    struct Params {
        uint32 minWindow; // floor of every window (several blocks)
        uint32 maxCommitWindow;
        uint32 maxEvalWindow;
        uint32 maxLockWindow; // ceiling of the reveal, score-commit and score-reveal windows (they lock stake)
        uint32 secondsPerBundle; // the score-commit window is at least minWindow + this x the busiest seat's bundles
        uint32 drawTimeout; // a committee must be drawn this long after the eval-reveal deadline (appeals: after the appeal)
        uint32 appealWindow; // after the score-reveal window
        uint32 appealScoreWindow; // each of an appeal committee's commit and reveal windows
        uint32 warmup; // a deposit counts in draws this long after it was made
        uint32 unbondingDelay;
        uint8 minSeatsPerSubmission; // floor of r (odd)
    }

    /// Packed so that commit and reveal each read one task slot.
    struct Task {
        // slot 0: commit / reveal
        uint96 escrow; // wei held for this task: contributions not yet burned or refunded, bonds, appeal deposits
        uint72 minerBond;
        uint16 submissionCount; // committed submissions (N)
        uint32 commitEnd;
        uint32 revealEnd; // 0 until the committee is drawn: miners reveal after the draw
        uint8 ownerCount;
        // slot 1: evals, committee shape, windows
        uint32 evalRevealEnd;
        uint8 ownersRevealed;
        uint8 seats; // K
        uint8 seatsPerSubmission; // r (odd)
        int16 minGainBps;
        uint16 toleranceBps;
        uint16 feeBps;
        uint32 revealWindow;
        uint32 scoreCommitWindow;
        uint32 scoreRevealWindow;
        uint32 scoreCommitEnd; // 0 until the committee is drawn
        uint8 openAppeals; // appeals not resolved yet: settlement waits for them
        // slot 2: later windows and the draw
        uint32 scoreRevealEnd;
        uint32 appealEnd;
        uint64 snapshotBlock; // stakes as of this block's end decide the draw (fixed by the first request)
        uint64 seedBlock; // the draw is valid in blocks [seedBlock, seedBlock + DRAW_WINDOW_BLOCKS]
        uint8 appealCount; // appeals ever made
        // slot 3
        uint96 bounty; // sum of the owners' contributions
        uint96 appealDeposits; // deposits of open appeals (part of escrow)
        // slot 4
        bytes32 seed; // the draw's seed (0 until drawn): verifiers derive each bundle's recipe seed from it
        string specCid;
    }

    struct Owner {
        address addr;
        uint96 contribution;
        bytes32 evalCommitment; // keccak256(abi.encode(evalCid, salt))
        bool revealed;
        uint16 evalAccuracyBps; // the owner's declared accuracy of the teachers on its eval set
        Verdict verdict; // None until settlement
    }

    /// One slot per submission. Until the reveal `data` holds the first 24 bytes of the commitment;
    /// the reveal writes the miner's address in its first 20 bytes and settlement its result
    /// (int32) in the last 4. The CID lives in the `Revealed` event.
    struct Submission {
        bytes24 data;
        uint56 commitBlock;
        Status status;
    }

    /// One slot per committee seat; its commitment and vector are stored apart.
    struct Seat {
        address verifier;
        bool revealed;
        uint32 agree; // judgements (owner verdicts, submission results) this seat supported
        uint32 disagree; // judgements it voted against
    }

    struct Settlement {
        Stage stage;
        bool failed; // no committee: every bond back, owners refunded (faulty ones burned)
        uint16 cursor; // next submission or seat of the current stage
        uint16 accepted; // accepted submissions
        uint32 acceptedWeight; // W: sum of accepted results
        uint32 totalAgree; // sum of agree counts over the non-faulty seats
        uint96 funded; // B: contributions of the Good and Unjudged owners
        uint128 pot; // verifier pot: fee + forfeited bonds
        uint128 minersPaid; // rewards paid out of the miner pot
        uint128 potPaid; // pot paid to seats
        uint128 burned; // burned by this task's settlement and appeals
    }

    // ------------------------------------------------------------------ events
    event TaskCreated(uint256 indexed taskId, address indexed creator, string specCid, uint256 bounty,
        uint256 minerBond, uint256 seats, uint256 seatsPerSubmission, uint256 evalAccuracyBps);
    event TaskJoined(uint256 indexed taskId, address indexed owner, uint256 ownerIndex, uint256 contribution,
        uint256 evalAccuracyBps);
    event Committed(uint256 indexed taskId, address indexed miner, uint256 index);
    event EvalRevealed(uint256 indexed taskId, uint256 ownerIndex, string evalCid);
    event DrawRequested(uint256 indexed taskId, uint256 snapshotBlock, uint256 seedBlock);
    event CommitteeDrawn(uint256 indexed taskId, address[] seats, bytes32 seed, uint256 revealEnd,
        uint256 scoreCommitEnd, uint256 scoreRevealEnd, uint256 appealEnd);
    event Revealed(uint256 indexed taskId, address indexed miner, uint256 index, string cid);
    event ScoresCommitted(uint256 indexed taskId, uint256 seat, address indexed verifier);
    event ScoresRevealed(uint256 indexed taskId, uint256 seat, address indexed verifier);
    event OwnerJudged(uint256 indexed taskId, uint256 ownerIndex, address indexed owner, Verdict verdict,
        uint256 ok, uint256 notOk);
    event Settled(uint256 indexed taskId, Stage stage, uint256 cursor);
    event SubmissionSettled(uint256 indexed taskId, uint256 indexed index, address indexed miner, int32 result,
        Status status, uint256 reward, uint256 bondReturned);
    event SeatSettled(uint256 indexed taskId, uint256 seat, address indexed verifier, uint256 agree,
        uint256 disagree, bool faulty, uint256 slashed);
    event Overturned(uint256 indexed taskId, uint256 indexed index, int32 result);
    event Burned(uint256 indexed taskId, uint256 amount, BurnReason reason);
    event Finalized(uint256 indexed taskId, uint256 funded, uint256 minersPaid, uint256 potPaid, uint256 ownersRefund,
        uint256 burned);
    event Credited(address indexed account, uint256 indexed taskId, uint256 amount);
    event Withdrawn(address indexed account, uint256 amount);

    // ------------------------------------------------------------------ errors
    error BadParams(string what);
    error UnknownTask(uint256 taskId);
    error WrongPhase(uint256 taskId, Phase expected, Phase actual);
    error NoBounty();
    error MinBond(uint256 required, uint256 given);
    error BadSeats(uint256 seats, uint256 seatsPerSubmission, uint256 minSeatsPerSubmission, uint256 maxSeats);
    error ToleranceTooHigh(uint256 max, uint256 given);
    error FeeTooHigh(uint256 max, uint256 given);
    error BadMinGain(int256 given);
    error BadWindow(uint256 index, uint256 duration, uint256 min, uint256 max);
    error BadAccuracy(uint256 given);
    error BadCid(uint256 length);
    error ZeroCommitment();
    error TooManyOwners(uint256 max);
    error AlreadyOwner(uint256 taskId, address owner);
    error ContributionTooLow(uint256 required, uint256 given);
    error NotOwner(uint256 taskId, uint256 ownerIndex, address caller);
    error EvalAlreadyRevealed(uint256 taskId, uint256 ownerIndex);
    error BadEvalReveal(uint256 taskId, uint256 ownerIndex);
    error WrongBond(uint256 required, uint256 given);
    error TooManySubmissions(uint256 max);
    error UnknownSubmission(uint256 taskId, uint256 index);
    error AlreadyRevealed(uint256 taskId, uint256 index);
    error BadReveal(uint256 taskId, uint256 index);
    error DuplicateCid(uint256 taskId, bytes32 cidHash);
    error DrawPending(uint256 taskId, uint256 lastBlock);
    error NoEligibleStake();
    error DrawNotRequested(uint256 taskId);
    error SeedNotReached(uint256 seedBlock);
    error DrawWindowMissed(uint256 lastBlock);
    error NotSeatHolder(uint256 taskId, uint256 seat, address caller);
    error ScoresAlreadyCommitted(uint256 taskId, uint256 seat);
    error ScoresNotCommitted(uint256 taskId, uint256 seat);
    error ScoresAlreadyRevealed(uint256 taskId, uint256 seat);
    error WrongScoreCount(uint256 expected, uint256 given);
    error BadScoreReveal(uint256 taskId, uint256 seat);
    error BadScore(int32 score);
    error BadVerdict(uint256 ownerIndex, int32 verdict);
    error ZeroItems();
    error NothingToWithdraw(address account);
    error TransferFailed(address to, uint256 amount);
    error NotRegistry(address sender);
    error NotAppeals(address sender);

    // ------------------------------------------------------------------ task owners
    /// @notice Create a task escrowing `msg.value` as bounty; the caller is owner 0.
    function createTask(string calldata specCid, bytes32 evalCommitment, uint16 evalAccuracyBps, uint256 minerBond,
        uint8 seats, uint8 seatsPerSubmission, int16 minGainBps, uint16 toleranceBps, uint16 feeBps,
        uint32[5] calldata windows) external payable returns (uint256 taskId);
    /// @notice Join a task as a co-owner during its commit window.
    function joinTask(uint256 taskId, bytes32 evalCommitment, uint16 evalAccuracyBps)
        external payable returns (uint256 ownerIndex);
    /// @notice Reveal an owner's eval set in the eval-reveal window.
    function revealEval(uint256 taskId, uint256 ownerIndex, string calldata evalCid, bytes32 salt) external;
    // ------------------------------------------------------------------ miners
    /// @notice Commit to a bundle CID, bonding `minerBond`.
    function commit(uint256 taskId, bytes32 commitment) external payable returns (uint256 index);
    /// @notice Reveal a committed CID in the reveal window (after the draw).
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external;
    /// @notice Take back a bond in a round that failed before its draw, proving the commitment.
    function reclaimBond(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external;
    // ------------------------------------------------------------------ committee
    /// @notice Fix the stake snapshot (first request) and the seed block of the committee draw.
    function requestDraw(uint256 taskId) external;
    /// @notice Draw the committee from the prevrandao of the block this call lands in.
    function drawCommittee(uint256 taskId) external;
    /// @notice Commit to a seat's vector.
    function commitScores(uint256 taskId, uint256 seat, bytes32 commitment) external;
    /// @notice Reveal a seat's committed vector.
    function revealScores(uint256 taskId, uint256 seat, int32[] calldata scores, bytes32 salt) external;
    // ------------------------------------------------------------------ settlement
    /// @notice Advance a task's settlement by at most `maxItems` items (the contract caps the work per call).
    function settle(uint256 taskId, uint256 maxItems) external;
    /// @notice Withdraw everything credited to the caller.
    function withdraw() external;

    // ------------------------------------------------------------------ appeals module hooks
    /// @notice Book an appeal deposit (appeals module only).
    function depositAppeal(uint256 taskId) external payable;
    /// @notice Credit (or burn, to == 0) part of the open appeal deposits (appeals module only).
    function payFromAppeal(uint256 taskId, address to, uint256 amount) external;
    /// @notice Slash a verifier for an appeal; `shareBps` of it to `beneficiary` (appeals module only).
    function slashForAppeal(uint256 taskId, address verifier, uint256 amount, address beneficiary,
        uint256 shareBps) external returns (uint256 taken);
    /// @notice Lock or unlock one appeal seat's stake (appeals module only).
    function lockForAppeal(address verifier, bool lock) external;
    /// @notice Close an appeal, with the result that overturns `index`'s if any (appeals module only).
    function closeAppeal(uint256 taskId, bool overturned, uint256 index, int32 result) external;

    // ------------------------------------------------------------------ views
    /// @notice The stake registry the market deployed.
    function registry() external view returns (IStakeRegistry);
    /// @notice The appeals module the market deployed.
    function appeals() external view returns (address);
    /// @notice The protocol parameters fixed at deployment.
    function params() external view returns (Params memory);
    /// @notice Number of tasks created (ids 1..taskCount).
    function taskCount() external view returns (uint256);
    /// @notice Wei an address can withdraw.
    function claimable(address account) external view returns (uint256);
    /// @notice Wei burned so far (kept in this contract forever).
    function burned() external view returns (uint256);
    /// @notice Whether keccak256(cid) was already revealed in a task.
    function cidUsed(uint256 taskId, bytes32 cidHash) external view returns (bool);
    /// @notice Where a task stands now.
    function phaseOf(uint256 taskId) external view returns (Phase);
    /// @notice A task's parameters, windows, draw state, bounty and escrow.
    function getTask(uint256 taskId) external view returns (Task memory);
    /// @notice A task's owners.
    function owners(uint256 taskId) external view returns (Owner[] memory);
    /// @notice One submission's raw slot.
    function submission(uint256 taskId, uint256 index) external view returns (Submission memory);
    /// @notice One committee seat.
    function seat(uint256 taskId, uint256 seatIndex) external view returns (Seat memory);
    /// @notice Word `word` of a seat's revealed vector (eight int32 per word).
    function scoreWord(uint256 taskId, uint256 seatIndex, uint256 word) external view returns (uint256);
    /// @notice A seat's score commitment (0 until committed).
    function scoreCommitment(uint256 taskId, uint256 seatIndex) external view returns (bytes32);
    /// @notice An appeal's result that replaced a submission's (overturned: false if none).
    function finalResult(uint256 taskId, uint256 index) external view returns (bool overturned, int32 result);
    /// @notice Settlement progress and totals.
    function getSettlement(uint256 taskId) external view returns (Settlement memory);

    // ------------------------------------------------------------------ constants
    /// @notice Wei slashed (and burned) per faulty seat, capped at the verifier's stake.
    function SEAT_SLASH() external view returns (uint256);
    /// @notice Least miner bond a task can ask for.
    function MIN_BOND() external view returns (uint256);
    /// @notice Most committee seats a task can have.
    function MAX_SEATS() external view returns (uint256);
    /// @notice Most seats per submission (r) a task can have.
    function MAX_SEATS_PER_SUBMISSION() external view returns (uint256);
    /// @notice Most submissions a task can have.
    function MAX_SUBMISSIONS() external view returns (uint256);
    /// @notice Most owners a task can have.
    function MAX_OWNERS() external view returns (uint256);
    /// @notice Largest score tolerance a task can set.
    function MAX_TOLERANCE_BPS() external view returns (uint256);
    /// @notice Largest verifiers' fee a task can set.
    function MAX_FEE_BPS() external view returns (uint256);
    /// @notice A co-owner contributes at least this much ...
    function CO_OWNER_MIN() external view returns (uint256);
    /// @notice ... and at least this share of the creator's contribution.
    function CO_OWNER_MIN_BPS() external view returns (uint256);
    /// @notice Blocks between a draw request and its seed block.
    function DRAW_DELAY_BLOCKS() external view returns (uint256);
    /// @notice Blocks after the seed block in which the draw may land (then a re-request).
    function DRAW_WINDOW_BLOCKS() external view returns (uint256);
}
