"""``smrt run``: feed inputs to a signature and print its outputs as ``saved_model_cli run`` does.
``--function PATH`` runs a saved function of the object tree instead (``model.root.PATH``), with
the inputs as its keyword arguments; its outputs print under their nested keys.

Inputs come from ``--inputs`` (.npy/.npz files; pickles only with ``--allow_pickle``),
``--input_exprs`` (Python literals and a few NumPy constructors, parsed and never evaluated:
see :mod:`smrt.cli.input_exprs`) and ``--input_examples`` (lists of feature dicts, encoded as
tf.Example). For the same key, examples win over exprs, which win over files. As with
saved_model_cli, values are cast to the signature's dtype.
"""

from __future__ import annotations

import argparse
import os
import re
from typing import Any

import numpy as np

import smrt
from smrt import tf_example
from smrt.objects import Function
from smrt.saved_model import SignatureInfo

from .backend_flag import add_backend_argument
from .common import signature_of, tags_from_flag
from .errors import CliError
from .input_exprs import evaluate
from .op_library_flag import add_op_library_argument
from .op_policy_flag import add_op_policy_argument

_FILE_WITH_KEY = re.compile(r"([^=]+)=([^\[\]]+)\[([^\[\]]+)\]$")
_FILE = re.compile(r"([^=]+)=([^\[\]]+)$")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "run", help="run a signature on inputs and print (or save) its outputs",
        description="Run a SignatureDef, as `saved_model_cli run` does.",
    )
    parser.add_argument("--dir", required=True, help="the SavedModel directory")
    parser.add_argument("--tag_set", required=True, help="the MetaGraph's tags, comma-separated")
    parser.add_argument("--signature_def", help="the SignatureDef key to run")
    parser.add_argument("--function", metavar="PATH",
                        help="run this saved function of the object tree instead of a signature "
                             "('mutate', 'layer.__call__'); the inputs are its keyword arguments")
    parser.add_argument("--inputs", default="",
                        help="'key=file.npy;key2=file.npz[name]': inputs from NumPy files")
    parser.add_argument("--input_exprs", default="",
                        help="'key=[[1],[2]];key2=np.ones((2,3))': inputs as expressions")
    parser.add_argument("--input_examples", default="",
                        help="'key=[{\"x\":[1.5]},{\"x\":[3.5]}]': tf.Example inputs")
    parser.add_argument("--outdir", help="save each output as OUTDIR/<key>.npy")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--allow_pickle", action="store_true",
                        help="allow --inputs files that hold pickled objects (runs their code!)")
    add_op_policy_argument(parser)
    add_op_library_argument(parser)
    add_backend_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not (args.inputs or args.input_exprs or args.input_examples):
        raise CliError("at least one of --inputs, --input_exprs or --input_examples is required")
    if (args.signature_def is None) == (args.function is None):
        raise CliError("give one of --signature_def or --function")
    tags = tags_from_flag(args.tag_set)
    if args.function is not None:
        return _run_function(args, tags)
    sig_info = signature_of(smrt.inspect(args.dir).meta_graph(tags), args.signature_def)
    feed = {**inputs_from_files(args.inputs, args.allow_pickle),
            **_parse_pairs(args.input_exprs, "--input_exprs", evaluate),
            **_parse_pairs(args.input_examples, "--input_examples", _examples)}
    feed = _cast_to_signature(feed, sig_info)
    # Refused before running.
    paths = _output_paths(args.outdir, list(sig_info.outputs), args.overwrite)

    with smrt.load(args.dir, tags, op_policy=args.op_policy,
                   op_libraries=args.op_library, backend=args.backend) as model:
        outputs = model.signatures[args.signature_def](**feed)
    _print_outputs(outputs, paths)
    return 0


def _print_outputs(outputs: dict[str, Any], paths: dict[str, str]) -> None:
    for key in sorted(outputs):
        print(f"Result for output key {key}:\n{outputs[key]}")
        if paths:
            np.save(paths[key], outputs[key])
            print(f"Output {key} is saved to {paths[key]}")


def _run_function(args: argparse.Namespace, tags: list[str]) -> int:
    """--function PATH: the inputs are keyword arguments; arrays from files or expressions are
    handed over as Python values, so they convert to the traced dtypes as literals do."""
    feed = {**inputs_from_files(args.inputs, args.allow_pickle),
            **_parse_pairs(args.input_exprs, "--input_exprs", evaluate),
            **_parse_pairs(args.input_examples, "--input_examples", _examples)}
    kwargs = {key: value.tolist() if isinstance(value, np.ndarray) and value.dtype.kind in "biufc"
              else value for key, value in feed.items()}
    # Saved functions run on TensorFlow whatever --backend says, so it is not passed on.
    with smrt.load(args.dir, tags, op_policy=args.op_policy,
                   op_libraries=args.op_library) as model:
        function = _function_at(model, args.function)
        result = function(**kwargs)
        if result is None:
            print(f"{args.function} returned no outputs.")
            return 0
        outputs = _flat_outputs(result)
        paths = _output_paths(args.outdir, list(outputs), args.overwrite)
        _print_outputs(outputs, paths)
    return 0


def _function_at(model: smrt.Model, path: str) -> Function:
    """The saved function at ``path`` below the root ('mutate', 'layer.__call__')."""
    try:
        obj: Any = model.root
    except smrt.NotFoundError as e:
        raise CliError(f"--function {path!r}: {e}") from None
    parts = path.split(".")
    if parts[:1] == ["root"] and len(parts) > 1:
        parts = parts[1:]
    for part in parts:
        try:
            obj = getattr(obj, part) if part else None
        except AttributeError as e:
            raise CliError(f"--function {path!r}: {e}") from None
        if obj is None:
            raise CliError(f"--function {path!r} is not a dotted path of saved children")
    if not isinstance(obj, Function):
        raise CliError(f"--function {path!r} is {obj!r}, not a saved function")
    return obj


def _flat_outputs(result: Any, prefix: str = "") -> dict[str, Any]:
    """A function's nested outputs keyed by their path ('output_0' for a single tensor; dict
    keys and sequence positions joined by '.')."""
    if isinstance(result, dict):
        items = [(str(key), value) for key, value in result.items()]
    elif isinstance(result, (tuple, list)):
        items = [(str(i), value) for i, value in enumerate(result)]
    else:
        return {prefix or "output_0": result}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(_flat_outputs(value, f"{prefix}.{key}" if prefix else key))
    return flat


def inputs_from_files(spec: str, allow_pickle: bool) -> dict[str, Any]:
    """--inputs 'key=file.npy;key2=file.npz[name]'."""
    feed: dict[str, Any] = {}
    for item in filter(None, spec.split(";")):
        match = _FILE_WITH_KEY.match(item) or _FILE.match(item)
        if not match:
            raise CliError(f"--inputs {item!r} is not '<key>=<file>' or '<key>=<file>[<name>]'")
        key, filename = match.group(1), match.group(2)
        name = match.group(3) if match.re is _FILE_WITH_KEY else None
        feed[key] = _load_file(filename, name, allow_pickle)
    return feed


def _load_file(filename: str, name: str | None, allow_pickle: bool) -> Any:
    try:
        data = np.load(filename, allow_pickle=allow_pickle)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise CliError(f"{filename} holds pickled data, which can run arbitrary code; "
                           "pass --allow_pickle if you trust it") from None
        raise CliError(f"cannot read {filename}: {e}") from None
    except OSError as e:
        raise CliError(f"cannot read {filename}: {e.strerror or e}") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            if name is None:
                if len(data.files) != 1:
                    raise CliError(f"{filename} holds {len(data.files)} arrays "
                                   f"({', '.join(data.files)}): name one as {filename}[name]")
                name = data.files[0]
            if name not in data.files:
                raise CliError(f"{filename} has no array {name!r}; it has: {', '.join(data.files)}")
            return data[name]
    if name is not None and isinstance(data, dict):  # a trusted pickle of a dict
        if name not in data:
            raise CliError(f"{filename} has no entry {name!r}")
        return data[name]
    return data


def _parse_pairs(spec: str, flag: str, parse: Any) -> dict[str, Any]:
    """'key=value;key2=value2' with each value parsed by `parse`."""
    feed: dict[str, Any] = {}
    for item in filter(None, spec.split(";")):
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{flag} {item!r} is not '<key>=<value>'")
        feed[key.strip()] = parse(text)
    return feed


def _examples(text: str) -> np.ndarray:
    rows = evaluate(text)
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise CliError(f"--input_examples value {text!r} must be a list of feature dicts")
    return tf_example.encode_batch(rows)


def _cast_to_signature(feed: dict[str, Any], sig: SignatureInfo) -> dict[str, Any]:
    unknown = sorted(set(feed) - set(sig.inputs))
    if unknown:
        raise CliError(f"{', '.join(map(repr, unknown))} is not an input of {sig.key!r}; "
                       f"its inputs are: {', '.join(sig.inputs)}")
    cast = {}
    for key, value in feed.items():
        dtype = sig.inputs[key].numpy_dtype
        try:
            cast[key] = value if dtype.kind == "O" else np.asarray(value, dtype=dtype)
        except (TypeError, ValueError, OverflowError) as e:
            raise CliError(f"input {key!r} cannot be {sig.inputs[key].dtype}: {e}") from None
    return cast


def _output_paths(outdir: str | None, keys: Any, overwrite: bool) -> dict[str, str]:
    if not outdir:
        return {}
    for key in keys:  # keys come from the model file: never let one leave outdir
        if "\0" in key or os.sep in key or (os.altsep and os.altsep in key):
            raise CliError(f"output key {key!r} is not a plain file name; refusing to save it "
                           "under --outdir")
    paths = {key: os.path.join(outdir, key + ".npy") for key in keys}
    links = [p for p in paths.values() if os.path.islink(p)]
    if links:  # np.save would write wherever the link points
        raise CliError(f"{', '.join(links)} is a symbolic link; refusing to write through it")
    existing = [p for p in paths.values() if os.path.exists(p)]
    if existing and not overwrite:
        raise CliError(f"{', '.join(existing)} already exist(s); add --overwrite to replace")
    os.makedirs(outdir, exist_ok=True)
    return paths
