// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamAppeals} from "../../contracts/interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "../../contracts/interfaces/IStakeRegistry.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {CoDreamLens} from "../../contracts/CoDreamLens.sol";
import {Vm} from "./lib/MiniTest.sol";

/// Drives every v3 path with 16 actors (miners, verifiers, appellants) and 4 owners, with time
/// jumps between calls: stake / activate / unbond / withdraw stake, create / join tasks (tiny and
/// odd contributions included), commit, eval reveals (some owners never reveal), draw requests
/// (with missed draw windows), committee draws from random prevrandao, bundle reveals, score
/// commits and reveals by honest, lazy, silent, INVALID- and NO_EVAL-voting seats with random eval
/// verdicts, appeals (drawn or not, scored or silent, resolved in random batches), settlement in
/// random batch sizes, bond reclaims after failed rounds, withdrawals. Keeps ghost books of what
/// each actor was credited and withdrew and what each owner paid in.
contract MarketHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    ICoDreamMarket public m;
    IStakeRegistry public reg;
    ICoDreamAppeals public ap;
    CoDreamLens public lens;
    address[] public actors;
    address[] public owners;
    uint256[] public tasks;
    mapping(address => uint256) public credited; // sum of claimable increases seen
    mapping(address => uint256) public withdrawn;
    mapping(address => uint256) public ownerPaid; // contributions an owner paid in
    mapping(address => uint256) internal lastClaimable;
    bool public lockedStakeLeft; // a verifier with locked seats got its stake out
    mapping(bytes32 => uint256) public calls; // per handler function, for the reach test
    uint256 internal cidNonce;
    bytes32 internal constant SALT = keccak256("salt");
    uint32[5] internal windows = [uint32(3600), 3600, 3600, 3600, 3600];

    struct Pending {
        address miner;
        uint256 index;
        string cid;
    }

    mapping(uint256 => Pending[]) internal pending; // task => commitments not revealed yet
    mapping(uint256 => Pending[]) internal unrevealed; // task => commitments never revealed (reclaims)
    /// behaviour a seat committed to: task => seat => 1 + behaviour
    mapping(uint256 => mapping(uint256 => uint256)) internal committedAs;
    /// appeal seats' committed scores: task => appeal => seat => 1 + score index
    mapping(uint256 => mapping(uint256 => mapping(uint256 => uint256))) internal appealAs;

    constructor(ICoDreamMarket market, CoDreamLens lens_) {
        m = market;
        reg = market.registry();
        ap = ICoDreamAppeals(market.appeals());
        lens = lens_;
        for (uint256 i = 1; i <= 16; ++i) {
            address a = vm.addr(i);
            actors.push(a);
            vm.deal(a, 100_000 ether);
        }
        for (uint256 i = 101; i <= 104; ++i) {
            address o = vm.addr(i);
            owners.push(o);
            vm.deal(o, 100_000 ether);
        }
        for (uint256 i; i < 4; ++i) { // some active stake from the start, so draws are possible early
            vm.prank(actors[i]);
            reg.stake{value: 1 ether}();
        }
        vm.warp(block.timestamp + reg.WARMUP() + 1);
        for (uint256 i; i < 4; ++i) reg.activate(actors[i]);
        vm.roll(block.number + 1);
    }

    // ------------------------------------------------------------------ helpers
    function _actor(uint256 seed) internal view returns (address) { return actors[seed % actors.length]; }

    function _task(uint256 seed) internal view returns (uint256) {
        return tasks.length == 0 ? 0 : tasks[seed % tasks.length];
    }

    /// a task in phase `p`, searching from a random one (0 if none)
    function _taskIn(uint256 seed, ICoDreamMarket.Phase p) internal view returns (uint256) {
        uint256 n = tasks.length;
        for (uint256 i; i < n; ++i) {
            uint256 id = tasks[(seed + i) % n];
            if (m.phaseOf(id) == p) return id;
        }
        return 0;
    }

    function _sync() internal {
        for (uint256 i; i < actors.length + owners.length; ++i) {
            address a = i < actors.length ? actors[i] : owners[i - actors.length];
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

    /// behaviour 0 honest, 1 lazy (constant), 2 INVALID, 3 NO_EVAL, 4 honest + noise within
    /// tolerance; the eval verdicts: honest EVAL_OK, except owners the behaviour byte marks
    function _vector(uint256 id, uint256 seat, uint256 behaviour) internal view returns (int32[] memory v) {
        uint256[] memory subs = lens.assigned(id, seat);
        uint256 o = m.getTask(id).ownerCount;
        v = new int32[](o + subs.length);
        for (uint256 i; i < o; ++i) {
            uint256 h = uint256(keccak256(abi.encode(id, i, "owner")));
            v[i] = h % 4 == 0 ? Scores.EVAL_FAILED : (behaviour == 3 ? Scores.EVAL_UNAVAILABLE : Scores.EVAL_OK);
        }
        for (uint256 i; i < subs.length; ++i) {
            int32 x = _truth(id, subs[i]);
            if (behaviour == 1) x = 5000;
            else if (behaviour == 2) x = Scores.INVALID;
            else if (behaviour == 3) x = Scores.NO_EVAL;
            else if (behaviour == 4 && x > Scores.NO_EVAL) x += int32(int256(seat % 3)) * 40;
            v[o + i] = x;
        }
    }

    /// warps to the end of phase `p` of a task in that phase (a patient caller)
    function _waitFor(uint256 seed, ICoDreamMarket.Phase p) internal {
        uint256 id = _taskIn(seed, p);
        if (id == 0) return;
        ICoDreamMarket.Task memory t = m.getTask(id);
        uint256 end;
        if (p == ICoDreamMarket.Phase.Commit) end = t.commitEnd;
        else if (p == ICoDreamMarket.Phase.EvalReveal) end = t.evalRevealEnd;
        else if (p == ICoDreamMarket.Phase.Reveal) end = t.revealEnd;
        else if (p == ICoDreamMarket.Phase.ScoreCommit) end = t.scoreCommitEnd;
        else if (p == ICoDreamMarket.Phase.ScoreReveal) end = t.scoreRevealEnd;
        else if (p == ICoDreamMarket.Phase.Appeal) end = t.appealEnd;
        else if (p == ICoDreamMarket.Phase.AwaitingDraw) end = uint256(t.evalRevealEnd) + m.params().drawTimeout;
        if (end >= block.timestamp) {
            vm.warp(end + 1);
            vm.roll(block.number + 1);
        }
    }

    // ------------------------------------------------------------------ owners
    function createTask(uint256 who, uint256 bounty, uint256 k, uint256 params) external {
        if (tasks.length >= 12) return;
        address owner = owners[who % owners.length];
        bounty = bounty % 4 == 0 ? bound(bounty, 1, 1000) : bound(bounty, 1, 5 ether); // tiny ones too
        uint8 seats = uint8(bound(k, 5, 8));
        uint8 r = seats >= 7 && k % 2 == 0 ? 7 : 5;
        uint256 bond = bound(params, 0.001 ether, 0.05 ether);
        int16 minGain = int16(int256(bound(params >> 64, 0, 3000))) - 500;
        uint16 tol = uint16(bound(params >> 96, 0, 300));
        uint16 fee = uint16(bound(params >> 128, 0, 5000));
        vm.prank(owner);
        uint256 id = m.createTask{value: bounty}("bafyspec", keccak256(abi.encode(_evalCid(owner), SALT)), 9000,
            bond, seats, r, minGain, tol, fee, windows);
        tasks.push(id);
        ownerPaid[owner] += bounty;
        calls[keccak256("createTask")] += 1;
        _sync();
    }

    function joinTask(uint256 who, uint256 t, uint256 amount) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Commit);
        if (id == 0) return;
        address o = owners[who % owners.length];
        uint256 least = m.owners(id)[0].contribution / 10;
        if (least < m.CO_OWNER_MIN()) least = m.CO_OWNER_MIN();
        amount = least + bound(amount, 0, 1 ether);
        vm.prank(o);
        try m.joinTask{value: amount}(id, keccak256(abi.encode(_evalCid(o), SALT)), 8000) {
            ownerPaid[o] += amount;
            calls[keccak256("joinTask")] += 1;
        } catch {}
    }

    /// reveals one owner's eval set; owners whose index is 3 never reveal
    function revealEval(uint256 t, uint256 ownerIndex) external {
        if (ownerIndex % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.Commit);
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.EvalReveal);
        if (id == 0) return;
        ICoDreamMarket.Owner[] memory os = m.owners(id);
        uint256 i = ownerIndex % os.length;
        if (i == 3) return;
        vm.prank(os[i].addr);
        try m.revealEval(id, i, _evalCid(os[i].addr), SALT) {
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

    /// reveals a pending commitment in the reveal window (after the draw); `which` % 5 == 4 gives
    /// that commitment up (never revealed)
    function reveal(uint256 t, uint256 which) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Reveal);
        if (id == 0 || pending[id].length == 0) return;
        Pending[] storage ps = pending[id];
        uint256 i = which % ps.length;
        Pending memory p = ps[i];
        ps[i] = ps[ps.length - 1];
        ps.pop();
        if (which % 5 == 4) {
            unrevealed[id].push(p);
            return;
        }
        vm.prank(p.miner);
        try m.reveal(id, p.index, p.cid, SALT) {
            calls[keccak256("reveal")] += 1;
        } catch {
            unrevealed[id].push(p);
        }
    }

    /// a committer takes its bond back after its round failed before the draw
    function reclaimBond(uint256 t) external {
        uint256 id = _task(t);
        if (id == 0 || !m.getSettlement(id).failed || m.phaseOf(id) != ICoDreamMarket.Phase.Finalized) return;
        Pending[] storage ps = pending[id];
        if (ps.length == 0) return;
        Pending memory p = ps[ps.length - 1];
        ps.pop();
        vm.prank(p.miner);
        try m.reclaimBond(id, p.index, p.cid, SALT) {
            calls[keccak256("reclaimBond")] += 1;
        } catch {}
        _sync();
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

    function activate(uint256 who) external {
        address a = _actor(who);
        uint64 at = reg.pendingOf(a).activatesAt;
        if (who % 3 == 1 && at > block.timestamp) vm.warp(at); // a patient verifier
        try reg.activate(a) {
            calls[keccak256("activate")] += 1;
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

    /// draws when possible; with `miss` % 4 == 1 the draw window passes first (a re-request follows)
    function drawCommittee(uint256 t, uint256 miss) external {
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.AwaitingDraw);
        if (id == 0) return;
        uint256 seedBlock = m.getTask(id).seedBlock;
        if (seedBlock == 0) return;
        if (miss % 4 == 1) {
            vm.roll(seedBlock + m.DRAW_WINDOW_BLOCKS() + 1);
            calls[keccak256("missed")] += 1;
        } else if (block.number < seedBlock) {
            vm.roll(seedBlock);
        }
        vm.prevrandao(keccak256(abi.encode(miss, block.number)));
        try m.drawCommittee(id) {
            calls[keccak256("drawCommittee")] += 1;
        } catch {}
    }

    /// every seat of the task's committee acts: behaviour 0..4 commits, 5..7 stays silent
    function commitScores(uint256 t, uint256 behaviours) external {
        _waitFor(t, ICoDreamMarket.Phase.Reveal);
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.ScoreCommit);
        if (id == 0) return;
        (address[] memory seats,,) = lens.getSeats(id);
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
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.ScoreReveal);
        if (id == 0) return;
        (address[] memory seats,,) = lens.getSeats(id);
        for (uint256 j; j < seats.length; ++j) {
            if (committedAs[id][j] == 0) continue;
            int32[] memory v = _vector(id, j, committedAs[id][j] - 1); // (before the prank: it calls out)
            vm.prank(seats[j]);
            try m.revealScores(id, j, v, SALT) {
                calls[keccak256("revealScores")] += 1;
            } catch {}
        }
    }

    // ------------------------------------------------------------------ appeals
    function appeal(uint256 who, uint256 t, uint256 s) external {
        if (s % 3 == 1) _waitFor(t, ICoDreamMarket.Phase.ScoreReveal);
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Appeal);
        if (id == 0) return;
        uint256 n = m.getTask(id).submissionCount;
        address a = _actor(who);
        uint256 d = ap.depositFor(id);
        vm.prank(a);
        try ap.appeal{value: d}(id, s % n) {
            calls[keccak256("appeal")] += 1;
        } catch {}
        _sync();
    }

    /// draws an appeal committee in Drawing (or lets its window pass, or its deadline: `how`)
    function drawAppeal(uint256 t, uint256 how) external {
        uint256 id = _task(t);
        if (id == 0) return;
        uint256 count = ap.appealCount(id);
        for (uint256 a; a < count; ++a) {
            ICoDreamAppeals.Appeal memory x = ap.getAppeal(id, a);
            if (x.stage != ICoDreamAppeals.AppealStage.Drawing) continue;
            if (how % 5 == 1) {
                vm.roll(x.seedBlock + m.DRAW_WINDOW_BLOCKS() + 1);
                try ap.requestAppealDraw(id, a) {
                    calls[keccak256("requestAppealDraw")] += 1;
                } catch {}
                return;
            }
            if (how % 5 == 2) {
                vm.warp(uint256(x.drawDeadline) + 1); // nobody draws: the appeal will be void
                vm.roll(block.number + 1);
                return;
            }
            if (block.number < x.seedBlock) vm.roll(x.seedBlock);
            vm.prevrandao(keccak256(abi.encode(how, block.number, "appeal")));
            try ap.drawAppeal(id, a) {
                calls[keccak256("drawAppeal")] += 1;
            } catch {}
            return;
        }
    }

    /// every seat of a scoring appeal commits (score index from `scores`, 3: silent), then waits
    /// and reveals
    function scoreAppeal(uint256 t, uint256 scores) external {
        uint256 id = _task(t);
        if (id == 0) return;
        uint256 count = ap.appealCount(id);
        for (uint256 a; a < count; ++a) {
            ICoDreamAppeals.Appeal memory x = ap.getAppeal(id, a);
            if (x.stage != ICoDreamAppeals.AppealStage.Scoring || block.timestamp > x.commitEnd) continue;
            _commitAppeal(id, a, x.submission, scores);
            vm.warp(uint256(x.commitEnd) + 1);
            vm.roll(block.number + 1);
            _revealAppeal(id, a, x.submission);
            return;
        }
    }

    function _commitAppeal(uint256 id, uint256 a, uint256 s, uint256 scores) internal {
        (address[] memory seats,,,) = ap.getAppealSeats(id, a);
        for (uint256 j; j < seats.length; ++j) {
            uint256 b = (scores >> (2 * j)) % 4;
            if (b == 3) continue;
            bytes32 c = keccak256(abi.encode(_appealScore(id, s, b), SALT, seats[j], id, a, j, block.chainid,
                address(ap)));
            vm.prank(seats[j]);
            try ap.commitAppealScore(id, a, j, c) {
                appealAs[id][a][j] = 1 + b;
            } catch {}
        }
    }

    function _revealAppeal(uint256 id, uint256 a, uint256 s) internal {
        (address[] memory seats,,,) = ap.getAppealSeats(id, a);
        for (uint256 j; j < seats.length; ++j) {
            if (appealAs[id][a][j] == 0) continue;
            vm.prank(seats[j]);
            try ap.revealAppealScore(id, a, j, _appealScore(id, s, appealAs[id][a][j] - 1), SALT) {
                calls[keccak256("revealAppealScore")] += 1;
            } catch {}
        }
    }

    /// 0: the truth, 1: the truth + 2,000, 2: INVALID
    function _appealScore(uint256 id, uint256 s, uint256 b) internal pure returns (int32) {
        if (b == 2) return Scores.INVALID;
        int32 x = _truth(id, s);
        return b == 1 && x > Scores.NO_EVAL ? x + 2000 : x;
    }

    function resolveAppeal(uint256 t, uint256 items) external {
        uint256 id = _task(t);
        if (id == 0) return;
        uint256 count = ap.appealCount(id);
        for (uint256 a; a < count; ++a) {
            ICoDreamAppeals.Appeal memory x = ap.getAppeal(id, a);
            if (x.stage == ICoDreamAppeals.AppealStage.Resolved) continue;
            if (x.stage == ICoDreamAppeals.AppealStage.Scoring && block.timestamp <= x.revealEnd) {
                vm.warp(uint256(x.revealEnd) + 1);
                vm.roll(block.number + 1);
            }
            try ap.resolveAppeal(id, a, bound(items, 1, 20)) {
                calls[keccak256("resolveAppeal")] += 1;
                if (ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Overturned) calls[keccak256("overturned")] += 1;
            } catch {}
            _sync();
            return;
        }
    }

    // ------------------------------------------------------------------ settlement and payouts
    function settle(uint256 t, uint256 batch) external {
        if (batch % 2 == 1) _waitFor(t, ICoDreamMarket.Phase.Appeal);
        if (batch % 16 == 2) _waitFor(t, ICoDreamMarket.Phase.AwaitingDraw); // draw timeout
        if (batch % 16 == 4) _waitFor(t, ICoDreamMarket.Phase.EvalReveal); // owners missed the window
        uint256 id = _taskIn(t, ICoDreamMarket.Phase.Settling);
        if (id == 0) id = _taskIn(t, ICoDreamMarket.Phase.AwaitingSettlement);
        if (id == 0) id = _task(t);
        if (id == 0) return;
        try m.settle(id, bound(batch, 1, 20)) {
            calls[keccak256("settle")] += 1;
            if (m.phaseOf(id) == ICoDreamMarket.Phase.Finalized) {
                calls[keccak256("finalized")] += 1;
                if (m.getTask(id).revealEnd != 0) calls[keccak256("finalizedWithCommittee")] += 1;
                else calls[keccak256("finalizedFailed")] += 1;
                // failed rounds: the committers' bonds wait in escrow for reclaimBond
                Pending[] storage us = unrevealed[id];
                while (us.length != 0) {
                    pending[id].push(us[us.length - 1]);
                    us.pop();
                }
            }
        } catch {}
        _sync();
    }

    function withdraw(uint256 who) external {
        address a = who % 5 == 4 ? owners[who % owners.length] : _actor(who);
        uint256 before = a.balance;
        vm.prank(a);
        try m.withdraw() {
            withdrawn[a] += a.balance - before;
            calls[keccak256("withdraw")] += 1;
        } catch {}
        _sync();
    }

    /// mostly short steps (windows are an hour); sometimes days (unbonding, warm-up, timeouts)
    function warp(uint256 dt) external {
        uint256 step = dt % 32 == 0 ? bound(dt >> 8, 1 days, 25 days) : bound(dt >> 8, 1, 4000);
        vm.warp(block.timestamp + step);
        vm.roll(block.number + 1 + dt % 3);
    }

    // ------------------------------------------------------------------ views for the invariants
    function taskCount() external view returns (uint256) { return tasks.length; }

    function actorCount() external view returns (uint256) { return actors.length; }

    function ownerCount() external view returns (uint256) { return owners.length; }
}
