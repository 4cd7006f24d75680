"""The application layer: the `codream` command line, the devnet, the demo, the dapp server,
the deployer and the benchmarks. It may import anything; nothing imports it."""
