"""``smrt show``: what a SavedModel holds, printed as ``saved_model_cli show`` prints it.

Reads saved_model.pb only; libtensorflow is never loaded. ``--backend openvino`` reports which
signatures OpenVINO would run instead (it converts the model with OpenVINO, still without
libtensorflow).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from typing import Any

from smrt import _core
from smrt.library import load_openvino
from smrt.saved_model import (
    DTypeValue,
    MetaGraphInfo,
    SavedModelInfo,
    ShapeValue,
    SignatureInfo,
    TensorSpec,
    TensorSpecValue,
    inspect,
    tf_dims,
)

from .common import set_text, shape_text, signature_of, tags_from_flag


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
                        help="list the ops the MetaGraph uses, as saved_model_cli counts them "
                             "(`smrt scan` checks every op that can run)")
    parser.add_argument("--json", action="store_true", help="print the same information as JSON")
    parser.add_argument("--backend", choices=("openvino",),
                        help="instead, say which signatures of the tag-set (default: serve) "
                             "this backend would run, and why TensorFlow would run the others")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.backend:
        support = backend_support(args.dir, tags_from_flag(args.tag_set or "serve"))
        if args.json:
            print(json.dumps(support, indent=2))
        else:
            for key, why_not in support.items():
                print(f"{key}: {args.backend}" if not why_not else f"{key}: tensorflow ({why_not})")
        return 0
    info = inspect(args.dir, ops=args.list_ops or args.all, functions=args.all)
    if args.json:
        print(json.dumps(as_json(info, args), indent=2))
        return 0
    for line in text_lines(info, args):
        print(line)
    if args.all:
        print(concrete_functions_text(info), end="")
    return 0


def backend_support(path: str, tags: list[str]) -> dict[str, str]:
    """Each signature's key -> "" if OpenVINO would run it, else why TensorFlow would."""
    load_openvino()
    return _core.openvino_support(os.fsencode(path), tags)


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
            yield from _signature(signature_of(meta, args.signature_def), indent=0)


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


def concrete_functions_text(info: SavedModelInfo) -> str:
    """saved_model_cli's "Concrete Functions:" section (its _show_defined_functions), printed
    after the --all listing, exactly: it starts with a newline and, when no function is listed,
    has no newline at its end. saved_model_cli loads the model with tf.saved_model.load to list
    them; smrt reads the same facts from object_graph_def. Where the load's outcome depends on
    more than the file, smrt assumes the load succeeds: it cannot tell a custom op TensorFlow
    lacks ("N/A (could not be listed due to the existence of custom ops in the SavedModel)"),
    nor other load failures (missing assets, unregistered Python classes), and it orders one
    function's concrete functions as if the uids TF's loader names them with all had the same
    number of digits."""
    if not any(meta.has_object_graph for meta in info.meta_graphs):
        return ""
    out = ["\nConcrete Functions:"]
    # tf.saved_model.load without tags reads a TF2 object graph only from a sole MetaGraph; the
    # TF1 path it falls back to needs tags when there are several, and raises.
    graph = info.meta_graphs[0].object_graph if len(info.meta_graphs) == 1 else None
    if graph is None or not graph.loadable:
        return out[0] + " N/A (could not be listed due to unknown reasons)\n"
    for function in graph.functions:
        out.append(f"\n  Function Name: '{function.name}'\n")
        for index, concrete in enumerate(function.concrete_functions, 1):
            args, kwargs = concrete.args, concrete.kwargs
            if args is None and kwargs is None and concrete.argument_keywords:
                args = list(concrete.argument_keywords)  # a bare function's _arg_keywords
            if args:
                out.append(f"    Option #{index}\n      Callable with:\n")
                out.append(_print_args(args, "Argument", indent=4))
            if kwargs:
                out.append(_print_args(kwargs, "Named Argument", indent=4))
    return "".join(out)


def _print_args(arguments: Any, argument_type: str, indent: int) -> str:
    """saved_model_cli's _print_args, its prints (and their backspaces) collected."""
    indent_str = "  " * indent
    out: list[str] = []

    def quoted(value: Any) -> str:
        return f"'{value}'" if isinstance(value, str) else str(value)

    def type_name(value: Any) -> str:  # the TensorFlow class smrt's stand-ins replace
        names = {ShapeValue: "TensorShape", DTypeValue: "DType"}
        return names.get(type(value), type(value).__name__)

    for index, element in enumerate(arguments, 1):
        if indent == 4:
            out.append(f"{indent_str}{argument_type} #{index}\n")
        if isinstance(element, str):
            out.append(f"{indent_str}  {element}\n")
        elif isinstance(element, TensorSpecValue):
            out.append(f"{(indent + 1) * '  '}{element.name}: {element!r}\n")
        elif isinstance(element, (list, tuple, ShapeValue)):  # TF: any non-dict Iterable
            # (iterating a TensorShape of unknown rank raises in saved_model_cli; smrt prints [])
            values = element.dims or () if isinstance(element, ShapeValue) else element
            out.append(f"{indent_str}  DType: {type_name(element)}\n")
            out.append(f"{indent_str}  Value: [" + "".join(f"{quoted(v)}, " for v in values)
                       + "\b\b]\n")
        elif isinstance(element, dict):
            out.append(f"{indent_str}  DType: {type_name(element)}\n")
            out.append(f"{indent_str}  Value: {{" + "".join(
                f"'{k}': {quoted(v)}, " for k, v in element.items()) + "\b\b}\n")
        else:
            out.append(f"{indent_str}  DType: {type_name(element)}\n")
            out.append(f"{indent_str}  Value: {element}\n")
    return "".join(out)


def _ops_line(meta: MetaGraphInfo) -> str:
    return (f"The MetaGraph with tag set {list(meta.tags)!r} contains the following ops: "
            f"{set_text(meta.ops or ())}")


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
    yield f"{pad}      shape: {shape_text(spec.shape)}"
    yield f"{pad}      name: {spec.tensor_name}"


def as_json(info: SavedModelInfo, args: argparse.Namespace) -> Any:
    """The --json form: the same selection as the text, as plain data."""
    def spec(s: TensorSpec) -> dict[str, Any]:
        shape = None if s.shape is None else tf_dims(s.shape)
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
        if meta.object_graph is not None:  # input signatures as their Python reprs
            out["functions"] = {f.name: [{"args": repr(c.args), "kwargs": repr(c.kwargs)}
                                         for c in f.concrete_functions]
                                for f in meta.object_graph.functions}
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
            signature_of(meta, args.signature_def))}
    return selected
