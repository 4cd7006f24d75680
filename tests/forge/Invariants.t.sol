// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {IStakeRegistry} from "../../contracts/interfaces/IStakeRegistry.sol";
import {ProtocolParams} from "../../contracts/libraries/ProtocolParams.sol";
import {CoDreamLens} from "../../contracts/CoDreamLens.sol";
import {MiniTest} from "./lib/MiniTest.sol";
import {MarketHandler} from "./MarketHandler.sol";

/// deploys the market (production parameters), its lens and a handler
abstract contract HandlerSetup is MiniTest {
    ICoDreamMarket internal m;
    IStakeRegistry internal reg;
    MarketHandler internal hd;

    function _deploy() internal {
        vm.roll(1000);
        vm.warp(1_700_000_000);
        m = ICoDreamMarket(payable(vm.deployCode("CoDreamMarket.sol:CoDreamMarket",
            abi.encode(ProtocolParams.production()))));
        reg = m.registry();
        CoDreamLens lens = CoDreamLens(vm.deployCode("CoDreamLens.sol:CoDreamLens", abi.encode(address(m))));
        hd = new MarketHandler(m, lens);
    }

    /// everything the market owes: every actor's and owner's claimable, every escrow, the burned wei
    function _owed() internal view returns (uint256 owed) {
        owed = m.burned();
        for (uint256 i; i < hd.actorCount(); ++i) owed += m.claimable(hd.actors(i));
        for (uint256 i; i < hd.ownerCount(); ++i) owed += m.claimable(hd.owners(i));
        for (uint256 t = 1; t <= m.taskCount(); ++t) owed += m.getTask(t).escrow;
    }
}

/// Handler-based invariants over every v3 path (see MarketHandler), random calls and time jumps:
/// runs x depth = 50 x 200 = 10,000 handler calls per invariant (foundry.toml), 60,000 over the six.
contract MarketInvariantTest is HandlerSetup {
    function setUp() public {
        _deploy();
        targetContract(address(hd));
        // weights: the round's steps twice as often as the rest, time three times
        bytes4[36] memory w = [MarketHandler.createTask.selector, MarketHandler.joinTask.selector,
            MarketHandler.revealEval.selector, MarketHandler.revealEval.selector, MarketHandler.commit.selector,
            MarketHandler.commit.selector, MarketHandler.reveal.selector, MarketHandler.reveal.selector,
            MarketHandler.reclaimBond.selector, MarketHandler.stake.selector, MarketHandler.activate.selector,
            MarketHandler.requestUnbond.selector, MarketHandler.withdrawStake.selector,
            MarketHandler.requestDraw.selector, MarketHandler.requestDraw.selector,
            MarketHandler.drawCommittee.selector, MarketHandler.drawCommittee.selector,
            MarketHandler.commitScores.selector, MarketHandler.commitScores.selector,
            MarketHandler.revealScores.selector, MarketHandler.revealScores.selector, MarketHandler.appeal.selector,
            MarketHandler.drawAppeal.selector, MarketHandler.drawAppeal.selector, MarketHandler.scoreAppeal.selector,
            MarketHandler.scoreAppeal.selector, MarketHandler.resolveAppeal.selector,
            MarketHandler.resolveAppeal.selector, MarketHandler.settle.selector, MarketHandler.settle.selector,
            MarketHandler.settle.selector, MarketHandler.withdraw.selector, MarketHandler.withdraw.selector,
            MarketHandler.warp.selector, MarketHandler.warp.selector, MarketHandler.warp.selector];
        bytes4[] memory s = new bytes4[](w.length);
        for (uint256 i; i < w.length; ++i) s[i] = w[i];
        targetSelector(FuzzSelector(address(hd), s));
    }

    /// the market holds exactly what it owes plus what it burned:
    /// balance == sum(claimable) + sum(escrow) + burned
    function invariant_BalanceEqualsEverythingOwedPlusBurned() public view {
        assertEq(address(m).balance, _owed(), "market balance != claimable + escrow + burned");
    }

    /// a finalized task holds nothing, except a failed round's bonds not reclaimed yet
    function invariant_FinalizedTasksHoldOnlyReclaimableBonds() public view {
        for (uint256 t = 1; t <= m.taskCount(); ++t) {
            if (m.phaseOf(t) != ICoDreamMarket.Phase.Finalized) continue;
            ICoDreamMarket.Task memory task = m.getTask(t);
            if (m.getSettlement(t).failed) assertLe(task.escrow, uint256(task.submissionCount) * task.minerBond, "escrow");
            else assertEq(task.escrow, 0, "finalized task kept escrow");
        }
    }

    /// the registry holds exactly the stakes (active and pending)
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

    /// no owner is ever credited more than it paid in (owners are only ever refunded)
    function invariant_NoOwnerCreditedMoreThanItPaid() public view {
        for (uint256 i; i < hd.ownerCount(); ++i) {
            address o = hd.owners(i);
            assertLe(hd.credited(o), hd.ownerPaid(o), "an owner was credited more than it paid");
        }
    }

    /// stakes locked by committee or appeal seats cannot leave
    function invariant_LockedStakesCannotLeave() public view {
        assertTrue(!hd.lockedStakeLeft(), "a verifier with locked seats withdrew its stake");
    }
}

/// The handler really reaches every path (so the invariants are not vacuous).
contract HandlerReachTest is HandlerSetup {
    function test_HandlerReachesEveryPath() public {
        _deploy();
        for (uint256 i = 4; i < 12; ++i) hd.stake(i, 1 ether);
        hd.activate(5); // 5 % 3 == 2: not patient, still warming up
        hd.warp(32 + (25 << 8)); // 1 day + 25 s ... the warm-up needs 21
        for (uint256 i = 4; i < 12; ++i) hd.activate(3 * i + 1); // patient: waits out the warm-up
        // a round with a committee and an appeal
        hd.createTask(0, 1, 7, 0); // bounty 1 ether... (1 % 4 != 0), K 7 (k = 7 -> 7 % 4 + 5), r 5
        hd.joinTask(1, 0, 0);
        for (uint256 i = 12; i < 16; ++i) hd.commit(i, 1);
        hd.revealEval(0, 0);
        hd.revealEval(0, 1); // patient: the commit window passes; owner 1
        hd.revealEval(0, 2); // owner 0
        hd.requestDraw(1);
        hd.drawCommittee(0, 1); // miss the window
        hd.requestDraw(1);
        hd.drawCommittee(0, 0);
        for (uint256 i; i < 4; ++i) hd.reveal(0, 0);
        hd.commitScores(0, uint256(0x0004030200)); // seats: honest, INVALID, NO_EVAL, noisy, honest...
        hd.revealScores(1);
        hd.appeal(0, 0, 1);
        hd.drawAppeal(0, 0);
        hd.scoreAppeal(0, 0);
        for (uint256 i; i < 10; ++i) hd.resolveAppeal(0, 5);
        for (uint256 i; i < 40; ++i) hd.settle(1, 4);
        // a round that fails before its draw: the owner never reveals (owner index 3 never does)
        hd.createTask(1, 2 ether, 5, 0);
        hd.commit(0, 2);
        hd.warp(1 + (3700 << 8)); // 3,701 s: past the commit window
        hd.settle(4, 4); // waits out the eval window
        for (uint256 i; i < 4; ++i) hd.settle(2, 4);
        hd.reclaimBond(1);
        for (uint256 i; i < 20; ++i) hd.withdraw(i);
        hd.requestUnbond(4);
        hd.withdrawStake(5); // patient
        string[20] memory names = ["createTask", "joinTask", "commit", "reveal", "revealEval", "stake", "activate",
            "requestDraw", "missed", "drawCommittee", "commitScores", "revealScores", "appeal", "drawAppeal",
            "revealAppealScore", "resolveAppeal", "settle", "finalized", "withdraw", "reclaimBond"];
        string memory missing;
        for (uint256 i; i < names.length; ++i) {
            if (hd.calls(keccak256(bytes(names[i]))) == 0) missing = string.concat(missing, " ", names[i]);
        }
        assertTrue(bytes(missing).length == 0, string.concat("never reached:", missing));
        assertTrue(hd.calls(keccak256("finalizedWithCommittee")) > 0, "never finalized a round with a committee");
        assertTrue(hd.calls(keccak256("finalizedFailed")) > 0, "never finalized a failed round");
        assertEq(address(m).balance, _owed(), "books after settlement");
    }
}
