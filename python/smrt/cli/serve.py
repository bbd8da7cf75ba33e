"""``smrt serve``: TensorFlow Serving's REST and gRPC APIs, with TensorFlow Serving's flag names.

    smrt serve --model_name mobilenet --model_base_path /models/mobilenet

serves the highest numbered version under ``/models/mobilenet`` at
``http://127.0.0.1:8501/v1/models/mobilenet``, picks up new versions as they appear, and on
SIGTERM stops taking connections and lets requests in flight finish. Every flag of
``tensorflow_model_server`` is accepted (``serve_flags.TF_SERVING_FLAGS`` says what each does
here); boolean flags take TF Serving's forms: ``--enable_batching``, ``--enable_batching=true``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import replace
from typing import Any

from smrt.library import load_op_library, pip_install
from smrt.serving.core.config import (
    BatchingOptions,
    GrpcOptions,
    ModelConfig,
    ServerOptions,
    parse_channel_arguments,
    read_batching_parameters_file,
    read_model_config_file,
    read_monitoring_config_file,
    read_ssl_config_file,
    single_model,
)
from smrt.serving.core.session_config import read_session_config
from smrt.serving.core.versions import default_loader

from .backend_flag import add_backend_argument
from .common import tags_from_flag
from .errors import CliError
from .op_library_flag import add_op_library_argument
from .op_policy_flag import add_op_policy_argument
from .serve_flags import add_bool, add_missing_arguments, check, value


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve models over TensorFlow Serving's REST and gRPC APIs",
        description="Serve SavedModels over TensorFlow Serving's REST and gRPC APIs (predict, "
                    "classify, regress, multi-inference, model status and metadata), picking "
                    "up new versions as they appear. Flags are tensorflow_model_server's. "
                    f"Needs {pip_install('serve')}.",
    )
    models = parser.add_argument_group("models")
    models.add_argument("--model_name", metavar="NAME", default="default",
                        help="the model's name in URLs (default: default)")
    models.add_argument("--model_base_path", metavar="DIR",
                        help="the directory holding the model's numbered version directories")
    models.add_argument("--model_config_file", metavar="FILE",
                        help="a ModelServerConfig text proto naming several models (instead of "
                             "--model_name/--model_base_path)")
    models.add_argument("--file_system_poll_wait_seconds", metavar="SECONDS", type=float,
                        default=1.0,
                        help="seconds between looks for new versions; 0 looks only at start "
                             "(default: 1)")
    models.add_argument("--saved_model_tags", metavar="TAGS", default="serve",
                        help="the MetaGraph tag-set to load, comma-separated (default: serve; "
                             "empty means serve)")
    add_op_policy_argument(models)
    add_op_library_argument(models)
    add_backend_argument(models)
    models.add_argument("--tensorflow_intra_op_parallelism", metavar="N", type=int, default=0,
                        help="TensorFlow's intra-op threads (0: TensorFlow chooses)")
    models.add_argument("--tensorflow_inter_op_parallelism", metavar="N", type=int, default=0,
                        help="TensorFlow's inter-op threads (0: TensorFlow chooses)")

    http = parser.add_argument_group("HTTP")
    http.add_argument("--rest_api_port", metavar="PORT", type=int, default=8501,
                      help="the port to listen on (default: 8501; 0 picks a free one)")
    http.add_argument("--host", metavar="HOST", default="127.0.0.1",
                      help="the address to bind (default: 127.0.0.1, this machine only; "
                           "0.0.0.0 for every interface)")
    http.add_argument("--rest_api_num_threads", metavar="N", type=int,
                      default=4 * (os.cpu_count() or 1),
                      help="threads that parse requests, run models and write replies "
                           "(default: 4 per CPU)")
    http.add_argument("--rest_api_timeout_in_ms", metavar="MS", type=int, default=30000,
                      help="answer 504 to a request not done after this long (default: 30000)")
    http.add_argument("--max_request_bytes", metavar="BYTES", type=int, default=64 << 20,
                      help="refuse larger request bodies with 413 (default: 64 MiB)")
    http.add_argument("--max_parsing_bytes", metavar="BYTES", type=int, default=128 << 20,
                      help="request bodies being read or parsed at once, in bytes; past it "
                           "answer 503 with Retry-After (default: 128 MiB; one body is always "
                           "let through when no other is being parsed)")
    http.add_argument("--max_queued_requests", metavar="N", type=int, default=256,
                      help="requests that may wait for a free thread; past it answer 503 with "
                           "Retry-After (default: 256)")
    http.add_argument("--shutdown_timeout_seconds", metavar="SECONDS", type=float, default=30.0,
                      help="on SIGTERM, how long requests in flight may take to finish "
                           "and send their answers (default: 30)")
    add_bool(http, "access_log", True, "log one line per request on stderr (default: true)")
    grpc = parser.add_argument_group("gRPC")
    grpc.add_argument("--port", metavar="PORT", type=int, default=8500,
                      help="the port of TF Serving's gRPC API (PredictionService, "
                           "ModelService), on --host (default: 8500; 0 picks a free one)")

    batching = parser.add_argument_group("batching")
    add_bool(batching, "enable_batching", False, "merge concurrent requests to a signature "
             "whose inputs and outputs have a leading batch dimension")
    batching.add_argument("--batching_parameters_file", metavar="FILE",
                          help="TF Serving's BatchingParameters text proto (max_batch_size, "
                               "batch_timeout_micros, num_batch_threads, max_enqueued_batches)")
    batching.add_argument("--max_batch_size", metavar="N", type=int,
                          help="rows per batch at most (default: 32)")
    batching.add_argument("--batch_timeout_micros", metavar="MICROS", type=int,
                          help="how long a batch waits to fill (default: 1000)")
    batching.add_argument("--num_batch_threads", metavar="N", type=int,
                          help="batches run at once per signature (default: 1)")
    add_missing_arguments(parser)
    parser.set_defaults(func=run)



def run(args: argparse.Namespace) -> int:
    if value(args, "version"):
        print(_versions())
        return 0
    try:
        import aiohttp  # noqa: F401
        import orjson  # noqa: F401
    except ImportError as e:
        raise CliError(f"smrt serve needs the serve extra ({e.name} is missing): "
                       f"{pip_install('serve')}") from None
    import asyncio

    from smrt.serving.server import ModelServer, run_until_signalled

    _configure_logging()
    log = logging.getLogger("smrt.serve")
    check(args, log)
    models = _models(args)
    monitoring = value(args, "monitoring_config_file")
    options = ServerOptions(
        num_threads=_positive(args.rest_api_num_threads, "--rest_api_num_threads"),
        timeout_seconds=_positive(args.rest_api_timeout_in_ms, "--rest_api_timeout_in_ms") / 1e3,
        max_request_bytes=_positive(args.max_request_bytes, "--max_request_bytes"),
        max_parsing_bytes=_positive(args.max_parsing_bytes, "--max_parsing_bytes"),
        max_queued_requests=_not_negative(args.max_queued_requests, "--max_queued_requests"),
        poll_wait_seconds=args.file_system_poll_wait_seconds,
        batching=_batching(args),
        shutdown_grace_seconds=max(0.0, args.shutdown_timeout_seconds),
        prometheus_path=read_monitoring_config_file(monitoring) if monitoring else None,
        cors=value(args, "rest_api_enable_cors_support"),
        check_method_name=value(args, "enable_signature_method_name_check"),
        allow_unavailable_labels=value(args, "allow_version_labels_for_unavailable_models"),
        max_load_retries=_not_negative(value(args, "max_num_load_retries"),
                                       "--max_num_load_retries"),
        load_retry_interval_seconds=max(0, value(args, "load_retry_interval_micros")) / 1e6,
        config_poll_seconds=max(0, value(args, "model_config_file_poll_wait_seconds")),
        per_model_batching=value(args, "enable_per_model_batching_parameters"),
        grpc=_grpc_options(args),
        warmup=value(args, "enable_model_warmup"),
        warmup_iterations=max(1, value(args, "num_request_iterations_for_warmup")),
        saved_model_tags=tuple(tags_from_flag(args.saved_model_tags or "serve")),
    )
    loader = default_loader(op_policy=args.op_policy, op_libraries=tuple(args.op_library),
                            backend=args.backend, **_session_options(args))
    for library in args.op_library:  # a wrong path stops the start, not each version's load
        load_op_library(library)
    read_config = None
    if args.model_config_file:
        tags = tuple(tags_from_flag(args.saved_model_tags or "serve"))

        def read_config() -> list[ModelConfig]:
            return read_model_config_file(args.model_config_file, tags)

    server = ModelServer(models, options, loader, read_config)
    access_log = logging.getLogger("smrt.serve.access") if args.access_log else None

    def ready(port: int) -> None:
        host = f"[{args.host}]" if ":" in args.host else args.host
        for model in models:
            log.info("serving model %s at http://%s:%d/v1/models/%s", model.name, host, port,
                     model.name)
        if options.grpc is not None:
            where = f"{host}:{server.grpc_ports[0]}" + (
                f" and unix:{options.grpc.socket_path}" if options.grpc.socket_path else "")
            log.info("gRPC API at %s (%s)", where, "TLS" if options.grpc.ssl else "plaintext")
        metrics = "/metrics" + (f", {options.prometheus_path}" if options.prometheus_path else "")
        log.info("REST API at http://%s:%d (metrics: %s); SIGTERM or Ctrl-C stops",
                 host, port, metrics)

    asyncio.run(run_until_signalled(server, args.host, args.rest_api_port, access_log, ready))
    return 0


def _grpc_options(args: argparse.Namespace) -> GrpcOptions:
    try:
        import grpc  # noqa: F401
    except ImportError:
        raise CliError(f"smrt serve's gRPC API needs grpcio: {pip_install('serve')}") from None
    if not 0 <= args.port <= 65535:
        raise CliError(f"--port must be a port number (0 picks a free one), not {args.port}")
    ssl = value(args, "ssl_config_file")
    return GrpcOptions(
        port=args.port,
        socket_path=value(args, "grpc_socket_path"),
        max_threads=_positive(value(args, "grpc_max_threads"), "--grpc_max_threads"),
        channel_arguments=parse_channel_arguments(value(args, "grpc_channel_arguments")),
        ssl=read_ssl_config_file(ssl) if ssl else None,
        tensor_content=value(args, "enable_serialization_as_tensor_content"),
        health_check=value(args, "enable_grpc_healthcheck_service"),
    )


def _session_options(args: argparse.Namespace) -> dict[str, Any]:
    """smrt.load's session options, as TF Serving builds its session config: the
    ``--tensorflow_session_config_file`` ConfigProto first, then the flags that override
    parts of it when given (threads, GPU memory fraction)."""
    parallelism = _not_negative(value(args, "tensorflow_session_parallelism"),
                                "--tensorflow_session_parallelism")
    intra = _not_negative(args.tensorflow_intra_op_parallelism,
                          "--tensorflow_intra_op_parallelism")
    inter = _not_negative(args.tensorflow_inter_op_parallelism,
                          "--tensorflow_inter_op_parallelism")
    if intra and inter and parallelism:
        raise CliError("Either configure --tensorflow_session_parallelism or "
                       "(--tensorflow_intra_op_parallelism, --tensorflow_inter_op_parallelism) "
                       "separately. You cannot configure all.")  # TF Serving's words
    if intra or inter:  # the specific flags win over the session parallelism
        parallelism = 0
    fraction = value(args, "per_process_gpu_memory_fraction")
    if not 0.0 <= fraction <= 1.0:
        raise CliError(f"--per_process_gpu_memory_fraction must be between 0 and 1, "
                       f"not {fraction}")
    path = value(args, "tensorflow_session_config_file")
    return {
        "config_proto": read_session_config(path) if path else b"",
        "intra_op_threads": intra or parallelism,
        "inter_op_threads": inter or parallelism,
        "gpu_memory_fraction": fraction or None,  # 0: the config's, or TensorFlow's choice
    }


def _versions() -> str:
    """``--version``: smrt's and TensorFlow's, in TF Serving's two lines."""
    from smrt import __version__, load_library

    try:
        tensorflow = load_library().version
    except Exception as e:  # the version of smrt still prints
        tensorflow = f"not found ({e})"
    return f"TensorFlow ModelServer: smrt {__version__}\nTensorFlow Library: {tensorflow}"


def _models(args: argparse.Namespace) -> list[ModelConfig]:
    tags = tuple(tags_from_flag(args.saved_model_tags or "serve"))
    if args.model_config_file:
        if args.model_base_path:
            raise CliError("give --model_config_file or --model_base_path, not both")
        return read_model_config_file(args.model_config_file, tags)
    if not args.model_base_path:
        raise CliError("give --model_base_path (with --model_name) or --model_config_file")
    return [single_model(args.model_name, args.model_base_path, tags)]


def _batching(args: argparse.Namespace) -> BatchingOptions | None:
    flags = {k: getattr(args, k) for k in ("max_batch_size", "batch_timeout_micros",
                                           "num_batch_threads") if getattr(args, k) is not None}
    if not args.enable_batching:
        if args.batching_parameters_file or flags:
            raise CliError("batching options need --enable_batching")
        return None
    options = (read_batching_parameters_file(args.batching_parameters_file)
               if args.batching_parameters_file else BatchingOptions())
    return replace(options, **flags)


def _positive(value: int, flag: str) -> int:
    if value <= 0:
        raise CliError(f"{flag} must be positive, not {value}")
    return value


def _not_negative(value: int, flag: str) -> int:
    if value < 0:
        raise CliError(f"{flag} must not be negative, not {value}")
    return value


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("smrt.serve", "aiohttp.server"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    logging.getLogger("aiohttp.server").addFilter(_malformed_http_in_one_line)


def _malformed_http_in_one_line(record: logging.LogRecord) -> bool:
    """aiohttp logs malformed HTTP (a URL line too long, a bad header: the client's fault, and
    answered 400) as an error with a traceback; a one-line warning says it all."""
    from aiohttp.http_exceptions import HttpProcessingError

    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
        record.msg, record.args = "malformed HTTP request: %s: %.200s", (
            type(error).__name__, error.message)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    return True
