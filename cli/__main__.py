"""`python -m cli ...` is `codream ...` (how the CLI starts its own child processes)."""
from .app import main

main()
