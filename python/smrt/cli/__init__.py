"""The ``smrt`` command: a faster, safer drop-in for ``saved_model_cli``.

Subcommands take saved_model_cli's flags (``--dir``, ``--tag_set``, ``--signature_def``...), so
scripts can swap the command name. Each subcommand lives in its own module and registers itself
through ``add_parser(subparsers)``, setting ``func`` to a function of the parsed arguments that
returns an exit code.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from smrt.errors import Error

from . import bench, run, scan, serve, show
from .errors import CliError

SUBCOMMANDS = (show, run, scan, bench, serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smrt",
        description="Inspect and run TensorFlow SavedModels through libtensorflow's C API.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback when a command fails")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--cmake-dir", action=_PrintAndExit, text=cmake_dir,
                        help="print the directory of smrt's CMake package (for CMAKE_PREFIX_PATH "
                             "or smrt_DIR) and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in SUBCOMMANDS:
        module.add_parser(subparsers)
    return parser


def cmake_dir() -> str:
    """Where ``find_package(smrt CONFIG)`` finds smrt: the installed package's share/cmake."""
    return str(Path(__file__).resolve().parent.parent / "share" / "cmake" / "smrt")


class _PrintAndExit(argparse.Action):
    """``--cmake-dir``: like ``--version``, prints a value and exits without a subcommand."""

    def __init__(self, option_strings: list[str], dest: str, text: Callable[[], str],
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)
        self.text = text

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        print(self.text())
        parser.exit()


def _version() -> str:
    from smrt import __version__

    return f"smrt {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code. Errors print one line on stderr."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (Error, CliError, OSError) as e:
        if args.debug:
            raise
        print(f"smrt {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
