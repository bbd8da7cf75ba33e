"""``smrt show``: what a SavedModel holds, printed as ``saved_model_cli show`` prints it.

Reads saved_model.pb only; libtensorflow is never loaded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

from smrt.saved_model import MetaGraphInfo, SavedModelInfo, SignatureInfo, TensorSpec, inspect

from .errors import CliError


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "show", help="show tag-sets, signatures and their inputs and outputs",
        description="Show what a SavedModel holds, as `saved_model_cli show` does.",
    )
    parser.add_argument("--dir", required=True, help="the SavedModel directory")
    parser.add_argument("--all", action="store_true", help="show every MetaGraph's SignatureDefs")
    parser.add_argument("--tag_set", help="the MetaGraph's tags, comma-separated (e.g. serve,gpu)")
    parser.add_argument("--signature_def", help="the SignatureDef key to show")
    parser.add_argument("--list_ops", action="store_true",
                        help="list the ops the MetaGraph uses (graph and function library)")
    parser.add_argument("--json", action="store_true", help="print the same information as JSON")
    parser.set_defaults(func=run)


def tags_from_flag(tag_set: str) -> list[str]:
    """saved_model_cli's --tag_set parsing: comma-separated, blanks dropped."""
    tags = [t.strip() for t in tag_set.split(",") if t.strip()]
    if not tags:
        raise CliError("--tag_set must name at least one tag")
    return tags


def run(args: argparse.Namespace) -> int:
    info = inspect(args.dir, ops=args.list_ops or args.all)
    if args.json:
        print(json.dumps(as_json(info, args), indent=2))
        return 0
    for line in text_lines(info, args):
        print(line)
    return 0


def text_lines(info: SavedModelInfo, args: argparse.Namespace) -> Iterator[str]:
    if args.all:
        yield from _all(info)
    elif args.tag_set is None:
        if args.list_ops:
            yield "--list_ops must be paired with a tag-set or with --all."
        yield "The given SavedModel contains the following tag-sets:"
        for tags in sorted(list(meta.tags) for meta in info.meta_graphs):
            yield repr(", ".join(sorted(tags)))
    else:
        meta = info.meta_graph(tags_from_flag(args.tag_set))
        if args.list_ops:
            yield _ops_line(meta)
        if args.signature_def is None:
            yield ("The given SavedModel MetaGraphDef contains SignatureDefs with the "
                   "following keys:")
            for key in sorted(meta.signatures):
                yield f'SignatureDef key: "{key}"'
        else:
            yield from _signature(_signature_of(meta, args.signature_def), indent=0)


def _signature_of(meta: MetaGraphInfo, key: str) -> SignatureInfo:
    try:
        return meta.signatures[key]
    except KeyError:
        raise CliError(
            f"no SignatureDef {key!r} in the MetaGraph with tags {list(meta.tags)}; "
            f"its SignatureDefs are: {', '.join(sorted(meta.signatures))}"
        ) from None


def _all(info: SavedModelInfo) -> Iterator[str]:
    for meta in sorted(info.meta_graphs, key=lambda m: list(m.tags)):
        yield ""
        yield (f"MetaGraphDef with tag-set: '{', '.join(meta.tags)}' "
               "contains the following SignatureDefs:")
        for key in sorted(meta.signatures):
            yield ""
            yield f"signature_def['{key}']:"
            yield from _signature(meta.signatures[key], indent=1)
        yield _ops_line(meta)


def _ops_line(meta: MetaGraphInfo) -> str:
    # saved_model_cli prints a Python set, in hash order; smrt sorts it.
    ops = "{" + ", ".join(repr(op) for op in meta.ops) + "}" if meta.ops else "set()"
    return f"The MetaGraph with tag set {list(meta.tags)!r} contains the following ops: {ops}"


def _signature(sig: SignatureInfo, indent: int) -> Iterator[str]:
    pad = "  " * indent
    yield f"{pad}The given SavedModel SignatureDef contains the following input(s):"
    for key, spec in sorted(sig.inputs.items()):
        yield f"{pad}  inputs['{key}'] tensor_info:"
        yield from _tensor_info(spec, pad)
    yield f"{pad}The given SavedModel SignatureDef contains the following output(s):"
    for key, spec in sorted(sig.outputs.items()):
        yield f"{pad}  outputs['{key}'] tensor_info:"
        yield from _tensor_info(spec, pad)
    yield f"{pad}Method name is: {sig.method_name}"


def _tensor_info(spec: TensorSpec, pad: str) -> Iterator[str]:
    yield f"{pad}      dtype: {spec.dtype_enum}"
    yield f"{pad}      shape: {_shape_text(spec.shape)}"
    yield f"{pad}      name: {spec.tensor_name}"


def _shape_text(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "unknown_rank"
    return "(" + ", ".join("-1" if d is None else str(d) for d in shape) + ")"


def as_json(info: SavedModelInfo, args: argparse.Namespace) -> Any:
    """The --json form: the same selection as the text, as plain data."""
    def spec(s: TensorSpec) -> dict[str, Any]:
        shape = None if s.shape is None else [-1 if d is None else d for d in s.shape]
        return {"dtype": s.dtype, "shape": shape, "name": s.tensor_name}

    def signature(sig: SignatureInfo) -> dict[str, Any]:
        return {
            "inputs": {k: spec(v) for k, v in sorted(sig.inputs.items())},
            "outputs": {k: spec(v) for k, v in sorted(sig.outputs.items())},
            "method_name": sig.method_name,
        }

    def meta_graph(meta: MetaGraphInfo) -> dict[str, Any]:
        out = {"tags": list(meta.tags),
               "signature_defs": {k: signature(v) for k, v in sorted(meta.signatures.items())}}
        if meta.ops is not None:
            out["ops"] = list(meta.ops)
        return out

    if args.all:
        return {"meta_graphs": [meta_graph(m) for m in info.meta_graphs]}
    if args.tag_set is None:
        return {"tag_sets": [list(m.tags) for m in info.meta_graphs]}
    meta = info.meta_graph(tags_from_flag(args.tag_set))
    selected: dict[str, Any] = {"tags": list(meta.tags)}
    if args.list_ops:
        selected["ops"] = list(meta.ops or ())
    if args.signature_def is None:
        selected["signature_defs"] = sorted(meta.signatures)
    else:
        selected["signature_def"] = {args.signature_def: signature(
            _signature_of(meta, args.signature_def))}
    return selected
