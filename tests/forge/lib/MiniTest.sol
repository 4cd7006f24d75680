// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// The few forge cheatcodes and assertions our tests use. forge-std is a git dependency
/// (no npm release of current versions, no network here), so this file stands in for it;
/// forge discovers test_/testFuzz_/invariant_ functions and targetContracts() by name.
interface Vm {
    struct Gas {
        uint64 gasLimit;
        uint64 gasTotalUsed;
        uint64 gasMemoryUsed;
        int64 gasRefunded;
        uint64 gasRemaining;
    }

    function warp(uint256) external;
    function roll(uint256) external;
    function deal(address, uint256) external;
    function prank(address) external;
    function startPrank(address) external;
    function stopPrank() external;
    function expectRevert(bytes4) external;
    function expectRevert(bytes calldata) external;
    function expectRevert() external;
    function setBlockhash(uint256, bytes32) external;
    function assume(bool) external pure;
    function addr(uint256) external pure returns (address);
    /// gas of the last call made by the test contract (with --isolate: the whole transaction's)
    function lastCallGas() external view returns (Gas memory);
    /// marks an account's storage cold again, so a measured call pays cold-read prices
    function cool(address) external;
    /// deploys an artifact by name ("File.sol:Contract") without compiling it into the test
    function deployCode(string calldata) external returns (address);
    /// the same with ABI-encoded constructor arguments
    function deployCode(string calldata, bytes calldata) external returns (address);
    /// sets block.prevrandao (the RANDAO mix of the block) from now on
    function prevrandao(bytes32) external;
    /// the next call is expected to emit an event matching the next emitted one (checks: topics 1-3, data)
    function expectEmit(bool, bool, bool, bool) external;
    function getBlockNumber() external view returns (uint256);
}

abstract contract MiniTest {
    /// forge reads `targetSelectors()` to restrict the invariant fuzzer to these functions
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
    address internal constant CONSOLE = 0x000000000000000000636F6e736F6c652e6c6f67;
    bool public IS_TEST = true;
    address[] private _targets;
    FuzzSelector[] private _selectors;

    function targetContract(address a) internal { _targets.push(a); }

    function targetSelector(FuzzSelector memory s) internal { _selectors.push(s); }

    function targetContracts() public view returns (address[] memory) { return _targets; }

    function targetSelectors() public view returns (FuzzSelector[] memory) { return _selectors; }

    function assertEq(uint256 a, uint256 b, string memory why) internal pure {
        if (a != b) revert(string.concat(why, ": ", _u(a), " != ", _u(b)));
    }

    function assertEq(int256 a, int256 b, string memory why) internal pure {
        if (a != b) revert(string.concat(why, ": ", _i(a), " != ", _i(b)));
    }

    function assertEq(address a, address b, string memory why) internal pure {
        if (a != b) revert(why);
    }

    function assertTrue(bool c, string memory why) internal pure {
        if (!c) revert(why);
    }

    function assertLe(uint256 a, uint256 b, string memory why) internal pure {
        if (a > b) revert(string.concat(why, ": ", _u(a), " > ", _u(b)));
    }

    function assertLe(int256 a, int256 b, string memory why) internal pure {
        if (a > b) revert(string.concat(why, ": ", _i(a), " > ", _i(b)));
    }

    function assertLt(int256 a, int256 b, string memory why) internal pure {
        if (a >= b) revert(string.concat(why, ": ", _i(a), " >= ", _i(b)));
    }

    function assertGt(uint256 a, uint256 b, string memory why) internal pure {
        if (a <= b) revert(string.concat(why, ": ", _u(a), " <= ", _u(b)));
    }

    function bound(uint256 x, uint256 lo, uint256 hi) internal pure returns (uint256) {
        return lo + x % (hi - lo + 1);
    }

    /// prints a line under "Logs:" (forge test -vv)
    function log(string memory s) internal view {
        (bool ok,) = CONSOLE.staticcall(abi.encodeWithSignature("log(string)", s));
        ok;
    }

    function _u(uint256 v) internal pure returns (string memory s) {
        if (v == 0) return "0";
        while (v != 0) {
            s = string.concat(string(abi.encodePacked(bytes1(uint8(48 + v % 10)))), s);
            v /= 10;
        }
    }

    function _i(int256 v) internal pure returns (string memory) {
        return v < 0 ? string.concat("-", _u(uint256(-v))) : _u(uint256(v));
    }
}
