#!/bin/sh
# Install the solc-js shim where py-solc-x and brownie look for solc 0.8.28, and
# register brownie's `codream-sepolia` network (RPC URL from $SEPOLIA_RPC_URL).
# Idempotent and cheap: rewrites nothing that is already right.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir="${SOLCX_BINARY_PATH:-$HOME/.solcx}"
target="$dir/solc-v0.8.28"
want=$(printf '#!/bin/sh\nexec node "%s/scripts/solc-shim.js" "$@"\n' "$here")
mkdir -p "$dir"
if [ ! -f "$target" ] || [ "$(cat "$target")" != "$want" ]; then
  printf '%s\n' "$want" > "$target"
  chmod +x "$target"
  echo "installed solc shim: $target -> $here/scripts/solc-shim.js"
fi
"$target" --version | grep -q "Version: 0.8.28" || { echo "solc shim does not answer --version" >&2; exit 1; }
