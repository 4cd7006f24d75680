#!/bin/sh
# Register CoDream's brownie networks once (brownie keeps them in ~/.brownie):
#   codream-sepolia   Sepolia, RPC URL from $SEPOLIA_RPC_URL (environment or .env)
#   codream-rehearsal a long-lived local anvil driven like a testnet ($CODREAM_RPC_URL)
set -eu
list=$(brownie networks list 2>/dev/null)
echo "$list" | grep -q "codream-sepolia" || \
  brownie networks add Ethereum codream-sepolia host='$SEPOLIA_RPC_URL' chainid=11155111 \
    name="Sepolia (CoDream, RPC from SEPOLIA_RPC_URL)" >/dev/null
echo "$list" | grep -q "codream-rehearsal" || \
  brownie networks add Development codream-rehearsal host='$CODREAM_RPC_URL' chainid=31337 \
    name="CoDream testnet rehearsal" >/dev/null 2>&1 || \
  brownie networks add Ethereum codream-rehearsal host='$CODREAM_RPC_URL' chainid=31337 \
    name="CoDream testnet rehearsal" >/dev/null
