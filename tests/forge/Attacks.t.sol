// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ICoDreamAppeals} from "../../contracts/interfaces/ICoDreamAppeals.sol";
import {ICoDreamMarket} from "../../contracts/interfaces/ICoDreamMarket.sol";
import {Scores} from "../../contracts/libraries/Scores.sol";
import {CoDreamLens} from "../../contracts/CoDreamLens.sol";
import {MarketBase} from "./MarketBase.sol";

/// pays a seat holder once its revealed vector (read through the lens) shows `target` at
/// `position`: the bribe contract of issue 22, attack family 3
contract Briber {
    CoDreamLens public lens;
    uint256 public bribe;

    constructor(CoDreamLens lens_, uint256 bribe_) payable {
        lens = lens_;
        bribe = bribe_;
    }

    function claim(uint256 taskId, uint256 seat, uint256 position, int32 target) external {
        require(lens.market().seat(taskId, seat).verifier == msg.sender, "not the seat's holder");
        int32[] memory v = lens.getScores(taskId, seat);
        require(v.length > position && v[position] == target, "not as agreed");
        (bool ok,) = msg.sender.call{value: bribe}("");
        require(ok, "pay");
    }
}

/// The attacks of issue 22, each with real money on the v3 contracts and the production
/// parameters. Each asserts what the v2 version of the same scenario violated (the v2 run:
/// docs/attacks-v2/forge-run-on-v2.txt): the attacker does not profit, and an owner pays at least
/// an honest owner's price for any dream it sees. Every net is logged (`codream bench market`
/// reads the lines starting with NETJSON).
contract AttacksTest is MarketBase {
    mapping(address => uint256) internal paid;
    mapping(address => uint256) internal stakeBefore;

    function _paid(address a, uint256 amount) internal {
        paid[a] += amount;
    }

    /// claimable + stake change - what it paid in
    function net(address a) internal view returns (int256) {
        return int256(m.claimable(a)) + int256(reg.stakeOf(a)) - int256(stakeBefore[a]) - int256(paid[a]);
    }

    function netOf(address[] memory group) internal view returns (int256 s) {
        for (uint256 i; i < group.length; ++i) s += net(group[i]);
    }

    function _verifiers(uint256 from, uint256 n, uint256 amount) internal returns (address[] memory vs) {
        vs = activeVerifiers(from, n, amount);
        for (uint256 i; i < n; ++i) stakeBefore[vs[i]] = reg.stakeOf(vs[i]);
    }

    function _task(address owner, uint256 bounty, uint8 k, uint8 r) internal returns (uint256 id) {
        id = newTask(owner, bounty, k, r, 100, 150, 1000);
        _paid(owner, bounty);
    }

    function _commit(address miner, uint256 id, uint256 i) internal returns (uint256 index) {
        index = commitAs(miner, id, cidOf(miner, i));
        _paid(miner, BOND);
    }

    function _reveal(address miner, uint256 id, uint256 index, uint256 i) internal {
        revealAs(miner, id, index, cidOf(miner, i));
    }

    function _reclaim(address miner, uint256 id, uint256 index, uint256 i) internal {
        reclaimAs(miner, id, index, cidOf(miner, i));
    }

    function _json(string memory name, int256 attackerNet) internal view {
        log(string.concat("NETJSON {\"", name, "\": ", _i(attackerNet), "}"));
    }

    /// n addresses actor(from .. from + n)
    function _group(uint256 from, uint256 n) internal pure returns (address[] memory g) {
        g = new address[](n);
        for (uint256 i; i < n; ++i) g[i] = actor(from + i);
    }

    // ------------------------------------------------------------------ family 1: unjudged rounds
    /// owner never reveals its eval set; 95 sybil junk submissions beside 5 honest ones
    function test_Attack_OwnerWithholdsEvalWithSybilJunk() public {
        _verifiers(10, 5, 1 ether);
        address owner = actor(0);
        uint256 id = _task(owner, 1 ether, 5, 5);
        address[] memory sybils = _group(300, 95);
        for (uint256 i; i < 5; ++i) _commit(actor(100 + i), id, i);
        for (uint256 i; i < 95; ++i) _commit(sybils[i], id, 5 + i);
        toEval(id);
        toEvalEnd(id); // the owner never reveals
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.WrongPhase.selector, id, ICoDreamMarket.Phase.Reveal,
            ICoDreamMarket.Phase.AwaitingSettlement));
        _reveal(actor(100), id, 0, 0); // no honest bundle ever becomes public
        settleAll(id, 500);
        for (uint256 i; i < 5; ++i) _reclaim(actor(100 + i), id, i, i);
        for (uint256 i; i < 95; ++i) _reclaim(sybils[i], id, 5 + i, 5 + i);
        int256 attacker = net(owner) + netOf(sybils);
        _json("owner_withholds_eval_with_sybil_junk", attacker);
        assertLe(attacker, -1 ether, "the withholding owner paid less than the bounty");
        assertEq(net(actor(100)), 0, "the honest miner got its bond back");
        assertBooks();
    }

    /// a co-owner joins as cheaply as allowed, its eval set fails the verifiers' checks, 45 junk
    function test_Attack_CheapCoOwnerUnusableEvalAndJunk() public {
        _verifiers(10, 5, 1 ether);
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        address co = actor(1);
        vm.deal(co, 1);
        vm.prank(co);
        vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.ContributionTooLow.selector, 0.1 ether, 1));
        m.joinTask{value: 1}(id, evalCommitment(co), ACC); // 1 wei: refused
        join(id, co, 0.1 ether); // the least a co-owner of a 1 ETH task pays
        _paid(co, 0.1 ether);
        address[] memory junk = _group(300, 45);
        for (uint256 i; i < 5; ++i) _commit(actor(100 + i), id, i);
        for (uint256 i; i < 45; ++i) _commit(junk[i], id, 5 + i);
        toEval(id);
        revealAllEvals(id);
        draw(id);
        for (uint256 i; i < 5; ++i) _reveal(actor(100 + i), id, i, i);
        for (uint256 i; i < 45; ++i) _reveal(junk[i], id, 5 + i, 5 + i);
        toScoreCommit(id);
        evalVote[1] = Scores.EVAL_FAILED; // its accuracy check fails: the seats score on owner 0's set
        for (uint256 s; s < 5; ++s) truth[s] = 6000;
        for (uint256 s = 5; s < 50; ++s) truth[s] = 0;
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 500);
        int256 attacker = net(co) + netOf(junk);
        _json("cheap_co_owner_bad_eval_and_junk", attacker);
        assertTrue(m.owners(id)[1].verdict == ICoDreamMarket.Verdict.Faulty, "the co-owner is faulty");
        assertLt(attacker, 0, "the co-owner with junk profited");
        assertEq(net(actor(100)), 0.18 ether, "each honest miner: a fifth of the good owner's miner pot");
        assertBooks();
    }

    /// 32 noise submissions and 1 honest one; the owner never reveals
    function test_Attack_NoiseHarvestsAnUnrevealedRound() public {
        _verifiers(10, 5, 1 ether);
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        address[] memory noise = _group(300, 32);
        _commit(actor(100), id, 0);
        for (uint256 i; i < 32; ++i) _commit(noise[i], id, 1 + i);
        toEvalEnd(id);
        settleAll(id, 500);
        for (uint256 i; i < 32; ++i) _reclaim(noise[i], id, 1 + i, 1 + i);
        _json("noise_in_an_unrevealed_round", netOf(noise));
        assertLe(netOf(noise), 0, "noise earned from a round nobody judged");
        assertLe(net(actor(0)), -1 ether, "the owner who never revealed got something back");
        assertBooks();
    }

    /// even r is gone; at the floor r = 5 a staller holding 2 of a submission's seats is outvoted
    function test_Attack_EvenRStaller() public {
        vm.deal(actor(0), 10 ether);
        vm.startPrank(actor(0));
        for (uint8 r = 2; r <= 4; ++r) {
            vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadSeats.selector, 8, r, 5, 64));
            m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 8, r, 100, 150, 1000, W);
        }
        vm.stopPrank();
        address staller = actor(10);
        stakeAs(staller, 2 ether); // 40 % of the stake
        for (uint256 i = 1; i < 4; ++i) stakeAs(actor(10 + i), 1 ether);
        warmUp(_group(10, 4));
        for (uint256 i; i < 4; ++i) stakeBefore[actor(10 + i)] = reg.stakeOf(actor(10 + i));
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        address junk = actor(300);
        _commit(actor(100), id, 0);
        _commit(junk, id, 1);
        toEval(id);
        revealEvalAs(id, 0);
        m.requestDraw(id);
        vm.roll(m.getTask(id).seedBlock);
        bytes32 randao = nextRandao();
        while (_count(seatsFor(id, randao), staller) != 2) randao = nextRandao(); // 2 of 5 seats
        address[] memory seats = drawWith(id, randao);
        _reveal(actor(100), id, 0, 0);
        _reveal(junk, id, 1, 1);
        toScoreCommit(id);
        truth[0] = 5000;
        truth[1] = 0;
        for (uint256 j; j < 5; ++j) if (seats[j] == staller) mode[j] = Mode.Lazy; // an outlier on both
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 100);
        int256 attacker = net(junk) + net(staller);
        _json("staller_with_a_minority_of_seats", attacker);
        (ICoDreamMarket.Status st,) = status(id, 1);
        assertTrue(st == ICoDreamMarket.Status.Rejected, "the junk is judged, not stalled");
        assertLt(attacker, 0, "the staller's junk profited");
        assertBooks();
    }

    function _count(address[] memory xs, address who) internal pure returns (uint256 c) {
        for (uint256 i; i < xs.length; ++i) if (xs[i] == who) ++c;
    }

    /// the only staker unbonds before the draw: no committee, a refund for everyone
    function test_Attack_OnlyStakerUnbondsBeforeTheDraw() public {
        address staker = _verifiers(10, 1, 1 ether)[0];
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        address[] memory junk = _group(300, 9);
        _commit(actor(100), id, 0);
        for (uint256 i; i < 9; ++i) _commit(junk[i], id, 1 + i);
        toEval(id);
        revealEvalAs(id, 0);
        vm.prank(staker);
        reg.requestUnbond();
        vm.roll(block.number + 1);
        vm.expectRevert(ICoDreamMarket.NoEligibleStake.selector);
        m.requestDraw(id);
        vm.warp(uint256(m.getTask(id).evalRevealEnd) + P.drawTimeout + 1);
        settleAll(id, 500);
        for (uint256 i; i < 9; ++i) _reclaim(junk[i], id, 1 + i, 1 + i);
        int256 attacker = net(staker) + netOf(junk);
        _json("only_staker_unbonds_before_the_draw", attacker);
        assertLe(attacker, 0, "junk harvested a round with no committee");
        assertEq(m.claimable(actor(0)), 1 ether, "the owner who did its part is refunded");
        assertBooks();
    }

    // ------------------------------------------------------------------ family 2: parameters
    /// windows below the floor are refused; at the floor every party has an hour
    function test_Attack_OneSecondScoreRevealWindow() public {
        _verifiers(10, 5, 1 ether);
        vm.deal(actor(0), 10 ether);
        for (uint256 w; w < 5; ++w) {
            uint32[5] memory short = W;
            short[w] = 1;
            vm.prank(actor(0));
            vm.expectRevert(abi.encodeWithSelector(ICoDreamMarket.BadWindow.selector, w, 1, P.minWindow,
                w == 0 ? P.maxCommitWindow : w == 1 ? P.maxEvalWindow : P.maxLockWindow));
            m.createTask{value: 1 ether}("bafyspec", evalCommitment(actor(0)), ACC, BOND, 64, 5, 100, 150, 1000, short);
        }
        uint256 id = _task(actor(0), 1 ether, 64, 5); // the shortest windows allowed: one hour each
        address[] memory sybils = _group(300, 45);
        for (uint256 i; i < 5; ++i) _commit(actor(100 + i), id, i);
        for (uint256 i; i < 45; ++i) _commit(sybils[i], id, 5 + i);
        toEval(id);
        revealEvalAs(id, 0);
        draw(id);
        for (uint256 i; i < 5; ++i) _reveal(actor(100 + i), id, i, i);
        for (uint256 i; i < 45; ++i) _reveal(sybils[i], id, 5 + i, 5 + i);
        toScoreCommit(id);
        for (uint256 s; s < 5; ++s) truth[s] = 6000;
        for (uint256 s = 5; s < 50; ++s) truth[s] = -200;
        scoreRound(id); // every seat reveals within its hour
        toSettlement(id);
        settleAll(id, 500);
        int256 attacker = net(actor(0)) + netOf(sybils);
        int256 verifiers = netOf(_group(10, 5));
        _json("short_windows_with_sybils", attacker);
        assertLt(attacker, 0, "a short window paid its owner");
        assertTrue(verifiers > 0, "the verifiers were paid for their work");
        assertBooks();
    }

    /// a reveal window nobody can reveal in is refused; bonds never reach an owner
    function test_Attack_OneSecondRevealWindow() public {
        _verifiers(10, 5, 1 ether);
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        for (uint256 i; i < 10; ++i) _commit(actor(100 + i), id, i);
        toEval(id);
        revealEvalAs(id, 0);
        draw(id);
        for (uint256 i; i < 5; ++i) _reveal(actor(100 + i), id, i, i); // five miss the (hour-long) window
        toScoreCommit(id);
        for (uint256 s; s < 10; ++s) truth[s] = 5000;
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 500);
        _json("owner_keeps_unrevealed_bonds", net(actor(0)));
        assertLe(net(actor(0)), -1 ether, "the owner got bonds or bounty back");
        assertBooks();
    }

    /// an eval set with shuffled labels fails the teacher-accuracy check: the owner is faulty
    function test_Attack_ShuffledLabelEval() public {
        _verifiers(10, 5, 1 ether);
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        for (uint256 i; i < 10; ++i) _commit(actor(100 + i), id, i);
        toEval(id);
        revealEvalAs(id, 0);
        draw(id);
        for (uint256 i; i < 10; ++i) _reveal(actor(100 + i), id, i, i);
        toScoreCommit(id);
        evalVote[0] = Scores.EVAL_FAILED; // measured accuracy ~ chance, far from the declared 95 %
        for (uint256 s; s < 10; ++s) truth[s] = Scores.NO_EVAL; // no eval set the seats judged OK
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 500);
        _json("shuffled_label_eval", net(actor(0)));
        assertTrue(m.owners(id)[0].verdict == ICoDreamMarket.Verdict.Faulty, "faulty owner");
        assertLe(net(actor(0)), -1 ether, "a shuffled-label eval set got the dreams for less than the bounty");
        for (uint256 i; i < 10; ++i) assertEq(net(actor(100 + i)), 0, "unjudged miners get their bonds back");
        assertBooks();
    }

    // ------------------------------------------------------------------ family 3: steering a verdict
    /// a builder with 20 % of the blocks and 20 % of the stake censors the draw until it lands in
    /// a block whose prevrandao gives it a majority of its junk's seats; an appeal follows
    function test_Attack_BuilderSeedGrinding() public {
        address attacker = actor(10);
        _verifiers(10, 5, 1 ether); // attacker: 20 % of the stake
        uint256 id = _task(actor(0), 1 ether, 32, 5);
        for (uint256 i; i < 5; ++i) _commit(actor(100 + i), id, i);
        address sybil = actor(301); // the attacker's miner address
        uint256 junk = _commit(sybil, id, 5);
        toEval(id);
        revealEvalAs(id, 0);
        m.requestDraw(id);
        uint256 seedBlock = m.getTask(id).seedBlock;
        vm.roll(seedBlock);
        vm.setBlockhash(seedBlock - 1, keccak256("whatever the builder makes its hash")); // no effect in v3
        uint256 tries;
        bool captured;
        for (uint256 b = seedBlock; b <= seedBlock + m.DRAW_WINDOW_BLOCKS(); ++b) {
            vm.roll(b);
            bytes32 randao = keccak256(abi.encode("beacon", b)); // nobody's choice
            bool attackersBlock = b % 5 == 0; // f = 20 %
            captured = _junkSeats(seatsFor(id, randao), attacker, junk, 32) >= 3;
            ++tries;
            if (attackersBlock && !captured) continue; // censored: the keepers' call waits a block
            vm.prevrandao(randao);
            m.drawCommittee(id);
            break;
        }
        (address[] memory seats,,) = lens.getSeats(id);
        for (uint256 i; i < 5; ++i) _reveal(actor(100 + i), id, i, i);
        _reveal(sybil, id, junk, 5);
        toScoreCommit(id);
        for (uint256 s; s < 5; ++s) truth[s] = 6000;
        truth[junk] = 0;
        int32[][] memory vs = new int32[][](32);
        for (uint256 j; j < 32; ++j) {
            vs[j] = vectorOf(id, j);
            if (seats[j] != attacker) continue;
            uint256[] memory subs = lens.assigned(id, j);
            for (uint256 i; i < subs.length; ++i) if (subs[i] == junk) vs[j][1 + i] = 10_000;
        }
        scoreVectors(id, vs);
        CoDreamLens.Judgement memory jd = lens.judge(id, junk);
        if (jd.status == ICoDreamMarket.Status.Accepted) _appealAndOverturn(id, junk, attacker);
        toSettlement(id);
        settleAll(id, 500);
        int256 a = net(attacker) + net(sybil);
        log(string.concat("grind: ", _u(tries), " block(s); captured: ", captured ? "yes" : "no"));
        _json("builder_seed_grinding", a);
        (ICoDreamMarket.Status st,) = status(id, junk);
        assertTrue(st != ICoDreamMarket.Status.Accepted, "the junk was accepted");
        assertLt(a, 0, "a builder ground the seed into an accepted junk submission");
        assertBooks();
    }

    function _junkSeats(address[] memory seats, address who, uint256 s, uint256 k) internal pure returns (uint256 c) {
        for (uint256 d; d < 5; ++d) if (seats[(s + d) % k] == who) ++c;
    }

    /// an honest verifier appeals; an appeal committee drawn from an honest block overturns
    function _appealAndOverturn(uint256 id, uint256 s, address attacker) internal {
        address honest = actor(11);
        uint256 a = appealAs(honest, id, s);
        _paid(honest, ap.depositFor(id));
        address[] memory seats = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](seats.length);
        bool[] memory silent = new bool[](seats.length);
        for (uint256 j; j < seats.length; ++j) scores[j] = seats[j] == attacker ? int32(10_000) : int32(0);
        scoreAppeal(id, a, scores, silent);
        resolveAll(id, a);
    }

    /// the owner stakes 90 % of the total one block before the request: its stake is still warming up
    function test_Attack_LateStakerOwner() public {
        _verifiers(10, 3, 1 ether);
        address owner = actor(0);
        uint256 id = _task(owner, 1 ether, 5, 5);
        for (uint256 i; i < 5; ++i) _commit(actor(100 + i), id, i);
        toEval(id);
        revealEvalAs(id, 0);
        stakeAs(owner, 27 ether);
        _paid(owner, 27 ether); // comes back with its stake (net(): stake change)
        vm.roll(block.number + 1);
        vm.expectRevert();
        reg.activate(owner); // WarmingUp: it counts in draws only after 21 days
        m.requestDraw(id);
        address[] memory seats = draw(id);
        assertEq(_count(seats, owner), 0, "the late stake holds no seat");
        for (uint256 i; i < 5; ++i) _reveal(actor(100 + i), id, i, i);
        toScoreCommit(id);
        for (uint256 s; s < 5; ++s) truth[s] = 5000;
        scoreRound(id);
        toSettlement(id);
        settleAll(id, 500);
        int256 o = net(owner);
        _json("late_staker_owner", o);
        assertLt(o, 0, "a late staker owner got the dreams and its money back");
        assertBooks();
    }

    /// a bribe contract pays 3 of 5 seats (30 % of the stake) on getScores for voting the briber's
    /// junk 10,000; an honest seat appeals; the appeal committee overturns
    function test_Attack_BribedMajorityViaGetScores() public {
        _verifiers(10, 10, 1 ether);
        uint256 id = _task(actor(0), 1 ether, 5, 5);
        address briber = actor(300);
        _commit(actor(100), id, 0);
        _commit(briber, id, 1);
        toEval(id);
        revealEvalAs(id, 0);
        m.requestDraw(id);
        vm.roll(m.getTask(id).seedBlock);
        bytes32 randao = nextRandao();
        while (!_bribable(seatsFor(id, randao))) randao = nextRandao();
        address[] memory seats = drawWith(id, randao); // seats 0-2: three verifiers not holding 3-4
        _reveal(actor(100), id, 0, 0);
        _reveal(briber, id, 1, 1);
        toScoreCommit(id);
        vm.deal(briber, briber.balance + 0.09 ether);
        vm.prank(briber);
        Briber b = new Briber{value: 0.09 ether}(lens, 0.03 ether);
        _paid(briber, 0.09 ether);
        truth[0] = 6000;
        truth[1] = 0;
        int32[][] memory v = new int32[][](5);
        for (uint256 j; j < 5; ++j) {
            v[j] = vectorOf(id, j);
            if (j < 3) v[j][2] = 10_000; // vector: [owner verdict, s0, s1]
        }
        scoreVectors(id, v);
        for (uint256 j; j < 3; ++j) {
            vm.prank(seats[j]);
            b.claim(id, j, 2, 10_000);
        }
        CoDreamLens.Judgement memory jd = lens.judge(id, 1);
        assertTrue(jd.status == ICoDreamMarket.Status.Accepted, "the bribed majority accepted the junk");
        address appellant = seats[3];
        _paid(appellant, ap.depositFor(id));
        uint256 a = appealAs(appellant, id, 1);
        address[] memory as_ = drawAppealWith(id, a, nextRandao());
        int32[] memory scores = new int32[](as_.length);
        for (uint256 j; j < as_.length; ++j) scores[j] = _isAny(as_[j], seats, 3) ? int32(10_000) : int32(0);
        scoreAppeal(id, a, scores, new bool[](as_.length));
        resolveAll(id, a);
        assertTrue(ap.getAppeal(id, a).outcome == ICoDreamAppeals.Outcome.Overturned, "overturned");
        toSettlement(id);
        settleAll(id, 500);
        int256 bribed = net(seats[0]) + net(seats[1]) + net(seats[2]) + 0.09 ether; // + the bribes they got
        _json("briber_via_get_scores", net(briber));
        _json("bribed_verifiers", bribed);
        (ICoDreamMarket.Status st,) = status(id, 1);
        assertTrue(st == ICoDreamMarket.Status.Rejected, "the junk ends rejected");
        assertLt(net(briber), 0, "a bribe paid on getScores bought an accepted junk submission");
        assertLt(bribed, 0, "taking the bribe paid");
        assertTrue(net(appellant) > 0, "the appellant was paid for being right");
        assertBooks();
    }

    function _bribable(address[] memory seats) internal pure returns (bool) {
        for (uint256 i; i < 3; ++i) {
            for (uint256 j; j < 5; ++j) if (i != j && seats[i] == seats[j]) return false;
        }
        return true;
    }

    function _isAny(address x, address[] memory xs, uint256 n) internal pure returns (bool) {
        for (uint256 i; i < n; ++i) if (xs[i] == x) return true;
        return false;
    }
}
