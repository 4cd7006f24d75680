// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {Scores} from "./libraries/Scores.sol";
import {MarketCommittee} from "./market/MarketCommittee.sol";
import {MarketSettlement} from "./market/MarketSettlement.sol";
import {MarketState} from "./market/MarketState.sol";

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
///
/// This file owns tasks and owners (create, join, reveal the eval set), the miners' commit-reveal
/// and bond reclaim, the appeals module's hooks and `withdraw`. The rest, one concern per file in
/// contracts/market/: MarketState (constants, parameters, storage, phaseOf, raw views, credit and
/// burn), MarketCommittee (the draw, the seats' vectors), MarketResults and MarketSettlement
/// (`settle`).
contract CoDreamMarket is MarketCommittee, MarketSettlement {
    /// @param p the protocol parameters (docs/protocol-v3.md §2); MarketState checks them and deploys
    /// the registry and the appeals module
    constructor(Params memory p) MarketState(p) {}

    modifier onlyAppeals() {
        if (msg.sender != appeals) revert NotAppeals(msg.sender);
        _;
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

    // ------------------------------------------------------------------ helpers
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
}
