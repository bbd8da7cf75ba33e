"""``--tensorflow_session_config_file``: TensorFlow's ``ConfigProto`` in text format, e.g.::

    allow_soft_placement: true
    intra_op_parallelism_threads: 4
    gpu_options { allow_growth: true per_process_gpu_memory_fraction: 0.5 }
    graph_options { optimizer_options { global_jit_level: ON_1 } }

:func:`read_session_config` serializes it for :func:`smrt.load`'s ``config_proto`` without
protobuf (the server holds libtensorflow and its protobuf runtime, and never imports
TensorFlow's Python package): :data:`CONFIG_PROTO` lists the fields smrt encodes, with
``tensorflow/core/protobuf/config.proto``'s numbers. A field outside it is a start-up error
that names it, never silently dropped. Fields are written in number order, each occurrence as
given, so TensorFlow reads the message exactly as protobuf's text parser makes it (which
also refuses a non-repeated field given twice).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from . import textproto
from .config import ConfigError, read_text
from .wire import bytes_field, varint


@dataclass(frozen=True)
class Field:
    number: int
    kind: str  # int32, int64, bool, double, string, enum, message, map<string,int32>
    message: Message | None = None
    enum: dict[str, int] = field(default_factory=dict)
    repeated: bool = False


Message = dict[str, Field]

_OPTIMIZER_OPTIONS: Message = {
    "do_common_subexpression_elimination": Field(1, "bool"),
    "do_constant_folding": Field(2, "bool"),
    "opt_level": Field(3, "enum", enum={"L1": 0, "L0": -1, "DEFAULT": 0}),
    "do_function_inlining": Field(4, "bool"),
    "global_jit_level": Field(5, "enum", enum={"DEFAULT": 0, "OFF": -1, "ON_1": 1, "ON_2": 2}),
    "max_folded_constant_in_bytes": Field(6, "int64"),
    "cpu_global_jit": Field(7, "bool"),
}
_GRAPH_OPTIONS: Message = {
    "enable_recv_scheduling": Field(2, "bool"),
    "optimizer_options": Field(3, "message", _OPTIMIZER_OPTIONS),
    "build_cost_model": Field(4, "int64"),
    "infer_shapes": Field(5, "bool"),
    "place_pruned_graph": Field(6, "bool"),
    "enable_bfloat16_sendrecv": Field(7, "bool"),
    "timeline_step": Field(8, "int32"),
    "build_cost_model_after": Field(9, "int64"),
}
_GPU_OPTIONS: Message = {
    "per_process_gpu_memory_fraction": Field(1, "double"),
    "allocator_type": Field(2, "string"),
    "deferred_deletion_bytes": Field(3, "int64"),
    "allow_growth": Field(4, "bool"),
    "visible_device_list": Field(5, "string"),
    "polling_active_delay_usecs": Field(6, "int32"),
    "polling_inactive_delay_msecs": Field(7, "int32"),
    "force_gpu_compatible": Field(8, "bool"),
}
CONFIG_PROTO: Message = {
    "device_count": Field(1, "map<string,int32>", repeated=True),
    "intra_op_parallelism_threads": Field(2, "int32"),
    "placement_period": Field(3, "int32"),
    "device_filters": Field(4, "string", repeated=True),
    "inter_op_parallelism_threads": Field(5, "int32"),
    "gpu_options": Field(6, "message", _GPU_OPTIONS),
    "allow_soft_placement": Field(7, "bool"),
    "log_device_placement": Field(8, "bool"),
    "use_per_session_threads": Field(9, "bool"),
    "graph_options": Field(10, "message", _GRAPH_OPTIONS),
    "operation_timeout_in_ms": Field(11, "int64"),
    "isolate_session_state": Field(15, "bool"),
}
"""The ConfigProto fields smrt encodes (the rest configure distributed or experimental
runtimes: cluster_def, rpc_options, experimental, session_inter_op_thread_pool...)."""


def read_session_config(path: str | os.PathLike[str]) -> bytes:
    """The serialized ``ConfigProto`` of a text-format file; ConfigError naming any field
    smrt does not encode, or a value of the wrong type."""
    source = os.fspath(path)
    return encode(textproto.parse(read_text(source), source), CONFIG_PROTO,
                  f"{source}: ConfigProto")


def encode(message: textproto.Message, schema: Message, where: str) -> bytes:
    """``message`` (as :func:`textproto.parse` returns it) in protobuf's wire format."""
    unknown = sorted(message.keys() - schema.keys())
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unsupported field (smrt serve applies "
                          f"{', '.join(sorted(schema))} here)")
    out = bytearray()
    for name, spec in sorted(schema.items(), key=lambda item: item[1].number):
        values = message.get(name, [])
        if len(values) > 1 and not spec.repeated:  # as protobuf's text parser refuses it
            raise ConfigError(f"{where}.{name}: a non-repeated field is specified more "
                              "than once")
        for value in values:
            out += _encode_field(spec, value, f"{where}.{name}")
    return bytes(out)


_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


def _encode_field(spec: Field, value: textproto.Value, where: str) -> bytes:
    tag = spec.number << 3
    if spec.kind == "message":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a message ({{ ... }}), not {value!r}")
        assert spec.message is not None
        return bytes_field(spec.number, encode(value, spec.message, where))
    if spec.kind == "map<string,int32>":
        if not isinstance(value, dict) or set(value) - {"key", "value"}:
            raise ConfigError(f"{where}: expected {{ key: \"...\" value: N }}")
        entry = {"key": Field(1, "string"), "value": Field(2, "int32")}
        return bytes_field(spec.number, encode(value, entry, where))
    if spec.kind == "string":
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, not {value!r}")
        return bytes_field(spec.number, value.encode("utf-8"))
    if spec.kind == "double":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, not {value!r}")
        return varint(tag | 1) + struct.pack("<d", float(value))
    return varint(tag) + varint(_integer(spec, value, where))  # negatives: 10-byte varints


def _integer(spec: Field, value: textproto.Value, where: str) -> int:
    if spec.kind == "bool":
        if isinstance(value, bool) or value in (0, 1):
            return int(value)
        raise ConfigError(f"{where}: expected true or false, not {value!r}")
    if spec.kind == "enum":
        if isinstance(value, str) and value in spec.enum:
            return spec.enum[value]
        if isinstance(value, int) and not isinstance(value, bool) and value in spec.enum.values():
            return value
        raise ConfigError(f"{where}: expected one of {', '.join(spec.enum)}, not {value!r}")
    low, high = _RANGES[spec.kind]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: expected an {spec.kind}, not {value!r}")
    return value
