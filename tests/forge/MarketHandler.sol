// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CoDreamMarket} from "../../contracts/CoDreamMarket.sol";
import {Vm} from "./lib/MiniTest.sol";

/// Drives the market with several actors and time jumps between calls, keeping ghost
/// books of what each actor was credited and withdrew.
contract MarketHandler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    CoDreamMarket public m;
    address[] public actors;
    uint256[] public tasks;
    mapping(address => uint256) public credited; // sum of claimable increases seen
    mapping(address => uint256) public withdrawn;
    mapping(address => uint256) internal lastClaimable;
    bool public frozenEscaped;
    bytes32 internal constant EVAL_SALT = keccak256("eval");
    uint32[5] internal windows = [uint32(600), 600, 600, 600, 600];

    constructor(CoDreamMarket market) {
        m = market;
        for (uint256 i = 1; i <= 8; ++i) {
            address a = vm.addr(i);
            actors.push(a);
            vm.deal(a, 1000 ether);
        }
    }

    function _actor(uint256 seed) internal view returns (address) { return actors[seed % actors.length]; }

    function _task(uint256 seed) internal view returns (uint256) {
        return tasks.length == 0 ? 0 : tasks[seed % tasks.length];
    }

    function _sync() internal {
        for (uint256 i; i < actors.length; ++i) {
            address a = actors[i];
            uint256 c = m.claimable(a);
            if (c > lastClaimable[a]) credited[a] += c - lastClaimable[a];
            lastClaimable[a] = c;
        }
    }

    function createTask(uint256 who, uint96 bounty, uint8 k) external {
        address owner = _actor(who);
        bounty = uint96(bound(bounty, 1, 10 ether));
        k = uint8(bound(k, 1, 3));
        vm.prank(owner);
        uint256 id = m.createTask{value: bounty}("spec", keccak256(abi.encode("eval", EVAL_SALT)), 0.01 ether, k,
            100, 150, 1000, windows);
        tasks.push(id);
        _sync();
    }

    mapping(uint256 => mapping(address => uint256)) internal indexOf; // task => actor => index + 1

    function commit(uint256 who, uint256 t) external {
        uint256 id = _task(t);
        if (id == 0) return;
        address a = _actor(who);
        if (indexOf[id][a] != 0) return; // one submission per actor keeps CIDs distinct
        bytes32 c = keccak256(abi.encode(_cid(a), bytes32(uint256(1)), a, id, block.chainid, address(m)));
        uint256 index = m.getTask(id).submissionCount;
        vm.prank(a);
        try m.commit{value: 0.01 ether}(id, c) {
            indexOf[id][a] = index + 1;
        } catch {}
        _sync();
    }

    function reveal(uint256 who, uint256 t) external {
        uint256 id = _task(t);
        if (id == 0) return;
        address a = _actor(who);
        if (indexOf[id][a] == 0) return;
        vm.prank(a);
        try m.reveal(id, indexOf[id][a] - 1, _cid(a), bytes32(uint256(1))) {} catch {}
        _sync();
    }

    function revealEval(uint256 t) external {
        uint256 id = _task(t);
        if (id == 0) return;
        vm.prank(m.getTask(id).owner);
        try m.revealEval(id, "eval", EVAL_SALT) {} catch {}
    }

    function stake(uint256 who, uint256 amount) external {
        address a = _actor(who);
        amount = bound(amount, 0.1 ether, 5 ether);
        vm.prank(a);
        try m.stake{value: amount}() {} catch {}
        _sync();
    }

    function requestUnbond(uint256 who) external {
        vm.prank(_actor(who));
        try m.requestUnbond() {} catch {}
    }

    function withdrawStake(uint256 who) external {
        address a = _actor(who);
        (,, uint32 locked,,) = m.verifiers(a);
        // (stake, unbondAt, lockedTasks, registered, lastStakeBlock)
        vm.prank(a);
        try m.withdrawStake() {
            if (locked != 0) frozenEscaped = true;
        } catch {}
        _sync();
    }

    function draw(uint256 t) external {
        uint256 id = _task(t);
        if (id == 0) return;
        try m.requestDraw(id) {} catch {}
        uint256 seedBlock = m.getTask(id).seedBlock;
        if (seedBlock == 0) return;
        if (block.number <= seedBlock) vm.roll(seedBlock + 1);
        vm.setBlockhash(seedBlock, keccak256(abi.encode(seedBlock, id)));
        try m.drawCommittee(id) {} catch {}
    }

    function scores(uint256 t, int32 base, uint256 noise) external {
        uint256 id = _task(t);
        if (id == 0) return;
        CoDreamMarket.Member[] memory mem = m.getCommittee(id);
        uint256 ns = m.getTask(id).submissionCount;
        for (uint256 j; j < mem.length; ++j) {
            int32[] memory v = new int32[](ns);
            for (uint256 s; s < ns; ++s) v[s] = int32(int256(bound(uint256(int256(base)) + j * noise, 0, 10000)));
            vm.prank(mem[j].verifier);
            try m.commitScores(id, j, keccak256(abi.encode(v, bytes32(j), mem[j].verifier, id, block.chainid,
                address(m)))) {} catch {}
        }
        vm.warp(block.timestamp + 601);
        for (uint256 j; j < mem.length; ++j) {
            int32[] memory v = new int32[](ns);
            for (uint256 s; s < ns; ++s) v[s] = int32(int256(bound(uint256(int256(base)) + j * noise, 0, 10000)));
            vm.prank(mem[j].verifier);
            try m.revealScores(id, j, v, bytes32(j)) {} catch {}
        }
    }

    function finalize(uint256 t) external {
        uint256 id = _task(t);
        if (id == 0) return;
        try m.finalize(id) {} catch {}
        _sync();
    }

    function withdraw(uint256 who) external {
        address a = _actor(who);
        uint256 before = a.balance;
        vm.prank(a);
        try m.withdraw() {
            withdrawn[a] += a.balance - before;
        } catch {}
        _sync();
    }

    function warp(uint256 dt) external {
        vm.warp(block.timestamp + bound(dt, 1, 3 days));
        vm.roll(block.number + 1);
    }

    function taskCount() external view returns (uint256) { return tasks.length; }

    function actorCount() external view returns (uint256) { return actors.length; }

    function _cid(address a) internal pure returns (string memory) {
        return string(abi.encodePacked("bafy", a));
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }
}
