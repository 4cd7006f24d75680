#!/usr/bin/env node
// A `solc`-compatible command line over solc-js (npm `solc`), because no native
// solc can be installed on our build machines. It answers exactly what our three
// callers use:
//   --version                      (py-solc-x, brownie, forge)
//   --standard-json [--base-path P] [--include-path P]... [--allow-paths ...]
//                                  stdin: standard JSON input, stdout: standard JSON output
// Imports that are not in the input are read from disk relative to the base path,
// the include paths and the current directory (OpenZeppelin is remapped to
// node_modules/@openzeppelin by brownie-config.yaml and foundry.toml).
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require(path.join(__dirname, '..', 'node_modules', 'solc'));

const args = process.argv.slice(2);
const fullVersion = solc.version(); // e.g. 0.8.28+commit.7893614a.Emscripten.clang
const shortVersion = fullVersion.split('.Emscripten')[0];

if (args.includes('--version') || args.includes('-v')) {
  process.stdout.write('solc, the solidity compiler commandline interface\n');
  process.stdout.write(`Version: ${shortVersion}\n`);
  process.exit(0);
}

if (!args.includes('--standard-json')) {
  process.stderr.write(
    'codream solc shim: only --version and --standard-json are supported ' +
    `(got: ${args.join(' ') || 'no arguments'})\n`);
  process.exit(2);
}

const roots = [];
for (let i = 0; i < args.length; i++) {
  if ((args[i] === '--base-path' || args[i] === '--include-path') && args[i + 1]) {
    roots.push(args[++i]);
  } else if (args[i].startsWith('--base-path=') || args[i].startsWith('--include-path=')) {
    roots.push(args[i].split('=').slice(1).join('='));
  }
}
roots.push(process.cwd());

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : roots.map((r) => path.resolve(r, importPath));
  for (const file of candidates) {
    try {
      return { contents: fs.readFileSync(file, 'utf8') };
    } catch (_) { /* try the next root */ }
  }
  return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
}

const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  const input = Buffer.concat(chunks).toString('utf8');
  // solc-js prints ">>>" progress lines on stdout from some versions: keep stdout pure JSON
  const origLog = console.log;
  console.log = (...a) => process.stderr.write(a.join(' ') + '\n');
  const output = solc.compile(input, { import: findImports });
  console.log = origLog;
  process.stdout.write(output.split('\n').filter((l) => !l.startsWith('>>>')).join('\n'));
  process.stdout.write('\n');
});
