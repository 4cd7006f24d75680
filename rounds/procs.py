"""How orchestration starts its child processes: the CLI (`python -m cli ...`, which is
`codream ...`) with this interpreter, in the background, logging to a file, in its own session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from codream import config


def cli_argv(*args: str) -> list[str]:
    """The command line that runs this CLI in a child process (the same interpreter)."""
    return [sys.executable, "-m", "cli", *args]


def spawn(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start ``argv`` in the background, output to ``log``, in its own session."""
    full_env = {**os.environ, "CODREAM_HOME": str(config.home()), "PYTHONUNBUFFERED": "1", **(env or {})}
    out = open(log, "ab")
    return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env,
                            start_new_session=True)


def spawn_cli(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start ``codream ARGS`` in the background, output to ``log``, in its own session."""
    return spawn(cli_argv(*args), log, env)
