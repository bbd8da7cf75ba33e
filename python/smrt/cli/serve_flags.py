"""Every flag of ``tensorflow_model_server`` (TF Serving 2.x ``main.cc``), and what smrt does
with each, so that a copied command line starts.

:data:`TF_SERVING_FLAGS` is the one table: the flag's name, its type and TF Serving's default,
and how smrt treats it:

- ``IMPLEMENTED``: it does what it does in TF Serving.
- ``NO_EFFECT``: accepted; given on the command line, it logs one line saying why it has no
  effect here (TPU, TFLite, ALTS, profiler, thread-pool factory, platform config...).
- ``REFUSED``: accepted at TF Serving's default; any other value would change the answers if
  it were ignored, so ``smrt serve`` refuses to start, with one line saying why.

:func:`add_missing_arguments` adds to ``smrt serve``'s parser, with TF Serving's syntax
(``--flag=value``; booleans also bare ``--flag`` and ``--flag=true|false|1|0``), the flags
``serve.py`` does not define itself. Those take ``None`` as their argparse default, so that
:func:`check` can tell a flag given from one left alone; :func:`value` gives TF Serving's
default for the latter.
"""

from __future__ import annotations

import argparse
import logging
import os
from dataclasses import dataclass
from typing import Any

from .errors import CliError

IMPLEMENTED = "implemented"
NO_EFFECT = "no effect"
REFUSED = "refused"

_CPUS = os.cpu_count() or 1


@dataclass(frozen=True)
class Flag:
    name: str
    type: type
    default: Any
    """TF Serving's default (server.h ``Options`` and main.cc)."""
    treatment: str
    why: str = ""
    """For NO_EFFECT and REFUSED flags: why; for IMPLEMENTED ones, the help text."""


def _flags() -> tuple[Flag, ...]:
    def done(name: str, kind: type, default: Any, help_text: str = "") -> Flag:
        return Flag(name, kind, default, IMPLEMENTED, help_text)

    def inert(name: str, kind: type, default: Any, why: str) -> Flag:
        return Flag(name, kind, default, NO_EFFECT, why)

    def refused(name: str, kind: type, default: Any, why: str) -> Flag:
        return Flag(name, kind, default, REFUSED, why)

    tflite = "smrt runs the SavedModel's TensorFlow graph, never a TensorFlow Lite model"
    return (
        done("port", int, 8500),
        done("grpc_socket_path", str, "",
             "also serve the gRPC API on this Unix socket"),
        done("rest_api_port", int, 0),
        done("rest_api_num_threads", int, 4 * _CPUS),
        done("rest_api_timeout_in_ms", int, 30000),
        done("rest_api_enable_cors_support", bool, False,
             "add CORS headers (Access-Control-Allow-Origin: *) to REST replies and answer "
             "OPTIONS preflight requests"),
        done("enable_batching", bool, False),
        done("allow_version_labels_for_unavailable_models", bool, False,
             "let version_labels name versions that are not available (yet); otherwise such "
             "a label stops the server at start, as in TF Serving"),
        done("batching_parameters_file", str, ""),
        done("enable_per_model_batching_parameters", bool, False,
             "with --enable_batching, a version batches with the batching_params.pbtxt in "
             "its directory (a BatchingParameters text proto), and one without it does not "
             "batch, as in TF Serving"),
        done("model_config_file", str, ""),
        done("model_config_file_poll_wait_seconds", int, 0,
             "seconds between re-reads of --model_config_file: models added there are "
             "served, models dropped retired, new version policies and labels applied "
             "(0: read once, at start)"),
        done("model_name", str, "default"),
        done("model_base_path", str, ""),
        inert("num_load_threads", int, 0,
              "smrt loads versions one at a time, in its polling thread"),
        inert("num_unload_threads", int, 0,
              "a retired version is closed by the last request that used it"),
        done("max_num_load_retries", int, 5,
             "times a version that failed to load is tried again before it is given up "
             "(0: tried once); it is also tried again when its files change"),
        done("load_retry_interval_micros", int, 60_000_000,
             "microseconds between those tries (negative: no wait)"),
        done("file_system_poll_wait_seconds", int, 1),
        inert("flush_filesystem_caches", bool, True,
              "smrt reads models from local files through libtensorflow; there is no "
              "file-system cache of its own to flush"),
        done("tensorflow_session_parallelism", int, 0,
             "TensorFlow's intra-op and inter-op threads both, unless "
             "--tensorflow_intra_op_parallelism/--tensorflow_inter_op_parallelism say "
             "otherwise (0: TensorFlow chooses)"),
        done("tensorflow_session_config_file", str, "",
             "a ConfigProto text proto for every model's session (threads, soft placement, "
             "GPU options, optimizer and XLA JIT level); the thread and GPU memory flags "
             "override it when given; a field smrt does not apply stops the start"),
        done("tensorflow_intra_op_parallelism", int, 0),
        done("tensorflow_inter_op_parallelism", int, 0),
        refused("use_alts_credentials", bool, False,
                "smrt's gRPC API has no ALTS (Google's ALTS needs Google Cloud); use "
                "--ssl_config_file for TLS"),
        done("ssl_config_file", str, "",
             "an SSLConfig text proto (server_key, server_cert, custom_ca, client_verify): "
             "the gRPC API over TLS"),
        inert("platform_config_file", str, "",
              "smrt serves the TensorFlow platform only, configured by its flags"),
        done("per_process_gpu_memory_fraction", float, 0.0,
             "the share of each GPU's memory TensorFlow may take (0: the session config's, "
             "or TensorFlow's choice)"),
        done("saved_model_tags", str, ""),
        done("grpc_channel_arguments", str, "",
             "grpc server options, key=value comma-separated (integers passed as integers)"),
        done("grpc_max_threads", int, 4 * _CPUS, "gRPC requests handled at once"),
        done("enable_model_warmup", bool, True,
             "replay a version's assets.extra/tf_serving_warmup_requests (TFRecord of "
             "PredictionLog) before it serves; a record that fails fails the load"),
        done("num_request_iterations_for_warmup", int, 0,
             "times each warmup record is replayed (used if > 0; else once)"),
        done("version", bool, False, "print smrt's and TensorFlow's versions and exit"),
        done("monitoring_config_file", str, "",
             "a MonitoringConfig text proto: prometheus_config { enable: true path: "
             "\"/monitoring/prometheus/metrics\" } serves the metrics at that path"),
        inert("remove_unused_fields_from_bundle_metagraph", bool, True,
              "smrt keeps only what it reads from the MetaGraphDef anyway"),
        refused("prefer_tflite_model", bool, False, tflite),
        inert("num_tflite_pools", int, _CPUS, tflite),
        inert("num_tflite_interpreters_per_pool", int, 1, tflite),
        done("enable_signature_method_name_check", bool, False,
             "predict, classify and regress check the signature's method_name, as TF 1 "
             "SignatureDefs have it"),
        inert("xla_cpu_compilation_enabled", bool, False,
              "libtensorflow's C API cannot turn XLA off process-wide, so functions saved "
              "with jit_compile=True compile either way; auto-clustering is "
              "graph_options.optimizer_options.global_jit_level in "
              "--tensorflow_session_config_file"),
        inert("xla_gpu_compilation_enabled", bool, False,
              "smrt leaves XLA JIT to libtensorflow's own settings"),
        inert("enable_profiler", bool, True,
              "TensorFlow's profiler service is not part of smrt's gRPC API"),
        inert("thread_pool_factory_config_file", str, "",
              "smrt runs requests in its own thread pool (--rest_api_num_threads)"),
        refused("mixed_precision", str, "",
                "smrt runs the graph in the precision it was saved with"),
        inert("skip_initialize_tpu", bool, False, "smrt does not run on TPUs"),
        done("enable_grpc_healthcheck_service", bool, False,
             "serve grpc.health.v1.Health/Check on the gRPC port"),
        done("enable_serialization_as_tensor_content", bool, False,
             "write gRPC PredictResponse tensors as tensor_content instead of the typed "
             "*_val fields (strings stay in string_val)"),
    )


TF_SERVING_FLAGS: tuple[Flag, ...] = _flags()
BY_NAME = {f.name: f for f in TF_SERVING_FLAGS}

SMRT_DEFAULTS = {
    "rest_api_port": (8501, "smrt serves REST on 8501 unless told otherwise, as TF Serving's "
                            "documentation and Docker image do; 0 picks a free port"),
    "saved_model_tags": ("serve", "TF Serving's empty default means 'serve'"),
}
"""Flags whose default in smrt differs in form from TF Serving's, and why."""


def parse_bool(text: str) -> bool:
    """TF Serving's boolean values (``true``/``false``/``1``/``0``, any case)."""
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true, false, 1 or 0, not {text!r}")


def add_bool(group: Any, name: str, default: bool | None, help_text: str) -> None:
    """A boolean flag in TF Serving's syntax: ``--flag``, ``--flag=true``, ``--flag=0``."""
    group.add_argument(f"--{name}", type=parse_bool, nargs="?", const=True, default=default,
                       metavar="BOOL", help=help_text)


def add_missing_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds every TF Serving flag ``parser`` does not define yet (default ``None``)."""
    defined = {option.lstrip("-") for action in parser._actions
               for option in action.option_strings}
    groups = {
        IMPLEMENTED: parser.add_argument_group("more tensorflow_model_server flags"),
        NO_EFFECT: parser.add_argument_group(
            "tensorflow_model_server flags without effect here (accepted, with a log line)"),
        REFUSED: parser.add_argument_group(
            "tensorflow_model_server flags accepted at their default only"),
    }
    for flag in TF_SERVING_FLAGS:
        if flag.name in defined:
            continue
        group = groups[flag.treatment]
        text = f"{flag.why} (TF Serving's default: {_show(flag.default)})".replace("%", "%%")
        if flag.type is bool:
            add_bool(group, flag.name, None, text)
        else:
            group.add_argument(f"--{flag.name}", type=flag.type, default=None,
                               metavar=flag.type.__name__.upper(), help=text)


def value(args: argparse.Namespace, name: str) -> Any:
    """The flag's value: as given, else TF Serving's default."""
    given = getattr(args, name)
    return BY_NAME[name].default if given is None else given


def check(args: argparse.Namespace, log: logging.Logger) -> None:
    """Logs one line per NO_EFFECT flag given; raises CliError for a REFUSED flag given a
    value other than TF Serving's default."""
    for flag in TF_SERVING_FLAGS:
        if flag.treatment == IMPLEMENTED:
            continue
        raw = getattr(args, flag.name, None)
        if raw is None:
            continue
        shown = f"--{flag.name}={_show(raw)}"
        if flag.treatment == REFUSED:
            if raw != flag.default:
                raise CliError(f"{shown} is not supported: {flag.why} (only "
                               f"--{flag.name}={_show(flag.default)} is accepted)")
            continue
        log.info("%s: accepted, no effect here because %s", shown, flag.why)


def _show(default: Any) -> str:
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default) if default != "" else '""'
