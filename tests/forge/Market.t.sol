// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {CoDreamMarket} from "../../contracts/CoDreamMarket.sol";
import {MiniTest} from "./lib/MiniTest.sol";
import {MarketHandler} from "./MarketHandler.sol";

contract MedianHarness is CoDreamMarket {
    function median(int32[] memory a) external pure returns (int32) { return _median(a, a.length); }
}

/// Fuzz tests: medians against a reference, commitments, and full rounds that must end
/// with every wei claimable.
contract MarketFuzzTest is MiniTest {
    MedianHarness internal h;

    function setUp() public { h = new MedianHarness(); }

    function testFuzz_MedianEqualsReference(int32[] memory values) public view {
        vm.assume(values.length > 0 && values.length <= 15);
        int32[] memory copy = new int32[](values.length);
        for (uint256 i; i < values.length; ++i) copy[i] = values[i];
        // reference: the value with at most (n-1)/2 values strictly below and at least (n-1)/2+1 at or below
        uint256 want = (values.length - 1) / 2;
        int32 got = h.median(copy);
        uint256 below;
        uint256 atOrBelow;
        for (uint256 i; i < values.length; ++i) {
            if (values[i] < got) ++below;
            if (values[i] <= got) ++atOrBelow;
        }
        assertTrue(below <= want && atOrBelow >= want + 1, "median is not the lower median");
    }

    function testFuzz_RevealNeedsTheExactCommitment(string memory cid, bytes32 salt, bytes32 wrong) public {
        vm.assume(bytes(cid).length > 0 && bytes(cid).length <= 128 && wrong != salt);
        uint32[5] memory w = [uint32(100), 100, 100, 100, 100];
        uint256 id = h.createTask{value: 1 ether}("spec", keccak256("e"), 0, 1, 0, 0, 0, w);
        h.commit(id, keccak256(abi.encode(cid, salt, address(this), id, block.chainid, address(h))));
        vm.roll(block.number + 1);
        vm.expectRevert(CoDreamMarket.BadReveal.selector);
        h.reveal(id, 0, cid, wrong);
        h.reveal(id, 0, cid, salt);
        (address[] memory miners, bool[] memory revealed) = h.getSubmissions(id);
        assertTrue(revealed[0] && miners[0] == address(this), "not revealed");
    }

    /// whatever the actors do, after every window closes the task is final and
    /// the contract holds exactly stakes + claimable balances
    function testFuzz_EveryTaskReachesAFinalStateWithAllFundsClaimable(uint256 seed, uint8 steps) public {
        MarketHandler hd = new MarketHandler(h);
        hd.stake(1, 1 ether);
        hd.stake(2, 1 ether);
        hd.stake(3, 2 ether);
        hd.createTask(seed, uint96(seed), uint8(seed >> 8));
        uint256 n = bound(steps, 1, 30);
        for (uint256 i; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            uint256 op = r % 7;
            if (op == 0) hd.commit(r >> 8, 0);
            else if (op == 1) hd.reveal(r >> 8, 0);
            else if (op == 2) hd.revealEval(0);
            else if (op == 3) hd.draw(0);
            else if (op == 4) hd.scores(0, int32(int256(r % 8000)), r % 300);
            else if (op == 5) hd.warp(r % 2000);
            else hd.finalize(0);
        }
        uint256 id = 1;
        for (uint256 round; round < 4 && h.getTask(id).phase != CoDreamMarket.Phase.Finalized; ++round) {
            vm.warp(block.timestamp + 31 days + 8 * 600);
            vm.roll(block.number + 10);
            hd.draw(0);
            hd.scores(0, 5000, 0);
            vm.warp(block.timestamp + 3 * 600);
            hd.finalize(0);
        }
        assertTrue(h.getTask(id).phase == CoDreamMarket.Phase.Finalized, "task never reached a final state");
        uint256 stakes;
        uint256 claims;
        for (uint256 i; i < hd.actorCount(); ++i) {
            stakes += h.stakeOf(hd.actors(i));
            claims += h.claimable(hd.actors(i));
        }
        assertEq(address(h).balance, stakes + claims, "balance != stakes + claimable after settlement");
    }
}

/// Handler-based invariants: 8 actors, random calls, time jumps between them.
contract MarketInvariantTest is MiniTest {
    CoDreamMarket internal m;
    MarketHandler internal hd;

    function setUp() public {
        m = new CoDreamMarket();
        hd = new MarketHandler(m);
        targetContract(address(hd));
    }

    /// the contract's balance always equals everything it owes or holds
    function invariant_BalanceEqualsEverythingOwed() public view {
        uint256 owed;
        for (uint256 i; i < hd.actorCount(); ++i) {
            address a = hd.actors(i);
            owed += m.claimable(a) + m.stakeOf(a);
        }
        for (uint256 t = 1; t <= m.taskCount(); ++t) {
            CoDreamMarket.Task memory task = m.getTask(t);
            if (task.phase == CoDreamMarket.Phase.Finalized) continue;
            owed += task.bounty;
            owed += uint256(task.submissionCount) * task.minerBond;
        }
        assertEq(address(m).balance, owed, "balance != claimable + stakes + open bounties + open bonds");
    }

    /// nobody withdraws more than they were credited
    function invariant_NobodyWithdrawsMoreThanCredited() public view {
        for (uint256 i; i < hd.actorCount(); ++i) {
            address a = hd.actors(i);
            assertTrue(hd.withdrawn(a) <= hd.credited(a), "withdrew more than credited");
        }
    }

    /// frozen stakes (committee members) cannot leave
    function invariant_FrozenStakesCannotLeave() public view {
        assertTrue(!hd.frozenEscaped(), "a committee member withdrew its stake");
    }
}

/// The handler really reaches settlement and withdrawals (so the invariants are not vacuous).
contract HandlerReachTest is MiniTest {
    function test_HandlerReachesSettlementAndWithdrawals() public {
        CoDreamMarket m = new CoDreamMarket();
        MarketHandler hd = new MarketHandler(m);
        for (uint256 i; i < 4; ++i) hd.stake(i, 1 ether);
        vm.roll(block.number + 5);
        hd.createTask(7, 1 ether, 2); // k = bound(2, 1, 3) = 3
        hd.commit(5, 0);
        hd.commit(6, 0);
        vm.roll(block.number + 1);
        hd.reveal(5, 0);
        hd.reveal(6, 0);
        vm.warp(block.timestamp + 1201);
        hd.revealEval(0);
        hd.draw(0);
        assertEq(m.getCommittee(1).length, 3, "committee not drawn");
        hd.scores(0, 4000, 10);
        vm.warp(block.timestamp + 601);
        hd.finalize(0);
        assertTrue(m.getTask(1).phase == CoDreamMarket.Phase.Finalized, "not finalized");
        hd.withdraw(5);
        // equal medians: the two miners split 90 % of 1 ETH, plus their 0.01 ETH bonds
        assertEq(hd.withdrawn(hd.actors(5)), 0.46 ether, "miner payout");
        uint256 owed;
        for (uint256 i; i < hd.actorCount(); ++i) owed += m.stakeOf(hd.actors(i)) + m.claimable(hd.actors(i));
        assertEq(address(m).balance, owed, "books");
    }
}
