// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CoDreamAppeals} from "./CoDreamAppeals.sol";
import {StakeRegistry} from "./StakeRegistry.sol";
import {ICoDreamMarket} from "./interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "./interfaces/IStakeRegistry.sol";
import {Rules} from "./libraries/Rules.sol";
import {Scores} from "./libraries/Scores.sol";

/// @title CoDreamMarket: co-owned tasks with checked eval sets, commit-reveal mining, committees
/// drawn from RANDAO before any bundle is public, sharded verification, appeals, batched
/// settlement, pull payments.
/// @notice Protocol v3 (docs/protocol-v3.md). Money moves only on a judgement: whatever no
/// judgement assigns goes back to the owners who did their part, or is burned. Amounts are
/// native ETH; every payout is credited to `claimable` and pulled with `withdraw`. Burned wei
/// stays in this contract forever, counted in `burned`, so the books always read
/// balance == sum(claimable) + sum(task escrow) + burned (forge invariant). A finalized task's
/// escrow is 0, except for a round that failed before its draw: there it holds the bonds its
/// committers have not reclaimed yet (`reclaimBond`). Verifier stakes live in the StakeRegistry,
/// appeals in CoDreamAppeals; both are deployed here. Read-heavy views are in CoDreamLens.
contract CoDreamMarket is ICoDreamMarket, ReentrancyGuardTransient {
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
    uint256 private constant BPS = 10_000;

    // ------------------------------------------------------------------ parameters (immutable)
    uint32 private immutable _minWindow;
    uint32 private immutable _maxCommitWindow;
    uint32 private immutable _maxEvalWindow;
    uint32 private immutable _maxLockWindow;
    uint32 private immutable _secondsPerBundle;
    uint32 private immutable _drawTimeout;
    uint32 private immutable _appealWindow;
    uint32 private immutable _appealScoreWindow;
    uint32 private immutable _warmup;
    uint32 private immutable _unbondingDelay;
    uint8 private immutable _minR;

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

    modifier onlyAppeals() {
        if (msg.sender != appeals) revert NotAppeals(msg.sender);
        _;
    }

    /// @param p the protocol parameters (docs/protocol-v3.md §2); checked for consistency here
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

    /// @notice Accepts slashed stake from the registry only (booked by the slashing call).
    receive() external payable {
        if (msg.sender != address(registry)) revert NotRegistry(msg.sender);
    }

    // ------------------------------------------------------------------ task owners
    /// @notice Create a task escrowing `msg.value` as bounty; the caller is owner 0.
    /// @param specCid IPFS CID of the task spec (1..128 bytes)
    /// @param evalCommitment keccak256(abi.encode(evalCid, salt)) of the caller's eval set
    /// @param evalAccuracyBps the caller's declared accuracy of the spec's teacher ensemble on
    /// that eval set, in (0, 10000]; verifiers check it at the eval reveal
    /// @param minerBond wei each commit bonds (>= MIN_BOND)
    /// @param seats committee seats K (r..MAX_SEATS)
    /// @param seatsPerSubmission seats r scoring each submission: odd, in [minSeatsPerSubmission, 31]
    /// @param minGainBps least result that earns a reward, in [-10000, 10000]
    /// @param toleranceBps how far a score may be from the result and still agree (<= 300)
    /// @param feeBps share of the funded bounty that goes to the verifier pot (<= 5000)
    /// @param windows [commit, evalReveal, reveal, scoreCommit, scoreReveal] in seconds, each at
    /// least minWindow; commit <= maxCommitWindow, evalReveal <= maxEvalWindow, the three others
    /// (they lock verifier stake) <= maxLockWindow
    function createTask(string calldata specCid, bytes32 evalCommitment, uint16 evalAccuracyBps, uint256 minerBond,
        uint8 seats, uint8 seatsPerSubmission, int16 minGainBps, uint16 toleranceBps, uint16 feeBps,
        uint32[5] calldata windows) external payable returns (uint256 taskId)
    {
        if (msg.value == 0) revert NoBounty();
        if (minerBond < MIN_BOND) revert MinBond(MIN_BOND, minerBond);
        if (seatsPerSubmission % 2 == 0 || seatsPerSubmission < _minR || seatsPerSubmission > MAX_SEATS_PER_SUBMISSION
            || seatsPerSubmission > seats || seats > MAX_SEATS) {
            revert BadSeats(seats, seatsPerSubmission, _minR, MAX_SEATS);
        }
        if (toleranceBps > MAX_TOLERANCE_BPS) revert ToleranceTooHigh(MAX_TOLERANCE_BPS, toleranceBps);
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(MAX_FEE_BPS, feeBps);
        if (minGainBps < -Scores.MAX_GAIN || minGainBps > Scores.MAX_GAIN) revert BadMinGain(minGainBps);
        _checkOwnerInputs(evalCommitment, evalAccuracyBps);
        _checkCid(specCid);
        _checkWindows(windows);
        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        uint256 commitEnd = block.timestamp + windows[0];
        t.escrow = SafeCast.toUint96(msg.value);
        t.minerBond = SafeCast.toUint72(minerBond);
        t.commitEnd = SafeCast.toUint32(commitEnd);
        t.ownerCount = 1;
        t.evalRevealEnd = SafeCast.toUint32(commitEnd + windows[1]);
        t.seats = seats;
        t.seatsPerSubmission = seatsPerSubmission;
        t.minGainBps = minGainBps;
        t.toleranceBps = toleranceBps;
        t.feeBps = feeBps;
        (t.revealWindow, t.scoreCommitWindow, t.scoreRevealWindow) = (windows[2], windows[3], windows[4]);
        t.bounty = uint96(msg.value);
        t.specCid = specCid;
        _owners[taskId].push(Owner(msg.sender, uint96(msg.value), evalCommitment, false, evalAccuracyBps, Verdict.None));
        emit TaskCreated(taskId, msg.sender, specCid, msg.value, minerBond, seats, seatsPerSubmission, evalAccuracyBps);
    }

    /// @notice Join a task as a co-owner during its commit window: `msg.value` (at least
    /// CO_OWNER_MIN and CO_OWNER_MIN_BPS of the creator's contribution) adds to the bounty and
    /// `evalCommitment` commits to the caller's own eval set, of declared accuracy `evalAccuracyBps`.
    /// @return ownerIndex the caller's index for `revealEval`
    function joinTask(uint256 taskId, bytes32 evalCommitment, uint16 evalAccuracyBps)
        external payable returns (uint256 ownerIndex)
    {
        Task storage t = _task(taskId);
        if (block.timestamp > t.commitEnd) revert WrongPhase(taskId, Phase.Commit, phaseOf(taskId));
        _checkOwnerInputs(evalCommitment, evalAccuracyBps);
        Owner[] storage owners_ = _owners[taskId];
        uint256 least = owners_[0].contribution * CO_OWNER_MIN_BPS / BPS;
        if (least < CO_OWNER_MIN) least = CO_OWNER_MIN;
        if (msg.value < least) revert ContributionTooLow(least, msg.value);
        ownerIndex = owners_.length;
        if (ownerIndex >= MAX_OWNERS) revert TooManyOwners(MAX_OWNERS);
        for (uint256 i; i < ownerIndex; ++i) {
            if (owners_[i].addr == msg.sender) revert AlreadyOwner(taskId, msg.sender);
        }
        owners_.push(Owner(msg.sender, SafeCast.toUint96(msg.value), evalCommitment, false, evalAccuracyBps,
            Verdict.None));
        t.ownerCount = uint8(ownerIndex + 1);
        t.bounty = SafeCast.toUint96(t.bounty + msg.value);
        t.escrow = SafeCast.toUint96(t.escrow + msg.value);
        emit TaskJoined(taskId, msg.sender, ownerIndex, msg.value, evalAccuracyBps);
    }

    /// @notice Reveal owner `ownerIndex`'s eval set in the eval-reveal window, right after the
    /// commit window: every CID is committed by then, so no miner can fit its dreams to it, and
    /// no bundle is public yet. An owner who does not reveal in the window is faulty.
    function revealEval(uint256 taskId, uint256 ownerIndex, string calldata evalCid, bytes32 salt) external {
        Task storage t = _task(taskId);
        Phase p = phaseOf(taskId);
        if (p != Phase.EvalReveal) revert WrongPhase(taskId, Phase.EvalReveal, p);
        Owner[] storage owners_ = _owners[taskId];
        if (ownerIndex >= owners_.length || owners_[ownerIndex].addr != msg.sender) {
            revert NotOwner(taskId, ownerIndex, msg.sender);
        }
        Owner storage o = owners_[ownerIndex];
        if (o.revealed) revert EvalAlreadyRevealed(taskId, ownerIndex);
        _checkCid(evalCid);
        if (keccak256(abi.encode(evalCid, salt)) != o.evalCommitment) revert BadEvalReveal(taskId, ownerIndex);
        o.revealed = true;
        t.ownersRevealed += 1;
        emit EvalRevealed(taskId, ownerIndex, evalCid);
    }

    // ------------------------------------------------------------------ miners
    /// @notice Commit to a bundle CID, bonding exactly `minerBond`, in the commit window.
    /// commitment = keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this))).
    /// @return index the submission's index (also in `Committed`); reveal with it
    function commit(uint256 taskId, bytes32 commitment) external payable returns (uint256 index) {
        Task storage t = _tasks[taskId];
        uint256 commitEnd = t.commitEnd;
        if (commitEnd == 0) revert UnknownTask(taskId);
        if (block.timestamp > commitEnd) revert WrongPhase(taskId, Phase.Commit, phaseOf(taskId));
        if (msg.value != t.minerBond) revert WrongBond(t.minerBond, msg.value);
        index = t.submissionCount;
        if (index >= MAX_SUBMISSIONS) revert TooManySubmissions(MAX_SUBMISSIONS);
        t.submissionCount = uint16(index + 1);
        t.escrow += uint96(msg.value); // bounded: escrow was checked at creation, bonds are uint72 x 4096
        _submissions[taskId][index] = Submission(bytes24(commitment), uint56(block.number), Status.Committed);
        emit Committed(taskId, msg.sender, index);
    }

    /// @notice Reveal the CID committed at `index`: only in the reveal window, which opens when the
    /// committee is drawn (after the commit and eval windows), by the committer, each CID once.
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external {
        Task storage t = _tasks[taskId];
        if (block.timestamp > t.revealEnd) { // also before the draw: revealEnd is 0 until then
            if (t.commitEnd == 0) revert UnknownTask(taskId);
            revert WrongPhase(taskId, Phase.Reveal, phaseOf(taskId));
        }
        Submission storage s = _submissions[taskId][index];
        Submission memory sub = s;
        if (sub.commitBlock == 0) revert UnknownSubmission(taskId, index);
        if (sub.status != Status.Committed) revert AlreadyRevealed(taskId, index);
        _checkCid(cid);
        bytes32 expected = keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this)));
        if (bytes24(expected) != sub.data) revert BadReveal(taskId, index);
        bytes32 key = keccak256(bytes(cid));
        mapping(bytes32 => bool) storage used = cidUsed[taskId];
        if (used[key]) revert DuplicateCid(taskId, key);
        used[key] = true;
        s.data = bytes24(bytes20(msg.sender));
        s.status = Status.Revealed;
        emit Revealed(taskId, msg.sender, index, cid);
    }

    /// @notice In a round that failed before its draw (nobody revealed a bundle), take back the
    /// bond of submission `index` by proving its commitment (the CID need not be published).
    function reclaimBond(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external {
        Task storage t = _task(taskId);
        Settlement storage st = _settlements[taskId];
        if (st.stage != Stage.Finalized || !st.failed) revert WrongPhase(taskId, Phase.Finalized, phaseOf(taskId));
        Submission storage s = _submissions[taskId][index];
        if (s.commitBlock == 0) revert UnknownSubmission(taskId, index);
        if (s.status != Status.Committed) revert AlreadyRevealed(taskId, index);
        bytes32 expected = keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this)));
        if (bytes24(expected) != s.data) revert BadReveal(taskId, index);
        s.data = _settledData(msg.sender, Scores.NO_EVAL);
        s.status = Status.Unresolved; // unjudged: bond back, nothing else
        uint256 bond = t.minerBond;
        _credit(msg.sender, taskId, bond);
        emit SubmissionSettled(taskId, index, msg.sender, Scores.NO_EVAL, Status.Unresolved, 0, bond);
    }

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
        uint256 to = from + n < end ? from + n : end;
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
    function _results(uint256 taskId, Task storage t, Settlement storage st, uint256 from, uint256 to) private {
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

    // ------------------------------------------------------------------ appeals module hooks
    /// @notice Book an appeal deposit (appeals module only, in the appeal window).
    function depositAppeal(uint256 taskId) external payable onlyAppeals {
        Task storage t = _task(taskId);
        if (phaseOf(taskId) != Phase.Appeal || block.timestamp > t.appealEnd) {
            revert WrongPhase(taskId, Phase.Appeal, phaseOf(taskId));
        }
        t.escrow += SafeCast.toUint96(msg.value);
        t.appealDeposits += SafeCast.toUint96(msg.value);
        t.openAppeals += 1;
        t.appealCount += 1;
    }

    /// @notice Credit `amount` of the task's open appeal deposits to `to`, or burn it if `to` is
    /// the zero address (rounding dust) (appeals module only).
    function payFromAppeal(uint256 taskId, address to, uint256 amount) external onlyAppeals {
        Task storage t = _task(taskId);
        t.appealDeposits -= SafeCast.toUint96(amount);
        if (to == address(0)) _burn(taskId, t, _settlements[taskId], amount, BurnReason.Dust);
        else _credit(to, taskId, amount);
    }

    /// @notice Slash `verifier` by `amount` for an appeal (appeals module only): `shareBps` of what
    /// is taken is credited to `beneficiary` (an appellant), the rest burned.
    function slashForAppeal(uint256 taskId, address verifier, uint256 amount, address beneficiary, uint256 shareBps)
        external onlyAppeals returns (uint256 taken)
    {
        _task(taskId);
        taken = registry.slash(verifier, amount);
        uint256 share = taken * shareBps / BPS;
        if (share != 0) {
            claimable[beneficiary] += share;
            emit Credited(beneficiary, taskId, share);
        }
        _burnSlash(taskId, _settlements[taskId], taken - share,
            shareBps == 0 ? BurnReason.SeatSlash : BurnReason.OverturnSlash);
    }

    /// @notice Lock (or unlock) one appeal seat of `verifier` (appeals module only).
    function lockForAppeal(address verifier, bool lock) external onlyAppeals {
        if (lock) registry.lock(verifier, 1);
        else registry.unlock(verifier, 1);
    }

    /// @notice An appeal is resolved; if it overturned submission `index`'s result, settlement uses
    /// `result` instead. Settlement no longer waits for it (appeals module only).
    function closeAppeal(uint256 taskId, bool overturned, uint256 index, int32 result) external onlyAppeals {
        _task(taskId).openAppeals -= 1;
        if (overturned) {
            _finalResults[taskId][index] = (1 << 32) | uint256(uint32(result));
            emit Overturned(taskId, index, result);
        }
    }

    // ------------------------------------------------------------------ withdraw
    /// @notice Withdraw everything credited to the caller (checks, effects, then the transfer).
    function withdraw() external nonReentrant {
        uint256 amount = claimable[msg.sender];
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        claimable[msg.sender] = 0;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed(msg.sender, amount);
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
    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.commitEnd == 0) revert UnknownTask(taskId);
    }

    function _holder(uint256 taskId, uint256 seat_) private view returns (Seat storage st) {
        st = _seats[taskId][seat_];
        if (seat_ >= _tasks[taskId].seats || st.verifier != msg.sender) revert NotSeatHolder(taskId, seat_, msg.sender);
    }

    function _checkCid(string calldata cid) private pure {
        uint256 len = bytes(cid).length;
        if (len == 0 || len > MAX_CID_LENGTH) revert BadCid(len);
    }

    function _checkOwnerInputs(bytes32 evalCommitment, uint16 evalAccuracyBps) private pure {
        if (evalCommitment == bytes32(0)) revert ZeroCommitment();
        if (evalAccuracyBps == 0 || evalAccuracyBps > BPS) revert BadAccuracy(evalAccuracyBps);
    }

    function _checkWindows(uint32[5] calldata w) private view {
        uint256[5] memory max = [uint256(_maxCommitWindow), _maxEvalWindow, _maxLockWindow, _maxLockWindow,
            _maxLockWindow];
        for (uint256 i; i < 5; ++i) {
            if (w[i] < _minWindow || w[i] > max[i]) revert BadWindow(i, w[i], _minWindow, max[i]);
        }
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

    /// @dev a revealed submission's slot after settlement: the miner, then the result
    function _settledData(address miner, int32 m) private pure returns (bytes24) {
        return bytes24(bytes20(miner)) | bytes24(uint192(uint32(m)));
    }

    function _credit(address to, uint256 taskId, uint256 amount) private {
        if (amount == 0) return;
        claimable[to] += amount;
        _tasks[taskId].escrow -= uint96(amount);
        emit Credited(to, taskId, amount);
    }

    /// @dev burns escrowed wei of a task
    function _burn(uint256 taskId, Task storage t, Settlement storage st, uint256 amount, BurnReason why) private {
        if (amount == 0) return;
        t.escrow -= uint96(amount);
        _burnSlash(taskId, st, amount, why);
    }

    /// @dev books wei as burned (slashed stake arrives from the registry, outside any escrow)
    function _burnSlash(uint256 taskId, Settlement storage st, uint256 amount, BurnReason why) private {
        if (amount == 0) return;
        burned += amount;
        st.burned += uint128(amount);
        emit Burned(taskId, amount, why);
    }
}
