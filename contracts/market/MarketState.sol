// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {CoDreamAppeals} from "../CoDreamAppeals.sol";
import {StakeRegistry} from "../StakeRegistry.sol";
import {ICoDreamMarket} from "../interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "../interfaces/IStakeRegistry.sol";

/// @title MarketState: what CoDreamMarket stores and the helpers every part of it shares.
/// @notice Owns the protocol constants and the parameters fixed at deployment (docs/protocol-v3.md
/// §2, checked here), every storage variable of the market, the deployment of its StakeRegistry and
/// CoDreamAppeals, where a task stands (`phaseOf`), the raw views (§9) and the three ways wei
/// leaves a task's escrow: `_credit` (to `claimable`), `_burn` and `_burnSlash` (§6.4). The books:
/// balance == sum(claimable) + sum(task escrow) + burned (§1). The parts built on it:
/// MarketCommittee (the draw, the seats' vectors), MarketResults and MarketSettlement (§6), and
/// CoDreamMarket itself (tasks, owners, miners, appeal hooks, withdraw).
abstract contract MarketState is ICoDreamMarket, ReentrancyGuardTransient {
    // ------------------------------------------------------------------ constants
    uint256 public constant SEAT_SLASH = 0.02 ether; // per faulty seat, capped at the stake; burned
    uint256 public constant MIN_BOND = 0.001 ether;
    uint256 public constant MAX_TOLERANCE_BPS = 300;
    uint256 public constant MAX_FEE_BPS = 5000;
    uint256 public constant MAX_SUBMISSIONS = 4096;
    uint256 public constant MAX_SEATS = 64;
    uint256 public constant MAX_SEATS_PER_SUBMISSION = 31; // an appeal committee has 2r + 1 <= 63 seats
    uint256 public constant MAX_OWNERS = 8; // every owner verdict sits in a seat's first vector word
    uint256 public constant MAX_CID_LENGTH = 128;
    uint256 public constant CO_OWNER_MIN = 0.01 ether;
    uint256 public constant CO_OWNER_MIN_BPS = 1000; // of the creator's contribution
    uint256 public constant DRAW_DELAY_BLOCKS = 2;
    uint256 public constant DRAW_WINDOW_BLOCKS = 32;
    /// work per settle call, in units (see _unitCost): every call stays far below a block's gas
    uint256 public constant SETTLE_UNITS = 2400;
    uint256 internal constant BPS = 10_000;

    // ------------------------------------------------------------------ parameters (immutable)
    uint32 internal immutable _minWindow;
    uint32 internal immutable _maxCommitWindow;
    uint32 internal immutable _maxEvalWindow;
    uint32 internal immutable _maxLockWindow;
    uint32 internal immutable _secondsPerBundle;
    uint32 internal immutable _drawTimeout;
    uint32 internal immutable _appealWindow;
    uint32 internal immutable _appealScoreWindow;
    uint32 internal immutable _warmup;
    uint32 internal immutable _unbondingDelay;
    uint8 internal immutable _minR;

    // ------------------------------------------------------------------ state
    /// @notice holds verifier stakes; deployed here, only this contract locks and slashes
    IStakeRegistry public immutable registry;
    /// @notice the appeals module (deployed here): the only caller of the appeal hooks
    address public immutable appeals;
    uint256 public taskCount;
    /// @notice wei burned so far: faulty owners' contributions, faulty seats' slashes, forfeits no
    /// seat earned, rounding dust. It never leaves this contract.
    uint256 public burned;
    mapping(uint256 => Task) internal _tasks;
    mapping(uint256 => Owner[]) internal _owners;
    mapping(uint256 => mapping(uint256 => Submission)) internal _submissions; // task => index
    /// @notice keccak256(cid) already revealed in a task
    mapping(uint256 => mapping(bytes32 => bool)) public cidUsed;
    mapping(uint256 => mapping(uint256 => Seat)) internal _seats; // task => seat
    mapping(uint256 => mapping(uint256 => bytes32)) internal _scoreCommitments; // task => seat
    /// revealed vectors, eight int32 per word: task => (seat << 32 | word)
    mapping(uint256 => mapping(uint256 => uint256)) internal _scoreWords;
    /// an overturning appeal's result: task => index => (1 << 32 | uint32(result)), 0 if none
    mapping(uint256 => mapping(uint256 => uint256)) internal _finalResults;
    mapping(uint256 => Settlement) internal _settlements;
    /// @notice wei each address can withdraw now (pull payments)
    mapping(address => uint256) public claimable;

    /// @param p the protocol parameters (docs/protocol-v3.md §2); checked for consistency here, then
    /// the registry and the appeals module are deployed with them
    constructor(Params memory p) {
        _checkParams(p);
        (_minWindow, _maxCommitWindow, _maxEvalWindow, _maxLockWindow) =
            (p.minWindow, p.maxCommitWindow, p.maxEvalWindow, p.maxLockWindow);
        (_secondsPerBundle, _drawTimeout, _appealWindow, _appealScoreWindow) =
            (p.secondsPerBundle, p.drawTimeout, p.appealWindow, p.appealScoreWindow);
        (_warmup, _unbondingDelay, _minR) = (p.warmup, p.unbondingDelay, p.minSeatsPerSubmission);
        IStakeRegistry reg = new StakeRegistry(address(this), p.warmup, p.unbondingDelay);
        registry = reg;
        appeals = address(new CoDreamAppeals(this, reg, p.minWindow, p.drawTimeout, p.appealScoreWindow));
    }

    // ------------------------------------------------------------------ views
    /// @notice Where a task stands now (see `Phase`).
    function phaseOf(uint256 taskId) public view returns (Phase) {
        Task storage t = _tasks[taskId];
        uint256 commitEnd = t.commitEnd;
        if (commitEnd == 0) return Phase.None;
        Stage stage = _settlements[taskId].stage;
        if (stage == Stage.Finalized) return Phase.Finalized;
        if (stage != Stage.None) return Phase.Settling;
        uint256 now_ = block.timestamp;
        if (now_ <= commitEnd) return Phase.Commit;
        if (t.revealEnd == 0) { // no committee yet
            if (t.submissionCount == 0) return Phase.AwaitingSettlement; // nothing to judge: a refund
            if (now_ <= t.evalRevealEnd && t.ownersRevealed < t.ownerCount) return Phase.EvalReveal;
            if (t.ownersRevealed == 0) return Phase.AwaitingSettlement; // no eval set: failed round
            if (now_ <= uint256(t.evalRevealEnd) + _drawTimeout) return Phase.AwaitingDraw;
            return Phase.AwaitingSettlement; // no committee in time: failed round
        }
        if (now_ <= t.revealEnd) return Phase.Reveal;
        if (now_ <= t.scoreCommitEnd) return Phase.ScoreCommit;
        if (now_ <= t.scoreRevealEnd) return Phase.ScoreReveal;
        if (now_ <= t.appealEnd || t.openAppeals != 0) return Phase.Appeal;
        return Phase.AwaitingSettlement;
    }

    /// @notice The protocol parameters fixed at deployment.
    function params() external view returns (Params memory) {
        return Params(_minWindow, _maxCommitWindow, _maxEvalWindow, _maxLockWindow, _secondsPerBundle, _drawTimeout,
            _appealWindow, _appealScoreWindow, _warmup, _unbondingDelay, _minR);
    }

    /// @notice A task's parameters, windows, draw state, bounty and escrow.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    /// @notice The task's owners: address, contribution, eval commitment, whether revealed,
    /// declared accuracy, verdict.
    function owners(uint256 taskId) external view returns (Owner[] memory) {
        return _owners[taskId];
    }

    /// @notice One submission's slot (CoDreamLens pages through them).
    function submission(uint256 taskId, uint256 index) external view returns (Submission memory) {
        return _submissions[taskId][index];
    }

    /// @notice One committee seat: verifier, revealed, agree / disagree (final after settlement).
    function seat(uint256 taskId, uint256 seatIndex) external view returns (Seat memory) {
        return _seats[taskId][seatIndex];
    }

    /// @notice Word `word` of seat `seatIndex`'s revealed vector (eight int32 per word).
    function scoreWord(uint256 taskId, uint256 seatIndex, uint256 word) external view returns (uint256) {
        return _scoreWords[taskId][(seatIndex << 32) | word];
    }

    /// @notice The score commitment of a seat (0 until committed).
    function scoreCommitment(uint256 taskId, uint256 seatIndex) external view returns (bytes32) {
        return _scoreCommitments[taskId][seatIndex];
    }

    /// @notice The appeal result that replaced submission `index`'s, if an appeal overturned it.
    function finalResult(uint256 taskId, uint256 index) external view returns (bool overturned, int32 result) {
        uint256 fin = _finalResults[taskId][index];
        return (fin != 0, int32(uint32(fin)));
    }

    /// @notice Settlement progress and totals.
    function getSettlement(uint256 taskId) external view returns (Settlement memory) {
        return _settlements[taskId];
    }

    // ------------------------------------------------------------------ helpers
    function _task(uint256 taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.commitEnd == 0) revert UnknownTask(taskId);
    }

    function _checkCid(string calldata cid) internal pure {
        uint256 len = bytes(cid).length;
        if (len == 0 || len > MAX_CID_LENGTH) revert BadCid(len);
    }

    /// @dev the parameters hold together: every window at least minWindow; warm-up longer than a
    /// task's whole span from creation to its last appeal draw (so no stake can arrive in time
    /// for a task it has seen); unbonding longer than a snapshot's age at its draw
    function _checkParams(Params memory p) private pure {
        if (p.minWindow == 0 || p.maxCommitWindow < p.minWindow || p.maxEvalWindow < p.minWindow
            || p.maxLockWindow < p.minWindow || p.drawTimeout < p.minWindow || p.appealWindow < p.minWindow
            || p.appealScoreWindow < p.minWindow) revert BadParams("windows below minWindow");
        if (p.minSeatsPerSubmission % 2 == 0 || p.minSeatsPerSubmission > MAX_SEATS_PER_SUBMISSION) {
            revert BadParams("minSeatsPerSubmission");
        }
        uint256 scoreCommit = uint256(p.minWindow) + uint256(p.secondsPerBundle) * MAX_SUBMISSIONS;
        if (scoreCommit < p.maxLockWindow) scoreCommit = p.maxLockWindow;
        uint256 span = uint256(p.maxCommitWindow) + p.maxEvalWindow + p.drawTimeout + p.maxLockWindow + scoreCommit
            + p.maxLockWindow + p.appealWindow + p.drawTimeout;
        if (p.warmup <= span) revert BadParams("warmup <= a task's span");
        if (p.unbondingDelay <= uint256(p.maxEvalWindow) + p.drawTimeout) revert BadParams("unbondingDelay");
    }

    /// @dev a revealed submission's slot after settlement: the miner, then the result
    function _settledData(address miner, int32 m) internal pure returns (bytes24) {
        return bytes24(bytes20(miner)) | bytes24(uint192(uint32(m)));
    }

    function _credit(address to, uint256 taskId, uint256 amount) internal {
        if (amount == 0) return;
        claimable[to] += amount;
        _tasks[taskId].escrow -= uint96(amount);
        emit Credited(to, taskId, amount);
    }

    /// @dev burns escrowed wei of a task
    function _burn(uint256 taskId, Task storage t, Settlement storage st, uint256 amount, BurnReason why) internal {
        if (amount == 0) return;
        t.escrow -= uint96(amount);
        _burnSlash(taskId, st, amount, why);
    }

    /// @dev books wei as burned (slashed stake arrives from the registry, outside any escrow)
    function _burnSlash(uint256 taskId, Settlement storage st, uint256 amount, BurnReason why) internal {
        if (amount == 0) return;
        burned += amount;
        st.burned += uint128(amount);
        emit Burned(taskId, amount, why);
    }
}
