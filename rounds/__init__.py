"""Orchestration: what drives several roles together — a devnet's processes, whole network rounds
(the demo, the co-owned round, the adversarial round) and the benchmarks. It sits between the
roles and the app layer: it imports the core, `ipfs/` and the roles; `cli/` imports it; nothing
below imports it. Child processes it starts run the CLI (:func:`rounds.procs.cli_argv`)."""
