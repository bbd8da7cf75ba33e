"""Golden outputs for the CLI tests: what ``saved_model_cli`` prints (run by
saved_model_cli_golden.py in one TensorFlow process) and the matching ``smrt`` argv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

GOLDEN_SCRIPT = Path(__file__).with_name("saved_model_cli_golden.py")


def saved_model_cli_outputs(requests: list[tuple[str, str, dict[str, object]]]) -> list[str]:
    """What saved_model_cli printed for each (command, model_dir, flags), from one TF process."""
    result = subprocess.run(
        [sys.executable, str(GOLDEN_SCRIPT)], input=json.dumps(requests),
        capture_output=True, text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def cli_argv(command: str, model_dir: str, combo: dict[str, object]) -> list[str]:
    argv = [command, "--dir", model_dir]
    for flag, value in combo.items():
        argv += [f"--{flag}"] if value is True else [f"--{flag}", str(value)]
    return argv
