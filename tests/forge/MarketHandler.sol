// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {StakeRegistry} from "../../contracts/StakeRegistry.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {Vm} from "./lib/MiniTest.sol";

/// Drives every v2 path with 16 actors and time jumps between calls: stake / unbond / withdraw
/// stake, create / join tasks, commit / reveal, eval reveals, draw requests (with seed expiry),
/// committee draws, score commits and reveals by honest, lazy, silent, INVALID-voting and
/// NO_EVAL-voting seats, settlement in random batch sizes, withdrawals. Keeps ghost books of what
/// each actor was credited and withdrew.
contract MarketHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    ICoDreamMarket public m;
    StakeRegistry public reg;
    address[] public actors;
    uint256[] public tasks;
    mapping(address => uint256) public credited; // sum of claimable increases seen
    mapping(address => uint256) public withdrawn;
    mapping(address => uint256) internal lastClaimable;
    bool public lockedStakeLeft; // a verifier with locked seats got its stake out
    mapping(bytes32 => uint256) public calls; // per handler function (keccak of its name), for the reach test
    uint256 internal cidNonce;
    bytes32 internal constant SALT = keccak256("salt");
    uint32[5] internal windows = [uint32(600), 600, 600, 600, 600];

    /// a miner's pending commitments: task => list of (index, cid)
    struct Pending {
        address miner;
        uint256 index;
        string cid;
    }

    mapping(uint256 => Pending[]) internal pending;
    /// behaviour a seat committed to: task => seat => 1 + behaviour
    mapping(uint256 => mapping(uint256 => uint256)) internal committedAs;

    constructor(ICoDreamMarket market) {
        m = market;
        reg = market.registry();
        for (uint256 i = 1; i <= 16; ++i) {
            address a = vm.addr(i);
            actors.push(a);
            vm.deal(a, 100_000 ether);
        }
        for (uint256 i; i < 4; ++i) { // some stake from the start, so draws are possible early
            vm.prank(actors[i]);
            reg.stake{value: 1 ether}();
        }
    }

    // ------------------------------------------------------------------ helpers
    function _actor(uint256 seed) internal view returns (address) { return actors[seed % actors.length]; }

    function _task(uint256 seed) internal view returns (uint256) {
        return tasks.length == 0 ? 0 : tasks[seed % tasks.length];
    }

    /// a task in phase `p`, searching from a random one (0 if none): random calls then make
    /// progress instead of mostly hitting closed windows
    function _taskIn(uint256 seed, ICoDreamMarket.Phase p) internal view returns (uint256) {
        uint256 n = tasks.length;
        for (uint256 i; i < n; ++i) {
            uint256 id = tasks[(seed + i) % n];
            if (m.phaseOf(id) == p) return id;
        }
        return 0;
    }

    function _sync() internal {
        for (uint256 i; i < actors.length; ++i) {
            address a = actors[i];
            uint256 c = m.claimable(a);
            if (c > lastClaimable[a]) credited[a] += c - lastClaimable[a];
            lastClaimable[a] = c;
        }
    }

    function _evalCid(address owner) internal pure returns (string memory) {
        return string(abi.encodePacked("bafyeval", owner));
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    function _truth(uint256 id, uint256 s) internal pure returns (int32) {
        uint256 h = uint256(keccak256(abi.encode(id, s)));
        if (h % 9 == 0) return Scores.INVALID;
        return int32(int256(h % 6000)) - 1000;
    }

    /// behaviour 0 honest, 1 lazy (constant), 2 INVALID, 3 NO_EVAL, 4 honest + noise within tolerance
    function _vector(uint256 id, uint256 seat, uint256 behaviour) internal view returns (int32[] memory v) {
        uint256[] memory subs = m.assigned(id, seat);
        v = new int32[](subs.length);
        for (uint256 i; i < subs.length; ++i) {
            if (behaviour == 1) v[i] = 5000;
            else if (behaviour == 2) v[i] = Scores.INVALID;
            else if (behaviour == 3) v[i] = Scores.NO_EVAL;
            else {
                int32 x = _truth(id, subs[i]);
                v[i] = behaviour == 4 && x > Scores.NO_EVAL ? x + int32(int256(seat % 3)) * 40 : x;
            }
        }
    }

    /// warps to the end of phase `p` of a task in that phase (a patient caller)
    function _waitFor(uint256 seed, ICoDreamMarket.Phase p) internal {
        uint256 id = _taskIn(seed, p);
        if (id == 0) return;
        ICoDreamMarket.Task memory task = m.getTask(id);
        uint256 end;
        if (p == ICoDreamMarket.Phase.Commit) end = task.commitEnd;
        else if (p == ICoDreamMarket.Phase.Reveal) end = task.revealEnd;
        else if (p == ICoDreamMarket.Phase.ScoreCommit) end = task.scoreCommitEnd;
        else if (p == ICoDreamMarket.Phase.ScoreReveal) end = task.scoreRevealEnd;
        else if (p == ICoDreamMarket.Phase.AwaitingDraw) end = uint256(task.evalRevealEnd) + m.DRAW_TIMEOUT();
        if (end >= block.timestamp) {
            vm.warp(end + 1);
            vm.roll(block.number + 1);
        }
    }

    // ------------------------------------------------------------------ owners
    function createTask(uint256 who, uint256 bounty, uint256 k, uint256 r, uint256 params) external {
        if (tasks.length >= 12) return;
        calls[keccak256("createTask")] += 1;
        address owner = _actor(who);
        bounty = bound(bounty, 1, 5 ether);
        uint8 seats = uint8(bound(k, 1, 6));
        uint8 perSub = uint8(bound(r, 1, seats));
        uint256 bond = bound(params, 0.001 ether, 0.05 ether);
        int16 minGain = int16(int256(bound(params >> 64, 0, 3000))) - 500;
        uint16 tol = uint16(bound(params >> 96, 0, 300));
        uint16 fee = uint16(bound(params >> 128, 0, 5000));
        vm.prank(owner);
        uint256 id = m.createTask{value: bounty}("bafyspec", keccak256(abi.encode(_evalCid(owner), SALT)), bond,
            seats, perSub, minGain, tol, fee, windows);
        tasks.push(id);
        _sync();
    }

    function joinTask(uint256 who, uint256 t, uint256 amount) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Commit);
        if (id == 0) return;
        address a = _actor(who);
        amount = bound(amount, 1, 3 ether);
        vm.prank(a);
        try m.joinTask{value: amount}(id, keccak256(abi.encode(_evalCid(a), SALT))) {
            calls[keccak256("joinTask")] += 1;
        } catch {}
    }

    function revealEval(uint256 t, uint256 ownerIndex) external {
        if (ownerIndex % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.Reveal);
        uint256 id = ownerIndex % 5 == 0 ? _task(t) : _taskIn(t, ICoDreamMarket.Phase.EvalReveal);
        if (id == 0) return;
        ICoDreamMarket.Owner[] memory os = m.owners(id);
        ICoDreamMarket.Owner memory o = os[ownerIndex % os.length];
        vm.prank(o.addr);
        try m.revealEval(id, ownerIndex % os.length, _evalCid(o.addr), SALT) {
            calls[keccak256("revealEval")] += 1;
        } catch {}
    }

    // ------------------------------------------------------------------ miners
    function commit(uint256 who, uint256 t) external {
        uint256 id = t % 7 == 0 ? _task(t) : _taskIn(t, ICoDreamMarket.Phase.Commit);
        if (id == 0) return;
        address a = _actor(who);
        string memory cid = string(abi.encodePacked("bafy", a, ++cidNonce));
        bytes32 c = keccak256(abi.encode(cid, SALT, a, id, block.chainid, address(m)));
        uint256 bond = m.getTask(id).minerBond;
        vm.prank(a);
        try m.commit{value: bond}(id, c) returns (uint256 index) {
            pending[id].push(Pending(a, index, cid));
            calls[keccak256("commit")] += 1;
        } catch {}
        _sync();
    }

    /// a patient caller (odd `which`) waits for the reveal window of a task still in Commit
    function reveal(uint256 t, uint256 which) external {
        if (which % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.Commit);
        uint256 id = which % 7 == 0 ? _task(t) : _taskIn(t, ICoDreamMarket.Phase.Reveal);
        if (id == 0 || pending[id].length == 0) return;
        Pending[] storage ps = pending[id];
        uint256 i = which % ps.length;
        Pending memory p = ps[i];
        vm.prank(p.miner);
        try m.reveal(id, p.index, p.cid, SALT) {
            ps[i] = ps[ps.length - 1];
            ps.pop();
            calls[keccak256("reveal")] += 1;
        } catch {}
    }

    // ------------------------------------------------------------------ verifiers
    function stake(uint256 who, uint256 amount) external {
        address a = _actor(who);
        amount = bound(amount, 0.1 ether, 5 ether);
        vm.prank(a);
        try reg.stake{value: amount}() {
            calls[keccak256("stake")] += 1;
        } catch {}
    }

    function requestUnbond(uint256 who) external {
        vm.prank(_actor(who));
        try reg.requestUnbond() {
            calls[keccak256("requestUnbond")] += 1;
        } catch {}
    }

    function withdrawStake(uint256 who) external {
        address a = _actor(who);
        uint64 unbondAt = reg.info(a).unbondAt;
        if (who % 2 == 1 && unbondAt > block.timestamp) vm.warp(unbondAt); // a patient verifier
        uint32 locked = reg.info(a).lockedSeats;
        vm.prank(a);
        try reg.withdrawStake() {
            calls[keccak256("withdrawStake")] += 1;
            if (locked != 0) lockedStakeLeft = true;
        } catch {}
    }

    function requestDraw(uint256 t) external {
        uint256 id = t % 5 == 0 ? _task(t) : _taskIn(t, ICoDreamMarket.Phase.AwaitingDraw);
        if (id == 0) return;
        try m.requestDraw(id) {
            calls[keccak256("requestDraw")] += 1;
        } catch {}
    }

    /// draws when possible; with `expire` odd, first lets the seed block's hash expire
    function drawCommittee(uint256 t, uint256 expire) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.AwaitingDraw);
        if (id == 0) return;
        uint256 seedBlock = m.getTask(id).seedBlock;
        if (seedBlock == 0) return;
        if (expire % 4 == 1) {
            vm.roll(seedBlock + 300); // the hash is gone: the draw must be requested again
            calls[keccak256("expired")] += 1;
        } else {
            if (block.number <= seedBlock) vm.roll(seedBlock + 1);
            if (block.number <= seedBlock + 256) vm.setBlockhash(seedBlock, keccak256(abi.encode(seedBlock, id)));
        }
        try m.drawCommittee(id) {
            calls[keccak256("drawCommittee")] += 1;
        } catch {}
    }

    /// every seat of the task's committee acts: behaviour 0..4 commits, 5 stays silent
    function commitScores(uint256 t, uint256 behaviours) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.ScoreCommit);
        if (id == 0) return;
        (address[] memory seats,,) = m.getSeats(id);
        for (uint256 j; j < seats.length; ++j) {
            uint256 b = (behaviours >> (8 * j)) % 8;
            if (b >= 5) continue; // silent
            bytes32 c = keccak256(abi.encode(_vector(id, j, b), SALT, seats[j], id, j, block.chainid, address(m)));
            vm.prank(seats[j]);
            try m.commitScores(id, j, c) {
                committedAs[id][j] = 1 + b;
                calls[keccak256("commitScores")] += 1;
            } catch {}
        }
    }

    function revealScores(uint256 t) external {
        if (t % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.ScoreCommit);
        uint256 id = t % 5 == 0 ? _task(t) : _taskIn(t, ICoDreamMarket.Phase.ScoreReveal);
        if (id == 0) return;
        (address[] memory seats,,) = m.getSeats(id);
        for (uint256 j; j < seats.length; ++j) {
            if (committedAs[id][j] == 0) continue;
            int32[] memory v = _vector(id, j, committedAs[id][j] - 1);
            vm.prank(seats[j]);
            try m.revealScores(id, j, v, SALT) {
                calls[keccak256("revealScores")] += 1;
            } catch {}
        }
    }

    // ------------------------------------------------------------------ settlement and payouts
    function settle(uint256 t, uint256 batch) external {
        if (batch % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.ScoreReveal);
        if (batch % 16 == 2) _waitFor(t, ICoDreamMarket.Phase.AwaitingDraw); // draw timeout
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Settling);
        if (id == 0) id = _taskIn(t, ICoDreamMarket.Phase.AwaitingSettlement);
        if (id == 0) id = _task(t);
        if (id == 0) return;
        try m.settle(id, bound(batch, 1, 20)) {
            calls[keccak256("settle")] += 1;
            if (m.phaseOf(id) == ICoDreamMarket.Phase.Finalized) {
                calls[keccak256("finalized")] += 1;
                if (m.getTask(id).scoreCommitEnd != 0) calls[keccak256("finalizedWithCommittee")] += 1;
            }
        } catch {}
        _sync();
    }

    function withdraw(uint256 who) external {
        address a = _actor(who);
        uint256 before = a.balance;
        vm.prank(a);
        try m.withdraw() {
            withdrawn[a] += a.balance - before;
            calls[keccak256("withdraw")] += 1;
        } catch {}
        _sync();
    }

    /// mostly short steps (windows are 600 s); sometimes days (unbonding, draw timeouts)
    function warp(uint256 dt) external {
        uint256 step = dt % 32 == 0 ? bound(dt >> 8, 1 days, 10 days) : bound(dt >> 8, 1, 700);
        vm.warp(block.timestamp + step);
        vm.roll(block.number + 1 + dt % 3);
    }

    // ------------------------------------------------------------------ views for the invariants
    function taskCount() external view returns (uint256) { return tasks.length; }

    function actorCount() external view returns (uint256) { return actors.length; }
}
