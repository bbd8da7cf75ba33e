"""What ``saved_model_cli show`` and ``run`` print, for the CLI's golden tests.

Usage: ``python3 tests/saved_model_cli_golden.py < requests.json > answers.json`` where the
request is a list of ``[command, model_dir, flags]`` (command "show" or "run"; flags as a dict
of saved_model_cli flag names to values, True for a bare flag) and the answer is the list of
texts printed. Runs saved_model_cli's own functions in this one process with its flags set per
request, so TensorFlow is imported once.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

with contextlib.redirect_stderr(io.StringIO()):
    from absl import flags
    from tensorflow.python.tools import saved_model_cli


def saved_model_cli_output(command: str, model_dir: str, options: dict[str, object]) -> str:
    flags.FLAGS.unparse_flags()
    argv = ["saved_model_cli", "--dir", model_dir]
    for name, value in options.items():
        argv += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    flags.FLAGS(argv)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        getattr(saved_model_cli, command)()
    return out.getvalue()


def main() -> None:
    requests = json.load(sys.stdin)
    json.dump([saved_model_cli_output(c, d, o) for c, d, o in requests], sys.stdout)


if __name__ == "__main__":
    main()
