// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakeRegistry} from "./interfaces/IStakeRegistry.sol";
import {SumTree} from "./libraries/SumTree.sol";

/// @title StakeRegistry: verifier stakes, warm-up, unbonding, seat locks, slashing and
/// stake-weighted sampling at a past block (docs/protocol-v3.md §3).
/// @notice Deployed by CoDreamMarket, which alone may lock, unlock and slash. Holds the stake ETH:
/// its balance always equals the sum of all stakes, active and pending (forge invariant).
/// A deposit is *pending* for WARMUP (longer than any task's span from creation to its last
/// committee draw, so nobody can stake against a task it has seen), then anyone may `activate` it.
/// A verifier's draw weight is its active stake while it is not unbonding, else 0; weights are
/// checkpointed per block, so a draw reads the weights of a snapshot block nobody can change.
contract StakeRegistry is IStakeRegistry, ReentrancyGuardTransient {
    using SumTree for SumTree.Tree;

    uint256 public constant MIN_STAKE = 0.1 ether;
    /// @notice a deposit counts in draws this long after it was made (fixed at deployment)
    uint256 public immutable WARMUP;
    /// @notice longer than any snapshot's age at its draw (fixed at deployment): a stake seen by a
    /// snapshot is still here when the committee is drawn from it; seats then lock it
    uint256 public immutable UNBONDING_DELAY;

    /// @notice the only caller of lock, unlock and slash; receives slashed stake
    address public immutable market;
    mapping(address => Verifier) internal _verifiers;
    mapping(address => Pending) internal _pending;
    /// @notice the verifier that owns a sum-tree slot
    mapping(uint256 => address) public verifierOf;
    /// draw weights by slot, checkpointed per block
    SumTree.Tree internal _tree;

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    constructor(address market_, uint256 warmup, uint256 unbondingDelay) {
        market = market_;
        WARMUP = warmup;
        UNBONDING_DELAY = unbondingDelay;
    }

    // ------------------------------------------------------------------ verifiers
    /// @notice Add `msg.value` to the caller's pending stake; it counts in draws after WARMUP
    /// (`activate`). A deposit restarts the warm-up of everything still pending. The first call
    /// registers the caller and assigns its sum-tree slot. Active plus pending must reach
    /// MIN_STAKE. Reverts `Unbonding` while unbonding (withdraw, then stake again).
    function stake() external payable {
        Verifier storage v = _verifiers[msg.sender];
        if (v.unbondAt != 0) revert Unbonding(v.unbondAt);
        Pending storage p = _pending[msg.sender];
        uint256 pending = p.amount + msg.value;
        uint256 total = v.stake + pending;
        if (total < MIN_STAKE) revert BelowMinStake(MIN_STAKE, total);
        if (v.slot == 0) {
            uint256 slot = _tree.add();
            v.slot = SafeCast.toUint32(slot);
            verifierOf[slot] = msg.sender;
            emit Registered(msg.sender, slot);
        }
        uint256 activatesAt = block.timestamp + WARMUP;
        _pending[msg.sender] = Pending(SafeCast.toUint128(pending), SafeCast.toUint64(activatesAt));
        emit Staked(msg.sender, msg.value, pending, activatesAt);
    }

    /// @notice Move `verifier`'s pending stake into its active stake (anyone, once warmed up).
    function activate(address verifier) external {
        Verifier storage v = _verifiers[verifier];
        Pending memory p = _pending[verifier];
        if (p.amount == 0) revert NothingPending(verifier);
        if (block.timestamp < p.activatesAt) revert WarmingUp(p.activatesAt, block.timestamp);
        if (v.unbondAt != 0) revert Unbonding(v.unbondAt);
        uint256 active = v.stake + p.amount;
        v.stake = SafeCast.toUint128(active);
        delete _pending[verifier];
        _tree.set(v.slot, active);
        emit Activated(verifier, p.amount, active);
    }

    /// @notice Start unbonding everything (active and pending): the draw weight drops to 0 at
    /// once (no later snapshot includes the caller); it can be withdrawn after UNBONDING_DELAY
    /// once no seat locks it.
    function requestUnbond() external {
        Verifier storage v = _verifiers[msg.sender];
        if (v.stake == 0 && _pending[msg.sender].amount == 0) revert NoStake(msg.sender);
        if (v.unbondAt != 0) revert Unbonding(v.unbondAt);
        uint256 unbondAt = block.timestamp + UNBONDING_DELAY;
        v.unbondAt = uint64(unbondAt);
        _tree.set(v.slot, 0);
        emit UnbondRequested(msg.sender, unbondAt);
    }

    /// @notice Send the caller its whole stake, active and pending, after the unbonding delay,
    /// when it holds no committee seat. The record is reset (the slot stays the caller's).
    function withdrawStake() external nonReentrant {
        Verifier storage v = _verifiers[msg.sender];
        uint256 unbondAt = v.unbondAt;
        if (unbondAt == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < unbondAt) revert UnbondingNotOver(unbondAt, block.timestamp);
        if (v.lockedSeats != 0) revert StakeLocked(v.lockedSeats);
        uint256 amount = v.stake + _pending[msg.sender].amount;
        v.stake = 0;
        v.unbondAt = 0;
        delete _pending[msg.sender];
        emit StakeWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    // ------------------------------------------------------------------ market
    /// @notice Lock `seats` more committee seats of `verifier` (market only).
    function lock(address verifier, uint32 seats) external onlyMarket {
        Verifier storage v = _verifiers[verifier];
        uint32 locked = v.lockedSeats + seats;
        v.lockedSeats = locked;
        emit SeatsLocked(verifier, seats, locked);
    }

    /// @notice Release `seats` committee seats of `verifier` (market only).
    function unlock(address verifier, uint32 seats) external onlyMarket {
        Verifier storage v = _verifiers[verifier];
        uint32 locked = v.lockedSeats - seats;
        v.lockedSeats = locked;
        emit SeatsUnlocked(verifier, seats, locked);
    }

    /// @notice Take min(amount, active + pending) from `verifier`, the active stake first, and send
    /// it to the market (market only), which books it (burned, or partly an appellant's reward).
    /// @return taken the wei moved to the market
    function slash(address verifier, uint256 amount) external onlyMarket nonReentrant returns (uint256 taken) {
        Verifier storage v = _verifiers[verifier];
        uint256 active = v.stake;
        uint256 pending = _pending[verifier].amount;
        taken = amount < active + pending ? amount : active + pending;
        if (taken == 0) return 0;
        uint256 fromActive = taken < active ? taken : active;
        if (fromActive != 0) {
            v.stake = uint128(active - fromActive);
            if (v.unbondAt == 0) _tree.set(v.slot, active - fromActive);
        }
        if (taken > fromActive) _pending[verifier].amount = uint128(pending - (taken - fromActive));
        emit Slashed(verifier, taken, active + pending - taken);
        _send(market, taken);
    }

    // ------------------------------------------------------------------ views
    /// @notice Everything a verifier holds here, active and pending (its earnings are in the
    /// market's `claimable`).
    function stakeOf(address verifier) external view returns (uint256) {
        return _verifiers[verifier].stake + _pending[verifier].amount;
    }

    /// @notice A verifier's record: active stake, slot, unbondAt, lockedSeats.
    function info(address verifier) external view returns (Verifier memory) {
        return _verifiers[verifier];
    }

    /// @notice A verifier's pending stake and when it can be activated.
    function pendingOf(address verifier) external view returns (Pending memory) {
        return _pending[verifier];
    }

    /// @notice A verifier's draw weight at the end of block `blockNumber`.
    function weightAt(address verifier, uint256 blockNumber) external view returns (uint256) {
        return _tree.weightAt(_verifiers[verifier].slot, blockNumber);
    }

    /// @notice The sum of all draw weights at the end of block `blockNumber`.
    function totalAt(uint256 blockNumber) external view returns (uint256) {
        return _tree.totalAt(blockNumber);
    }

    /// @notice The verifier whose weight range holds `r` (r < totalAt(blockNumber)) at the end of
    /// block `blockNumber`: a uniform r picks each verifier with probability weight / total.
    function sampleAt(uint256 blockNumber, uint256 r) external view returns (address) {
        return verifierOf[_tree.findAt(blockNumber, r)];
    }

    /// @notice Slots ever assigned (verifiers ever registered); there is no cap.
    function verifierCount() external view returns (uint256) {
        return _tree.size;
    }

    // ------------------------------------------------------------------ internals
    function _send(address to, uint256 amount) private {
        if (amount == 0) return;
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
