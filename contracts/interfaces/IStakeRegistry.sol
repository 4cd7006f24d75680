// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IStakeRegistry: verifier stakes, warm-up, unbonding, seat locks, slashing and
/// stake-weighted sampling at a past block (protocol v3, docs/protocol-v3.md §3).
interface IStakeRegistry {
    /// One slot per verifier: its active stake (the draw weight while not unbonding) and state.
    struct Verifier {
        uint128 stake; // active wei: counts in draws (unless unbonding)
        uint32 slot; // its sum-tree leaf, assigned on the first stake, never reused (0: none)
        uint64 unbondAt; // when everything may leave (0: not unbonding)
        uint32 lockedSeats; // committee seats it holds in unsettled tasks and open appeals
    }

    /// Stake that does not count yet: it becomes active `WARMUP` after its last deposit.
    struct Pending {
        uint128 amount;
        uint64 activatesAt;
    }

    event Registered(address indexed verifier, uint256 slot);
    event Staked(address indexed verifier, uint256 amount, uint256 pending, uint256 activatesAt);
    event Activated(address indexed verifier, uint256 amount, uint256 stake);
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
    error NothingPending(address verifier);
    error WarmingUp(uint256 activatesAt, uint256 time);
    error NotUnbonding(address verifier);
    error UnbondingNotOver(uint256 unbondAt, uint256 time);
    error StakeLocked(uint256 lockedSeats);
    error TransferFailed(address to, uint256 amount);

    /// @notice Add `msg.value` to the caller's pending stake (active after WARMUP).
    function stake() external payable;
    /// @notice Move a verifier's pending stake into its active stake once warmed up (anyone).
    function activate(address verifier) external;
    /// @notice Start unbonding the whole stake, active and pending: the draw weight drops to 0.
    function requestUnbond() external;
    /// @notice Send the whole stake after the unbonding delay, when no seat locks it.
    function withdrawStake() external;
    /// @notice Lock `seats` more committee seats of `verifier` (market only).
    function lock(address verifier, uint32 seats) external;
    /// @notice Release `seats` committee seats of `verifier` (market only).
    function unlock(address verifier, uint32 seats) external;
    /// @notice Take min(amount, stake) from `verifier`, active first, and send it to the market.
    function slash(address verifier, uint256 amount) external returns (uint256 taken);

    /// @notice The market, the only caller of lock, unlock and slash.
    function market() external view returns (address);
    /// @notice Least total stake (active + pending) a verifier may hold.
    function MIN_STAKE() external view returns (uint256);
    /// @notice How long a deposit waits before it counts in draws.
    function WARMUP() external view returns (uint256);
    /// @notice How long an unbonding stake waits before it can leave.
    function UNBONDING_DELAY() external view returns (uint256);
    /// @notice Everything a verifier holds here: active + pending (its earnings are in the market).
    function stakeOf(address verifier) external view returns (uint256);
    /// @notice A verifier's record (active stake, slot, unbondAt, lockedSeats).
    function info(address verifier) external view returns (Verifier memory);
    /// @notice A verifier's pending stake and when it can be activated.
    function pendingOf(address verifier) external view returns (Pending memory);
    /// @notice A verifier's draw weight at the end of block `blockNumber`.
    function weightAt(address verifier, uint256 blockNumber) external view returns (uint256);
    /// @notice The sum of all draw weights at the end of block `blockNumber`.
    function totalAt(uint256 blockNumber) external view returns (uint256);
    /// @notice The verifier whose weight range holds `r` (r < totalAt(blockNumber)).
    function sampleAt(uint256 blockNumber, uint256 r) external view returns (address);
    /// @notice Slots ever assigned (verifiers ever registered).
    function verifierCount() external view returns (uint256);
    /// @notice The verifier that owns a sum-tree slot.
    function verifierOf(uint256 slot) external view returns (address);
}
