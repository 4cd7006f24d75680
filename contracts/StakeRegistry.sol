// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {SumTree} from "./libraries/SumTree.sol";

/// @title StakeRegistry: verifier stakes, unbonding, seat locks, slashing and stake-weighted
/// sampling at a past block.
/// @notice Deployed by CoDreamMarket, which alone may lock, unlock and slash. Holds the stake ETH:
/// its balance always equals the sum of all stakes (forge invariant). A verifier's draw weight is
/// its stake while it is not unbonding, else 0; weights are checkpointed per block, so a draw
/// reads the weights of a snapshot block that nobody can change afterwards.
contract StakeRegistry is ReentrancyGuardTransient {
    using SumTree for SumTree.Tree;

    uint256 public constant MIN_STAKE = 0.1 ether;
    /// @notice longer than SNAPSHOT_TTL: a stake seen by a snapshot is still there for any draw
    /// made from it; committee seats lock the stake beyond this anyway
    uint256 public constant UNBONDING_DELAY = 3 days;

    /// One slot per verifier.
    struct Verifier {
        uint128 stake; // wei held here for this verifier
        uint32 slot; // its leaf in the sum tree, assigned on the first stake, never reused (0: none)
        uint64 unbondAt; // when the stake may leave (0: not unbonding)
        uint32 lockedSeats; // committee seats it holds in unsettled tasks: withdrawal waits for 0
    }

    /// @notice the only caller of lock, unlock and slash; receives slashed stake
    address public immutable market;
    mapping(address => Verifier) internal _verifiers;
    /// @notice the verifier that owns a sum-tree slot
    mapping(uint256 => address) public verifierOf;
    /// draw weights by slot, checkpointed per block
    SumTree.Tree internal _tree;

    event Registered(address indexed verifier, uint256 slot);
    event Staked(address indexed verifier, uint256 amount, uint256 total);
    event UnbondRequested(address indexed verifier, uint256 unbondAt);
    event StakeWithdrawn(address indexed verifier, uint256 amount);
    event SeatsLocked(address indexed verifier, uint256 seats, uint256 lockedSeats);
    event SeatsUnlocked(address indexed verifier, uint256 seats, uint256 lockedSeats);
    event Slashed(address indexed verifier, uint256 amount, uint256 remaining);

    error NotMarket(address caller);
    /// cancelling an unbonding is not possible: withdraw, then stake again
    error Unbonding(uint256 unbondAt);
    error BelowMinStake(uint256 required, uint256 total);
    error NoStake(address verifier);
    error NotUnbonding(address verifier);
    error UnbondingNotOver(uint256 unbondAt, uint256 time);
    error StakeLocked(uint256 lockedSeats);
    error TransferFailed(address to, uint256 amount);

    modifier onlyMarket() {
        if (msg.sender != market) revert NotMarket(msg.sender);
        _;
    }

    constructor(address market_) {
        market = market_;
    }

    // ------------------------------------------------------------------ verifiers
    /// @notice Add `msg.value` to the caller's stake; the first call registers the caller and
    /// assigns its sum-tree slot. The new total must be at least MIN_STAKE. Reverts `Unbonding`
    /// while unbonding: cancelling an unbonding is not possible (withdraw, then stake again).
    function stake() external payable {
        Verifier storage v = _verifiers[msg.sender];
        if (v.unbondAt != 0) revert Unbonding(v.unbondAt);
        uint256 total = v.stake + msg.value;
        if (total < MIN_STAKE) revert BelowMinStake(MIN_STAKE, total);
        uint256 slot = v.slot;
        if (slot == 0) {
            slot = _tree.add();
            v.slot = SafeCast.toUint32(slot);
            verifierOf[slot] = msg.sender;
            emit Registered(msg.sender, slot);
        }
        v.stake = SafeCast.toUint128(total);
        _tree.set(slot, total);
        emit Staked(msg.sender, msg.value, total);
    }

    /// @notice Start unbonding: the draw weight drops to 0 at once (no later snapshot includes
    /// the caller); the stake can be withdrawn after UNBONDING_DELAY once no seat locks it.
    function requestUnbond() external {
        Verifier storage v = _verifiers[msg.sender];
        if (v.stake == 0) revert NoStake(msg.sender);
        if (v.unbondAt != 0) revert Unbonding(v.unbondAt);
        uint256 unbondAt = block.timestamp + UNBONDING_DELAY;
        v.unbondAt = uint64(unbondAt);
        _tree.set(v.slot, 0);
        emit UnbondRequested(msg.sender, unbondAt);
    }

    /// @notice Send the caller its whole stake after the unbonding delay, when it holds no
    /// committee seat. The record is reset (the slot stays the caller's, weight 0).
    function withdrawStake() external nonReentrant {
        Verifier storage v = _verifiers[msg.sender];
        uint256 unbondAt = v.unbondAt;
        if (unbondAt == 0) revert NotUnbonding(msg.sender);
        if (block.timestamp < unbondAt) revert UnbondingNotOver(unbondAt, block.timestamp);
        if (v.lockedSeats != 0) revert StakeLocked(v.lockedSeats);
        uint256 amount = v.stake;
        v.stake = 0;
        v.unbondAt = 0;
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

    /// @notice Take min(amount, stake) from `verifier` and send it to the market (market only).
    /// @return taken the wei moved to the market
    function slash(address verifier, uint256 amount) external onlyMarket nonReentrant returns (uint256 taken) {
        Verifier storage v = _verifiers[verifier];
        uint256 s = v.stake;
        taken = amount < s ? amount : s;
        if (taken == 0) return 0;
        v.stake = uint128(s - taken);
        if (v.unbondAt == 0) _tree.set(v.slot, s - taken);
        emit Slashed(verifier, taken, s - taken);
        _send(market, taken);
    }

    // ------------------------------------------------------------------ views
    /// @notice A verifier's current stake (its earnings are in the market's `claimable`).
    function stakeOf(address verifier) external view returns (uint256) {
        return _verifiers[verifier].stake;
    }

    /// @notice A verifier's whole record: stake, slot, unbondAt, lockedSeats.
    function info(address verifier) external view returns (Verifier memory) {
        return _verifiers[verifier];
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
