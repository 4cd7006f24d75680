// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {StakeRegistry} from "../../contracts/StakeRegistry.sol";
import {MiniTest} from "./lib/MiniTest.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// Handler-based invariants over every v2 path (see MarketHandler), 16 actors, random calls and
/// time jumps: runs x depth = 50 x 200 = 10,000 handler calls per invariant (foundry.toml),
/// 40,000 over the four invariants.
contract MarketInvariantTest is MiniTest {
    ICoDreamMarket internal m;
    StakeRegistry internal reg;
    MarketHandler internal hd;

    function setUp() public {
        vm.roll(1000);
        vm.warp(1_700_000_000);
        m = ICoDreamMarket(payable(vm.deployCode("CoDreamMarket.sol:CoDreamMarket")));
        reg = m.registry();
        hd = new MarketHandler(m);
        targetContract(address(hd));
        // weights: the round's steps twice as often as the rest, time three times
        bytes4[26] memory w = [MarketHandler.createTask.selector, MarketHandler.joinTask.selector,
            MarketHandler.revealEval.selector, MarketHandler.revealEval.selector, MarketHandler.commit.selector,
            MarketHandler.commit.selector, MarketHandler.reveal.selector, MarketHandler.reveal.selector,
            MarketHandler.stake.selector, MarketHandler.requestUnbond.selector, MarketHandler.withdrawStake.selector,
            MarketHandler.requestDraw.selector, MarketHandler.requestDraw.selector,
            MarketHandler.drawCommittee.selector, MarketHandler.drawCommittee.selector,
            MarketHandler.commitScores.selector, MarketHandler.commitScores.selector,
            MarketHandler.revealScores.selector, MarketHandler.revealScores.selector, MarketHandler.settle.selector,
            MarketHandler.settle.selector, MarketHandler.settle.selector, MarketHandler.withdraw.selector,
            MarketHandler.warp.selector, MarketHandler.warp.selector, MarketHandler.warp.selector];
        bytes4[] memory s = new bytes4[](w.length);
        for (uint256 i; i < w.length; ++i) s[i] = w[i];
        targetSelector(FuzzSelector(address(hd), s));
    }

    /// the market holds exactly what it owes: every claimable balance and every open escrow
    /// (market balance == sum(claimable) + sum(escrow))
    function invariant_BalanceEqualsEverythingOwed() public view {
        uint256 owed;
        for (uint256 i; i < hd.actorCount(); ++i) owed += m.claimable(hd.actors(i));
        for (uint256 t = 1; t <= m.taskCount(); ++t) {
            ICoDreamMarket.Task memory task = m.getTask(t);
            if (m.phaseOf(t) == ICoDreamMarket.Phase.Finalized) assertEq(task.escrow, 0, "finalized task kept escrow");
            owed += task.escrow;
        }
        assertEq(address(m).balance, owed, "market balance != claimable + escrow");
    }

    /// the registry holds exactly the stakes
    function invariant_RegistryBalanceEqualsStakes() public view {
        uint256 stakes;
        for (uint256 i; i < hd.actorCount(); ++i) stakes += reg.stakeOf(hd.actors(i));
        assertEq(address(reg).balance, stakes, "registry balance != sum of stakes");
    }

    /// nobody withdraws more than they were credited
    function invariant_NobodyWithdrawsMoreThanCredited() public view {
        for (uint256 i; i < hd.actorCount(); ++i) {
            address a = hd.actors(i);
            assertTrue(hd.withdrawn(a) <= hd.credited(a), "withdrew more than credited");
        }
    }

    /// stakes locked by committee seats cannot leave
    function invariant_LockedStakesCannotLeave() public view {
        assertTrue(!hd.lockedStakeLeft(), "a verifier with locked seats withdrew its stake");
    }
}

/// The handler really reaches every path (so the invariants are not vacuous).
contract HandlerReachTest is MiniTest {
    function test_HandlerReachesEveryPath() public {
        vm.roll(1000);
        vm.warp(1_700_000_000);
        ICoDreamMarket m = ICoDreamMarket(payable(vm.deployCode("CoDreamMarket.sol:CoDreamMarket")));
        MarketHandler hd = new MarketHandler(m);
        for (uint256 i; i < 6; ++i) hd.stake(i, 1 ether);
        vm.roll(block.number + 1);
        hd.createTask(0, 1 ether, 4, 2, 0); // K = 5, r = 3
        hd.joinTask(1, 0, 1 ether);
        for (uint256 i = 6; i < 12; ++i) hd.commit(i, 0);
        hd.warp(1 + (600 << 8)); // 601 s
        for (uint256 i; i < 6; ++i) hd.reveal(0, 0);
        hd.warp(1 + (600 << 8)); // 601 s
        hd.revealEval(0, 0);
        hd.revealEval(0, 1);
        hd.requestDraw(0);
        hd.drawCommittee(0, 1); // let the seed expire
        hd.requestDraw(0); // same snapshot, new seed
        hd.drawCommittee(0, 0);
        hd.commitScores(0, uint256(0x0500040300)); // seats: honest, NO_EVAL, noisy, honest, silent
        hd.warp(1 + (600 << 8)); // 601 s
        hd.revealScores(0);
        hd.warp(1 + (600 << 8)); // 601 s
        for (uint256 i; i < 40 && m.phaseOf(1) != ICoDreamMarket.Phase.Finalized; ++i) hd.settle(0, 2);
        for (uint256 i; i < 16; ++i) hd.withdraw(i);
        hd.requestUnbond(0);
        hd.warp(32); // four jumps of 1 day (32 >> 8 == 0): past the unbonding delay
        hd.warp(32);
        hd.warp(32);
        hd.warp(32 + (10 << 8)); // 1 day + 10 s
        hd.withdrawStake(0);
        string[16] memory names = ["createTask", "joinTask", "commit", "reveal", "revealEval", "stake",
            "requestDraw", "expired", "drawCommittee", "commitScores", "revealScores", "settle", "finalized",
            "withdraw", "requestUnbond", "withdrawStake"];
        for (uint256 i; i < names.length; ++i) {
            assertTrue(hd.calls(keccak256(bytes(names[i]))) > 0, string.concat("never reached: ", names[i]));
        }
        uint256 owed;
        for (uint256 i; i < hd.actorCount(); ++i) owed += m.claimable(hd.actors(i));
        assertEq(address(m).balance, owed, "books after settlement");
    }
}
