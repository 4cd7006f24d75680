// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {StakeRegistry} from "./StakeRegistry.sol";
import {ICoDreamMarket} from "./interfaces/ICoDreamMarket.sol";
import {Scores} from "./libraries/Scores.sol";

/// @title CoDreamMarket: co-owned tasks, commit-reveal mining, sharded verification by
/// stake-drawn committees, batched settlement, pull payments.
/// @notice Protocol v2 (spec/protocol-v2.md). Amounts are native ETH. Every payout is credited to
/// `claimable` and pulled with `withdraw`. The contract's balance always equals
/// sum(claimable) + sum(task escrow) (forge invariant); a task's escrow is its bounty, the bonds of
/// its submissions not yet paid out and the verifier pot not yet paid, and is 0 once finalized.
/// Verifier stakes live in the StakeRegistry this contract deploys.
contract CoDreamMarket is ICoDreamMarket, ReentrancyGuardTransient {
    // ------------------------------------------------------------------ constants
    uint256 public constant SEAT_SLASH = 0.02 ether; // per faulty seat, capped at the stake
    uint256 public constant SNAPSHOT_TTL = 1 days; // a re-requested draw reuses the first snapshot
    uint256 public constant DRAW_DELAY_BLOCKS = 2; // seed block = request block + 2
    uint256 public constant DRAW_TIMEOUT = 7 days; // after the eval-reveal deadline
    uint256 public constant MIN_BOND = 0.001 ether;
    uint256 public constant BELOW_MIN_FORFEIT_BPS = 5000;
    uint256 public constant MAX_TOLERANCE_BPS = 300;
    uint256 public constant MAX_FEE_BPS = 5000;
    uint256 public constant MAX_WINDOW = 30 days;
    uint256 public constant MAX_SUBMISSIONS = 4096;
    uint256 public constant MAX_SEATS = 64;
    uint256 public constant MAX_OWNERS = 8;
    uint256 public constant MAX_CID_LENGTH = 128;
    int32 public constant INVALID = Scores.INVALID;
    int32 public constant NO_EVAL = Scores.NO_EVAL;
    uint256 private constant BPS = 10_000;

    /// One slot per submission. Until the reveal `data` holds the first 24 bytes of the
    /// commitment; the reveal writes the miner's address in its first 20 bytes and settlement
    /// its result (int32) in the last 4. The CID lives in the `Revealed` event.
    struct Submission {
        bytes24 data;
        uint56 commitBlock;
        Status status;
    }

    /// One slot per committee seat; the score commitment and vector are stored apart.
    struct Seat {
        address verifier;
        bool revealed;
        uint32 agree; // resolved submissions where this seat's score supported the result
        uint32 disagree; // resolved submissions where it did not
    }

    // ------------------------------------------------------------------ state
    /// @notice holds verifier stakes; deployed by this contract, which alone locks and slashes
    StakeRegistry public immutable registry;
    uint256 public taskCount;
    mapping(uint256 => Task) internal _tasks;
    mapping(uint256 => Owner[]) internal _owners;
    mapping(uint256 => mapping(uint256 => Submission)) internal _submissions; // task => index
    /// @notice keccak256(cid) already revealed in a task
    mapping(uint256 => mapping(bytes32 => bool)) public cidUsed;
    mapping(uint256 => mapping(uint256 => Seat)) internal _seats; // task => seat
    mapping(uint256 => mapping(uint256 => bytes32)) internal _scoreCommitments; // task => seat
    /// revealed score vectors, eight int32 per word: task => (seat << 32 | word)
    mapping(uint256 => mapping(uint256 => uint256)) internal _scoreWords;
    mapping(uint256 => Settlement) internal _settlements;
    /// @notice wei each address can withdraw now (pull payments)
    mapping(address => uint256) public claimable;

    constructor() {
        registry = new StakeRegistry(address(this));
    }

    /// @notice Accepts slashed stake from the registry only (booked by `settle` to its task).
    receive() external payable {
        if (msg.sender != address(registry)) revert NotRegistry(msg.sender);
    }

    // ------------------------------------------------------------------ task owners
    /// @notice Create a task escrowing `msg.value` as bounty; the caller is owner 0.
    /// @param specCid IPFS CID of the task spec (1..128 bytes)
    /// @param evalCommitment keccak256(abi.encode(evalCid, salt)) of the caller's eval set
    /// @param minerBond wei each commit bonds (>= MIN_BOND)
    /// @param seats committee seats K (1..MAX_SEATS)
    /// @param seatsPerSubmission seats r scoring each submission (1..K)
    /// @param minGainBps least median gain that earns a reward, in [-10000, 10000]
    /// @param toleranceBps how far a score may be from the result and still agree (<= MAX_TOLERANCE_BPS)
    /// @param feeBps share of the bounty that goes to the verifier pot (<= MAX_FEE_BPS)
    /// @param windows [commit, reveal, evalReveal, scoreCommit, scoreReveal] in seconds, each in [1, MAX_WINDOW]
    function createTask(string calldata specCid, bytes32 evalCommitment, uint256 minerBond, uint8 seats,
        uint8 seatsPerSubmission, int16 minGainBps, uint16 toleranceBps, uint16 feeBps, uint32[5] calldata windows)
        external payable returns (uint256 taskId)
    {
        if (msg.value == 0) revert NoBounty();
        if (minerBond < MIN_BOND) revert MinBond(MIN_BOND, minerBond);
        if (seatsPerSubmission == 0 || seatsPerSubmission > seats || seats > MAX_SEATS) {
            revert BadSeats(seats, seatsPerSubmission, MAX_SEATS);
        }
        if (toleranceBps > MAX_TOLERANCE_BPS) revert ToleranceTooHigh(MAX_TOLERANCE_BPS, toleranceBps);
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(MAX_FEE_BPS, feeBps);
        if (minGainBps < -Scores.MAX_GAIN || minGainBps > Scores.MAX_GAIN) revert BadMinGain(minGainBps);
        _checkCid(specCid);
        if (evalCommitment == bytes32(0)) revert ZeroCommitment();
        for (uint256 i; i < 5; ++i) {
            if (windows[i] == 0 || windows[i] > MAX_WINDOW) revert BadWindow(i, windows[i]);
        }
        taskId = ++taskCount;
        Task storage t = _tasks[taskId];
        uint256 commitEnd = block.timestamp + windows[0];
        t.escrow = SafeCast.toUint96(msg.value);
        t.minerBond = SafeCast.toUint72(minerBond);
        t.commitEnd = SafeCast.toUint32(commitEnd);
        t.revealEnd = SafeCast.toUint32(commitEnd + windows[1]);
        t.evalRevealEnd = SafeCast.toUint32(commitEnd + windows[1] + windows[2]);
        t.ownerCount = 1;
        t.seats = seats;
        t.seatsPerSubmission = seatsPerSubmission;
        t.minGainBps = minGainBps;
        t.toleranceBps = toleranceBps;
        t.feeBps = feeBps;
        t.scoreCommitWindow = windows[3];
        t.scoreRevealWindow = windows[4];
        t.bounty = uint96(msg.value);
        t.specCid = specCid;
        _owners[taskId].push(Owner(msg.sender, uint96(msg.value), evalCommitment, false));
        emit TaskCreated(taskId, msg.sender, specCid, msg.value, minerBond, seats, seatsPerSubmission);
    }

    /// @notice Join a task as a co-owner during its commit window: `msg.value` adds to the bounty
    /// and `evalCommitment` commits to the caller's own eval set (revealed like owner 0's).
    /// @return ownerIndex the caller's index for `revealEval`
    function joinTask(uint256 taskId, bytes32 evalCommitment) external payable returns (uint256 ownerIndex) {
        Task storage t = _task(taskId);
        if (block.timestamp > t.commitEnd) revert WrongPhase(taskId, Phase.Commit, phaseOf(taskId));
        if (msg.value == 0) revert NoBounty();
        if (evalCommitment == bytes32(0)) revert ZeroCommitment();
        Owner[] storage owners_ = _owners[taskId];
        ownerIndex = owners_.length;
        if (ownerIndex >= MAX_OWNERS) revert TooManyOwners(MAX_OWNERS);
        for (uint256 i; i < ownerIndex; ++i) {
            if (owners_[i].addr == msg.sender) revert AlreadyOwner(taskId, msg.sender);
        }
        owners_.push(Owner(msg.sender, SafeCast.toUint96(msg.value), evalCommitment, false));
        t.ownerCount = uint8(ownerIndex + 1);
        t.bounty = SafeCast.toUint96(t.bounty + msg.value);
        t.escrow = SafeCast.toUint96(t.escrow + msg.value);
        emit TaskJoined(taskId, msg.sender, ownerIndex, msg.value);
    }

    /// @notice Reveal owner `ownerIndex`'s eval set after the miners' reveal window, until the
    /// eval-reveal deadline. Verifiers score on the union of all revealed eval sets.
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

    /// @notice Reveal the CID committed at `index`: only in the reveal window (after the commit
    /// window), never in the commit's block, by the committer, each CID once per task.
    function reveal(uint256 taskId, uint256 index, string calldata cid, bytes32 salt) external {
        Task storage t = _tasks[taskId];
        (uint256 commitEnd, uint256 revealEnd, bool anyRevealed) = (t.commitEnd, t.revealEnd, t.anyRevealed);
        if (block.timestamp <= commitEnd || block.timestamp > revealEnd) {
            if (commitEnd == 0) revert UnknownTask(taskId);
            revert WrongPhase(taskId, Phase.Reveal, phaseOf(taskId));
        }
        Submission storage s = _submissions[taskId][index];
        Submission memory sub = s;
        if (sub.commitBlock == 0) revert UnknownSubmission(taskId, index);
        if (sub.status != Status.Committed) revert AlreadyRevealed(taskId, index);
        if (block.number <= sub.commitBlock) revert RevealInCommitBlock(sub.commitBlock);
        if (bytes(cid).length == 0 || bytes(cid).length > MAX_CID_LENGTH) revert BadCid(bytes(cid).length);
        bytes32 expected = keccak256(abi.encode(cid, salt, msg.sender, taskId, block.chainid, address(this)));
        if (bytes24(expected) != sub.data) revert BadReveal(taskId, index);
        bytes32 key = keccak256(bytes(cid));
        mapping(bytes32 => bool) storage used = cidUsed[taskId];
        if (used[key]) revert DuplicateCid(taskId, key);
        used[key] = true;
        s.data = bytes24(bytes20(msg.sender));
        s.status = Status.Revealed;
        if (!anyRevealed) t.anyRevealed = true; // once per task
        emit Revealed(taskId, msg.sender, index, cid);
    }

    // ------------------------------------------------------------------ committee
    /// @notice Fix the stake snapshot and the seed block of the committee draw (anyone), once a
    /// submission is revealed and the eval sets are settled. A re-request is possible only after
    /// the seed block's hash expired (> 256 blocks); it keeps the first snapshot for SNAPSHOT_TTL.
    function requestDraw(uint256 taskId) external {
        Task storage t = _task(taskId);
        Phase p = phaseOf(taskId);
        if (p != Phase.AwaitingDraw) revert WrongPhase(taskId, Phase.AwaitingDraw, p);
        uint256 seedBlock = t.seedBlock;
        if (seedBlock != 0 && block.number <= seedBlock + 256) revert DrawPending(taskId, seedBlock);
        uint256 snap = t.snapshotBlock;
        if (seedBlock == 0 || block.timestamp > uint256(t.requestedAt) + SNAPSHOT_TTL) {
            snap = block.number - 1;
            if (registry.totalAt(snap) == 0) revert NoEligibleStake();
            t.snapshotBlock = uint64(snap);
            t.requestedAt = uint32(block.timestamp);
        }
        seedBlock = block.number + DRAW_DELAY_BLOCKS;
        t.seedBlock = uint64(seedBlock);
        emit DrawRequested(taskId, snap, seedBlock);
    }

    /// @notice Draw the committee (anyone) after the seed block, while its hash exists: K seats,
    /// each an independent stake-weighted sample of the snapshot (with replacement). Each seat
    /// locks its verifier's stake until settlement. The score windows start now.
    function drawCommittee(uint256 taskId) external nonReentrant {
        Task storage t = _task(taskId);
        Phase p = phaseOf(taskId);
        if (p != Phase.AwaitingDraw) revert WrongPhase(taskId, Phase.AwaitingDraw, p);
        uint256 seedBlock = t.seedBlock;
        if (seedBlock == 0) revert DrawNotRequested(taskId);
        if (block.number <= seedBlock) revert SeedNotMined(seedBlock);
        bytes32 seed = blockhash(seedBlock);
        if (seed == bytes32(0)) revert SeedExpired(seedBlock);
        uint256 snap = t.snapshotBlock;
        uint256 total = registry.totalAt(snap);
        uint256 k = t.seats;
        address[] memory drawn = new address[](k);
        mapping(uint256 => Seat) storage seats_ = _seats[taskId];
        for (uint256 j; j < k; ++j) {
            uint256 r = uint256(keccak256(abi.encode(seed, taskId, j))) % total;
            address v = registry.sampleAt(snap, r);
            drawn[j] = v;
            seats_[j].verifier = v;
            registry.lock(v, 1);
        }
        uint256 commitEnd = block.timestamp + t.scoreCommitWindow;
        uint256 revealEnd = commitEnd + t.scoreRevealWindow;
        t.scoreCommitEnd = SafeCast.toUint32(commitEnd);
        t.scoreRevealEnd = SafeCast.toUint32(revealEnd);
        emit CommitteeDrawn(taskId, drawn, commitEnd, revealEnd);
    }

    /// @notice Commit to seat `seat`'s score vector (its holder only, in the score-commit window):
    /// keccak256(abi.encode(int32[] scores, salt, msg.sender, taskId, seat, block.chainid, address(this))).
    function commitScores(uint256 taskId, uint256 seat, bytes32 commitment) external {
        Task storage t = _task(taskId);
        if (t.scoreCommitEnd == 0 || block.timestamp > t.scoreCommitEnd) {
            revert WrongPhase(taskId, Phase.ScoreCommit, phaseOf(taskId));
        }
        _holder(taskId, seat);
        if (commitment == bytes32(0)) revert ZeroCommitment();
        if (_scoreCommitments[taskId][seat] != bytes32(0)) revert ScoresAlreadyCommitted(taskId, seat);
        _scoreCommitments[taskId][seat] = commitment;
        emit ScoresCommitted(taskId, seat, msg.sender);
    }

    /// @notice Reveal seat `seat`'s committed scores, one per submission it is assigned
    /// (`assigned(taskId, seat)`, ascending): a gain in bps in [-10000, 10000], INVALID or NO_EVAL.
    /// Only in the score-reveal window. The scores are then readable through `getScores`.
    function revealScores(uint256 taskId, uint256 seat, int32[] calldata scores, bytes32 salt) external {
        Task storage t = _task(taskId);
        if (block.timestamp <= t.scoreCommitEnd || block.timestamp > t.scoreRevealEnd) {
            revert WrongPhase(taskId, Phase.ScoreReveal, phaseOf(taskId));
        }
        Seat storage st = _holder(taskId, seat);
        if (st.revealed) revert ScoresAlreadyRevealed(taskId, seat);
        bytes32 c = _scoreCommitments[taskId][seat];
        if (c == bytes32(0)) revert ScoresNotCommitted(taskId, seat);
        uint256 n = Scores.count(seat, t.submissionCount, t.seats, t.seatsPerSubmission);
        if (scores.length != n) revert WrongScoreCount(n, scores.length);
        if (keccak256(abi.encode(scores, salt, msg.sender, taskId, seat, block.chainid, address(this))) != c) {
            revert BadScoreReveal(taskId, seat);
        }
        st.revealed = true;
        _storeScores(taskId, seat, scores);
        emit ScoresRevealed(taskId, seat, msg.sender);
    }

    // ------------------------------------------------------------------ settlement
    /// @notice Advance the settlement of a task by at most `maxItems` items (submissions or seats;
    /// the owners' refund counts as one) — anyone, any number of calls. Allowed once the
    /// score-reveal window ended, or a failure deadline passed (no eval set revealed by the
    /// eval-reveal deadline, no committee by evalRevealEnd + DRAW_TIMEOUT, no revealed submission).
    function settle(uint256 taskId, uint256 maxItems) external nonReentrant {
        if (maxItems == 0) revert ZeroItems();
        Task storage t = _task(taskId);
        Settlement storage st = _settlements[taskId];
        if (st.stage == Stage.None) _startSettlement(taskId, t, st);
        else if (st.stage == Stage.Finalized) revert WrongPhase(taskId, Phase.AwaitingSettlement, Phase.Finalized);
        uint256 budget = maxItems;
        while (budget != 0 && st.stage != Stage.Finalized) {
            Stage stage = st.stage;
            if (stage == Stage.Results) {
                budget = st.failed ? _countReveals(taskId, t, st, budget) : _results(taskId, t, st, budget);
            } else if (stage == Stage.Seats) {
                budget = _judgeSeats(taskId, t, st, budget);
            } else if (stage == Stage.Payouts) {
                budget = _payouts(taskId, t, st, budget);
            } else if (stage == Stage.Fees) {
                budget = _fees(taskId, t, st, budget);
            } else {
                _refundOwners(taskId, t, st);
                budget -= 1;
            }
        }
        emit Settled(taskId, st.stage, st.cursor);
    }

    function _startSettlement(uint256 taskId, Task storage t, Settlement storage st) private {
        Phase p = phaseOf(taskId);
        if (p != Phase.AwaitingSettlement) revert WrongPhase(taskId, Phase.AwaitingSettlement, p);
        if (!t.anyRevealed) {
            // nobody revealed: nothing to judge; the bounty and every bond go back to the owners
            st.failed = true;
            st.pot = uint128(uint256(t.submissionCount) * t.minerBond);
            st.stage = Stage.Refund;
        } else if (t.scoreCommitEnd == 0) {
            st.failed = true; // no eval set or no committee: revealed miners share everything
            st.stage = Stage.Results;
        } else {
            st.pot = uint128(uint256(t.bounty) * t.feeBps / BPS); // the verifiers' fee
            st.stage = Stage.Results;
        }
    }

    /// @dev stage Results of a failed round: count the revealed submissions, forfeit the others' bonds
    function _countReveals(uint256 taskId, Task storage t, Settlement storage st, uint256 budget)
        private returns (uint256)
    {
        uint256 n = t.submissionCount;
        uint256 from = st.cursor;
        uint256 to = from + budget < n ? from + budget : n;
        uint256 revealed = st.revealed;
        uint256 last = st.lastRevealed;
        uint256 forfeits;
        mapping(uint256 => Submission) storage subs = _submissions[taskId];
        for (uint256 s = from; s < to; ++s) {
            Submission memory sub = subs[s];
            if (sub.status == Status.Committed) {
                forfeits += t.minerBond;
                continue;
            }
            ++revealed;
            last = s;
            subs[s] = Submission(_settledData(address(bytes20(sub.data)), NO_EVAL), sub.commitBlock, Status.Unresolved);
        }
        st.revealed = uint16(revealed);
        st.lastRevealed = uint16(last);
        st.pot += uint128(forfeits);
        return _advance(st, to, n, Stage.Payouts, budget - (to - from));
    }

    /// Working copy of the committee for one batch of stage Results.
    struct Batch {
        uint256 k;
        uint256 r;
        uint256 tolerance;
        int256 minGain;
        address[] verifier;
        bool[] revealed;
        uint256[] agree;
        uint256[] disagree;
        uint256[] nextRank; // position of the next score of each seat in its vector
        uint256[] wordIndex; // which word of each seat's vector is cached (type(uint256).max: none)
        uint256[] word;
        uint256[] keys; // the current submission's scores with their seats, sorted (Scores.insertSorted)
    }

    /// Totals of one batch of stage Results.
    struct Tally {
        uint256 revealed;
        uint256 unresolved;
        uint256 weight;
        uint256 forfeits;
        uint256 lastRevealed;
    }

    /// @dev stage Results: per submission, the lower median of its eligible seats' scores and
    /// whether a majority of the eligible seats supports it; per seat, agree / disagree counts
    function _results(uint256 taskId, Task storage t, Settlement storage st, uint256 budget) private returns (uint256) {
        uint256 n = t.submissionCount;
        uint256 from = st.cursor;
        uint256 to = from + budget < n ? from + budget : n;
        Batch memory b = _loadBatch(taskId, t, from);
        Tally memory tally = Tally(st.revealed, st.unresolved, st.acceptedWeight, 0, st.lastRevealed);
        for (uint256 s = from; s < to; ++s) _result(taskId, t, b, tally, s);
        _storeBatch(taskId, b);
        st.revealed = uint16(tally.revealed);
        st.unresolved = uint16(tally.unresolved);
        st.acceptedWeight = uint32(tally.weight);
        st.lastRevealed = uint16(tally.lastRevealed);
        st.pot += uint128(tally.forfeits);
        return _advance(st, to, n, Stage.Seats, budget - (to - from));
    }

    /// @dev settles submission s's result and books it
    function _result(uint256 taskId, Task storage t, Batch memory b, Tally memory tally, uint256 s) private {
        Submission memory sub = _submissions[taskId][s];
        if (sub.status == Status.Committed) {
            for (uint256 d; d < b.r; ++d) b.nextRank[Scores.seatOf(s, d, b.k)] += 1;
            tally.forfeits += t.minerBond; // never revealed: the whole bond goes to the verifier pot
            return;
        }
        address miner = address(bytes20(sub.data));
        (int32 m, Status status) = _judge(taskId, b, s, miner);
        _count(t, tally, s, m, status);
        _submissions[taskId][s] = Submission(_settledData(miner, m), sub.commitBlock, status);
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
            uint256 q = b.nextRank[j];
            b.nextRank[j] = q + 1;
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
        if (eligible == 0) return (NO_EVAL, Status.Unscored); // its own miner holds every seat of it
        if (c == 0) return (NO_EVAL, Status.Unresolved);
        m = Scores.keyValue(keys[(c - 1) / 2]); // the lower median
        uint256 supporters;
        uint256 supportMask;
        for (uint256 i; i < c; ++i) {
            if (Scores.within(Scores.keyValue(keys[i]), m, b.tolerance)) {
                ++supporters;
                supportMask |= 1 << i;
            }
        }
        if (!Scores.isMajority(supporters, eligible)) return (m, Status.Unresolved);
        for (uint256 i; i < c; ++i) {
            uint256 seat = Scores.keyTag(keys[i]);
            if (supportMask & (1 << i) != 0) b.agree[seat] += 1;
            else b.disagree[seat] += 1;
        }
        if (m == INVALID) status = Status.Invalid;
        else if (m == NO_EVAL) status = Status.Unresolved; // the eval set was unavailable: not the miner's fault
        else if (m > 0 && m >= b.minGain) status = Status.Accepted;
        else status = Status.Rejected;
    }

    /// @dev books one revealed submission's result into the batch totals
    function _count(Task storage t, Tally memory tally, uint256 s, int32 m, Status status) private view {
        tally.revealed += 1;
        tally.lastRevealed = s;
        if (status == Status.Unresolved) {
            tally.unresolved += 1;
        } else if (status == Status.Invalid) {
            tally.forfeits += t.minerBond;
        } else if (status == Status.Accepted) {
            tally.weight += uint256(uint32(m));
        } else if (status == Status.Rejected) {
            tally.forfeits += uint256(t.minerBond) * BELOW_MIN_FORFEIT_BPS / BPS;
        }
    }

    function _loadBatch(uint256 taskId, Task storage t, uint256 from) private view returns (Batch memory b) {
        uint256 k = t.seats;
        uint256 r = t.seatsPerSubmission;
        b.k = k;
        b.r = r;
        b.tolerance = t.toleranceBps;
        b.minGain = t.minGainBps;
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
            b.verifier[j] = se.verifier;
            b.revealed[j] = se.revealed;
            b.agree[j] = se.agree;
            b.disagree[j] = se.disagree;
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

    /// @dev stage Seats: a seat that scored nothing it had to (silent) or disagreed with a
    /// resolved result is faulty and its verifier is slashed SEAT_SLASH into the pot; every
    /// seat is unlocked
    function _judgeSeats(uint256 taskId, Task storage t, Settlement storage st, uint256 budget)
        private returns (uint256)
    {
        uint256 k = t.seats;
        uint256 from = st.cursor;
        uint256 to = from + budget < k ? from + budget : k;
        uint256 slashed;
        uint256 totalAgree = st.totalAgree;
        uint256 lastPaid = st.lastPaidSeat;
        for (uint256 j = from; j < to; ++j) {
            Seat memory se = _seats[taskId][j];
            uint256 taken;
            bool faulty = _isFaulty(t, se, j);
            if (faulty) {
                taken = registry.slash(se.verifier, SEAT_SLASH);
                slashed += taken;
            } else if (se.agree != 0) {
                totalAgree += se.agree;
                lastPaid = j;
            }
            registry.unlock(se.verifier, 1);
            emit SeatSettled(taskId, j, se.verifier, se.agree, se.disagree, faulty, taken);
        }
        st.totalAgree = uint32(totalAgree);
        st.lastPaidSeat = uint8(lastPaid);
        st.pot += uint128(slashed);
        t.escrow += uint96(slashed);
        return _advance(st, to, k, Stage.Payouts, budget - (to - from));
    }

    /// Amounts every submission of stage Payouts is paid from.
    struct Shares {
        uint256 bond;
        uint256 acceptedPot; // shared pro rata to the accepted results
        uint256 weight; // W
        uint256 unresolvedShare; // each unresolved submission (and, in a failed round, each revealed one)
        uint256 potShare; // each revealed submission's share of the pot when no seat earned (0 otherwise)
        uint256 potDust; // to the last revealed submission with its pot share
        uint256 lastRevealed;
        bool failed;
    }

    /// @dev stage Payouts: credit every revealed submission's reward and bond
    function _payouts(uint256 taskId, Task storage t, Settlement storage st, uint256 budget) private returns (uint256) {
        uint256 n = t.submissionCount;
        uint256 from = st.cursor;
        uint256 to = from + budget < n ? from + budget : n;
        Shares memory sh = _shares(t, st);
        uint256 minersPaid;
        uint256 potPaid;
        for (uint256 s = from; s < to; ++s) {
            (uint256 reward, uint256 extra) = _payout(taskId, sh, s);
            if (sh.failed) minersPaid += reward + extra;
            else (minersPaid, potPaid) = (minersPaid + reward, potPaid + extra);
        }
        st.minersPaid += uint128(minersPaid);
        st.potPaid += uint128(potPaid);
        return _advance(st, to, n, Stage.Fees, budget - (to - from));
    }

    /// @dev credits submission s: its reward (from the miner pot), its pot share (`extra`) and its bond
    function _payout(uint256 taskId, Shares memory sh, uint256 s) private returns (uint256 reward, uint256 extra) {
        Submission memory sub = _submissions[taskId][s];
        if (sub.status == Status.Committed) return (0, 0); // unrevealed: its bond is in the pot
        address miner = address(bytes20(sub.data));
        int32 m = int32(uint32(uint192(sub.data)));
        uint256 bondBack = sh.bond;
        if (sub.status == Status.Accepted) {
            reward = sh.acceptedPot * uint256(uint32(m)) / sh.weight;
        } else if (sub.status == Status.Unresolved) {
            reward = sh.unresolvedShare;
        } else if (sub.status == Status.Rejected) {
            bondBack -= sh.bond * BELOW_MIN_FORFEIT_BPS / BPS;
        } else if (sub.status == Status.Invalid) {
            bondBack = 0;
        } // Unscored: the bond only
        extra = s == sh.lastRevealed ? sh.potShare + sh.potDust : sh.potShare;
        _credit(miner, taskId, reward + extra + bondBack);
        emit SubmissionSettled(taskId, s, miner, m, sub.status, reward + extra, bondBack);
    }

    function _shares(Task storage t, Settlement storage st) private view returns (Shares memory sh) {
        uint256 revealed = st.revealed;
        sh.bond = t.minerBond;
        sh.lastRevealed = st.lastRevealed;
        sh.failed = st.failed;
        if (st.failed) {
            // the whole bounty and the forfeited bonds, equally among the revealed submissions
            uint256 all = uint256(t.bounty) + st.pot;
            sh.unresolvedShare = all / revealed;
            sh.potDust = all - sh.unresolvedShare * revealed;
            return sh;
        }
        uint256 minerPot = _minerPot(t);
        uint256 unresolvedPot = minerPot * st.unresolved / revealed;
        sh.unresolvedShare = st.unresolved == 0 ? 0 : unresolvedPot / st.unresolved;
        sh.acceptedPot = minerPot - unresolvedPot;
        sh.weight = st.acceptedWeight;
        if (st.totalAgree == 0) {
            // no seat earned anything: the pot goes to the revealed miners, never to an owner
            uint256 pot = st.pot;
            sh.potShare = pot / revealed;
            sh.potDust = pot - sh.potShare * revealed;
        }
    }

    /// @dev stage Fees: the verifier pot (fee + forfeited bonds + slashes) pro rata to the agree
    /// counts of the non-faulty seats, dust to the last paid seat (skipped when no seat earned:
    /// the revealed miners got the pot in stage Payouts)
    function _fees(uint256 taskId, Task storage t, Settlement storage st, uint256 budget) private returns (uint256) {
        uint256 k = t.seats;
        if (st.totalAgree == 0) return _advance(st, k, k, Stage.Refund, budget);
        uint256 from = st.cursor;
        uint256 to = from + budget < k ? from + budget : k;
        uint256 paid = st.potPaid;
        for (uint256 j = from; j < to; ++j) paid += _fee(taskId, t, st, j, paid);
        st.potPaid = uint128(paid);
        return _advance(st, to, k, Stage.Refund, budget - (to - from));
    }

    /// @dev credits seat j its share of the pot (pro rata to its agree count; the last paid seat
    /// gets the rest) unless it is faulty or agreed with nothing
    function _fee(uint256 taskId, Task storage t, Settlement storage st, uint256 j, uint256 paid)
        private returns (uint256 fee)
    {
        Seat memory se = _seats[taskId][j];
        if (se.agree == 0 || _isFaulty(t, se, j)) return 0;
        fee = j == st.lastPaidSeat ? st.pot - paid : uint256(st.pot) * se.agree / st.totalAgree;
        _credit(se.verifier, taskId, fee);
    }

    /// @dev the miner pot nobody earned (no accepted submission, rounding dust) goes back to the
    /// owners pro rata to their contributions, dust to owner 0; when nobody revealed, the bounty
    /// and the forfeited bonds go back to them. Slashes never reach an owner.
    function _refundOwners(uint256 taskId, Task storage t, Settlement storage st) private {
        uint256 bounty = t.bounty;
        uint256 refund;
        if (st.revealed == 0) refund = bounty + st.pot; // nobody revealed: nobody did work
        else if (!st.failed) refund = _minerPot(t) - st.minersPaid;
        Owner[] storage owners_ = _owners[taskId];
        uint256 paid;
        for (uint256 i = owners_.length - 1; i > 0; --i) {
            uint256 share = refund * owners_[i].contribution / bounty;
            paid += share;
            _credit(owners_[i].addr, taskId, share);
        }
        _credit(owners_[0].addr, taskId, refund - paid);
        st.stage = Stage.Finalized;
        emit Finalized(taskId, st.minersPaid, st.potPaid, !st.failed && st.totalAgree == 0, refund);
    }

    /// @dev moves the cursor; on the last item of a stage, on to `next`
    function _advance(Settlement storage st, uint256 to, uint256 end, Stage next, uint256 budget)
        private returns (uint256)
    {
        if (to < end) {
            st.cursor = uint16(to);
            return 0; // the batch ended inside this stage
        }
        st.cursor = 0;
        st.stage = next;
        return budget;
    }

    /// @dev what the miners share: the bounty less the verifiers' fee
    function _minerPot(Task storage t) private view returns (uint256) {
        return t.bounty - uint256(t.bounty) * t.feeBps / BPS;
    }

    function _isFaulty(Task storage t, Seat memory se, uint256 j) private view returns (bool) {
        if (se.disagree != 0) return true;
        return !se.revealed && Scores.count(j, t.submissionCount, t.seats, t.seatsPerSubmission) != 0;
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
        if (t.commitEnd == 0) return Phase.None;
        Stage stage = _settlements[taskId].stage;
        if (stage == Stage.Finalized) return Phase.Finalized;
        if (stage != Stage.None) return Phase.Settling;
        uint256 now_ = block.timestamp;
        if (t.scoreCommitEnd != 0) {
            if (now_ <= t.scoreCommitEnd) return Phase.ScoreCommit;
            if (now_ <= t.scoreRevealEnd) return Phase.ScoreReveal;
            return Phase.AwaitingSettlement;
        }
        if (now_ <= t.commitEnd) return Phase.Commit;
        if (now_ <= t.revealEnd) return Phase.Reveal;
        if (!t.anyRevealed) return Phase.AwaitingSettlement; // nothing to score: refund
        if (now_ <= t.evalRevealEnd && t.ownersRevealed < t.ownerCount) return Phase.EvalReveal;
        if (t.ownersRevealed == 0) return Phase.AwaitingSettlement; // no eval set: failed round
        if (now_ <= uint256(t.evalRevealEnd) + DRAW_TIMEOUT) return Phase.AwaitingDraw;
        return Phase.AwaitingSettlement; // no committee in time: failed round
    }

    /// @notice A task's parameters, windows, draw state, bounty and escrow.
    function getTask(uint256 taskId) external view returns (Task memory) {
        return _task(taskId);
    }

    /// @notice The task's owners: address, contribution, eval commitment, whether revealed.
    function owners(uint256 taskId) external view returns (Owner[] memory) {
        return _owners[taskId];
    }

    /// @notice Submissions [from, from + count) (clamped): miner (zero until revealed), revealed.
    /// CIDs are in the `Revealed` events.
    function getSubmissions(uint256 taskId, uint256 from, uint256 count)
        external view returns (address[] memory miners, bool[] memory revealed)
    {
        uint256 n = _clamp(_task(taskId).submissionCount, from, count);
        miners = new address[](n);
        revealed = new bool[](n);
        for (uint256 i; i < n; ++i) {
            Submission storage sub = _submissions[taskId][from + i];
            revealed[i] = sub.status != Status.Committed;
            if (revealed[i]) miners[i] = address(bytes20(sub.data));
        }
    }

    /// @notice Results [from, from + count) (clamped): the result (lower median of the eligible
    /// seats' scores, INVALID / NO_EVAL sentinels; 0 before settlement) and the status.
    function results(uint256 taskId, uint256 from, uint256 count)
        external view returns (int32[] memory result, Status[] memory status)
    {
        Task storage t = _task(taskId);
        uint256 n = _clamp(t.submissionCount, from, count);
        result = new int32[](n);
        status = new Status[](n);
        for (uint256 i; i < n; ++i) {
            Submission storage sub = _submissions[taskId][from + i];
            status[i] = sub.status;
            if (status[i] == Status.Committed) {
                if (block.timestamp > t.revealEnd) status[i] = Status.Unrevealed;
            } else {
                result[i] = int32(uint32(uint192(sub.data)));
            }
        }
    }

    /// @notice The committee: per seat its verifier, whether it committed and revealed scores.
    function getSeats(uint256 taskId)
        external view returns (address[] memory verifiers, bool[] memory committed, bool[] memory revealed)
    {
        Task storage t = _task(taskId);
        uint256 k = t.scoreCommitEnd == 0 ? 0 : t.seats;
        verifiers = new address[](k);
        committed = new bool[](k);
        revealed = new bool[](k);
        for (uint256 j; j < k; ++j) {
            Seat storage se = _seats[taskId][j];
            verifiers[j] = se.verifier;
            committed[j] = _scoreCommitments[taskId][j] != bytes32(0);
            revealed[j] = se.revealed;
        }
    }

    /// @notice The seats `verifier` holds in a task's committee (one verifier can hold several).
    function seatsOf(uint256 taskId, address verifier) external view returns (uint256[] memory out) {
        Task storage t = _task(taskId);
        uint256 k = t.scoreCommitEnd == 0 ? 0 : t.seats;
        uint256[] memory tmp = new uint256[](k);
        uint256 c;
        for (uint256 j; j < k; ++j) {
            if (_seats[taskId][j].verifier == verifier) tmp[c++] = j;
        }
        out = new uint256[](c);
        for (uint256 i; i < c; ++i) out[i] = tmp[i];
    }

    /// @notice The submission indices seat `seat` scores, ascending: its score vector's order.
    function assigned(uint256 taskId, uint256 seat) external view returns (uint256[] memory) {
        Task storage t = _task(taskId);
        if (seat >= t.seats) return new uint256[](0);
        return Scores.seatSubmissions(seat, t.submissionCount, t.seats, t.seatsPerSubmission);
    }

    /// @notice Seat `seat`'s revealed score vector (empty until revealed), in `assigned` order.
    function getScores(uint256 taskId, uint256 seat) external view returns (int32[] memory out) {
        Task storage t = _task(taskId);
        if (seat >= t.seats || !_seats[taskId][seat].revealed) return out;
        out = new int32[](Scores.count(seat, t.submissionCount, t.seats, t.seatsPerSubmission));
        for (uint256 i; i < out.length; ++i) {
            out[i] = Scores.unpack(_scoreWords[taskId][(seat << 32) | (i / 8)], i % 8);
        }
    }

    /// @notice A seat's agreement counts over the resolved submissions it scored (final once
    /// settlement passed stage Results).
    function seatStats(uint256 taskId, uint256 seat) external view returns (uint256 agree, uint256 disagree) {
        Seat storage se = _seats[taskId][seat];
        return (se.agree, se.disagree);
    }

    /// @notice Settlement progress and totals (stage, cursor, R, U, W, pot, amounts paid).
    function getSettlement(uint256 taskId) external view returns (Settlement memory) {
        return _settlements[taskId];
    }

    /// @notice The score commitment of a seat (0 until committed).
    function scoreCommitment(uint256 taskId, uint256 seat) external view returns (bytes32) {
        return _scoreCommitments[taskId][seat];
    }

    // ------------------------------------------------------------------ helpers
    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.commitEnd == 0) revert UnknownTask(taskId);
    }

    function _holder(uint256 taskId, uint256 seat) private view returns (Seat storage st) {
        st = _seats[taskId][seat];
        if (seat >= _tasks[taskId].seats || st.verifier != msg.sender) revert NotSeatHolder(taskId, seat, msg.sender);
    }

    function _checkCid(string calldata cid) private pure {
        uint256 len = bytes(cid).length;
        if (len == 0 || len > MAX_CID_LENGTH) revert BadCid(len);
    }

    function _storeScores(uint256 taskId, uint256 seat, int32[] calldata scores) private {
        mapping(uint256 => uint256) storage words = _scoreWords[taskId];
        uint256 n = scores.length;
        uint256 word;
        for (uint256 i; i < n; ++i) {
            int32 x = scores[i];
            if (!Scores.isValid(x)) revert BadScore(x);
            word = Scores.pack(word, i % 8, x);
            if (i % 8 == 7 || i + 1 == n) {
                words[(seat << 32) | (i / 8)] = word;
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

    function _clamp(uint256 n, uint256 from, uint256 count) private pure returns (uint256) {
        if (from >= n) return 0;
        return n - from < count ? n - from : count;
    }
}
