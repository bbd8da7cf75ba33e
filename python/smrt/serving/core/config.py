"""What ``smrt serve`` serves: models (name, base path, version policy) and batching options.

One model comes from ``--model_name``/``--model_base_path``; several from a
``--model_config_file`` in TF Serving's ``ModelServerConfig`` text format, e.g.::

    model_config_list {
      config {
        name: "half_plus_two"
        base_path: "/models/half_plus_two"
        model_platform: "tensorflow"
        model_version_policy { specific { versions: 1 versions: 2 } }
        version_labels { key: "stable" value: 1 }
      }
    }

Batching options come from flags or TF Serving's ``--batching_parameters_file``
(``max_batch_size { value: 32 }`` ...).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from smrt.errors import Error

from . import textproto


class ConfigError(Error, ValueError):
    """A model config or batching parameters file, or a flag, is invalid."""


@dataclass(frozen=True)
class VersionPolicy:
    """Which of the version directories under a base path are served.

    ``latest`` (the default, with ``num_versions=1``) serves the highest N; ``all`` every one;
    ``specific`` exactly the listed ones.
    """

    kind: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of those found on disk."""
        ordered = sorted(available)
        if self.kind == "all":
            return ordered
        if self.kind == "specific":
            return [v for v in ordered if v in self.versions]
        return ordered[-self.num_versions:] if self.num_versions > 0 else []


@dataclass(frozen=True)
class ModelConfig:
    """One served model: its name in URLs and the directory holding its version directories."""

    name: str
    base_path: str
    policy: VersionPolicy = field(default_factory=VersionPolicy)
    labels: dict[str, int] = field(default_factory=dict)
    tags: tuple[str, ...] = ("serve",)


@dataclass(frozen=True)
class BatchingOptions:
    """Server-side batching: requests to one signature are merged along the batch dimension."""

    max_batch_size: int = 32
    batch_timeout_micros: int = 1000
    max_enqueued_batches: int = 100
    num_batch_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"batching: {name} must be at least 1, not {getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ConfigError("batching: batch_timeout_micros must not be negative")


def single_model(name: str, base_path: str, tags: tuple[str, ...] = ("serve",)) -> ModelConfig:
    """The model of ``--model_name``/``--model_base_path``."""
    return ModelConfig(name=check_name(name, "--model_name"),
                       base_path=check_base_path(base_path, name), tags=tags)


def read_model_config_file(path: str | os.PathLike[str],
                           tags: tuple[str, ...] = ("serve",)) -> list[ModelConfig]:
    """Parses a ``--model_config_file`` (TF Serving's ``ModelServerConfig`` text format)."""
    source = os.fspath(path)
    root = textproto.parse(read_text(source), source)
    _only(root, {"model_config_list"}, source)
    configs = []
    for config_list in _messages(root, "model_config_list", source):
        _only(config_list, {"config"}, f"{source}: model_config_list")
        for config in _messages(config_list, "config", source):
            configs.append(_model_config(config, source, tags))
    if not configs:
        raise ConfigError(
            f"{source}: no models (expected model_config_list {{ config {{ ... }} }})")
    names = [c.name for c in configs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"{source}: model name(s) configured twice: {', '.join(duplicated)}")
    return configs


def read_batching_parameters_file(path: str | os.PathLike[str]) -> BatchingOptions:
    """Parses TF Serving's ``--batching_parameters_file`` (``BatchingParameters`` text)."""
    source = os.fspath(path)
    root = textproto.parse(read_text(source), source)
    known = {"max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
             "num_batch_threads"}
    ignored = {"allowed_batch_sizes", "pad_variable_length_inputs", "thread_pool_name",
               "enable_large_batch_splitting", "max_execution_batch_size"}
    _only(root, known | ignored, source)
    values: dict[str, int] = {}
    for key in known & root.keys():
        (wrapper,) = _messages(root, key, source)[-1:]  # Int64Value { value: N }
        value = wrapper.get("value", [0])[-1]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{source}: {key} must be an integer, not {value!r}")
        values[key] = value
    return BatchingOptions(**values)


BATCHING_PARAMS_FILE = "batching_params.pbtxt"
"""A version directory's own batching parameters (``--enable_per_model_batching_parameters``)."""


PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
"""TF Serving's Prometheus path when a monitoring config enables it without a path."""


def read_monitoring_config_file(path: str | os.PathLike[str]) -> str | None:
    """Parses a ``--monitoring_config_file`` (TF Serving's ``MonitoringConfig`` text)::

        prometheus_config { enable: true path: "/monitoring/prometheus/metrics" }

    Returns the path to serve the metrics at, or None when Prometheus is not enabled."""
    source = os.fspath(path)
    root = textproto.parse(read_text(source), source)
    _only(root, {"prometheus_config"}, source)
    enabled, where = False, f"{source}: prometheus_config"
    metrics_path = ""
    for config in _messages(root, "prometheus_config", source):
        _only(config, {"enable", "path"}, where)
        for value in config.get("enable", []):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}: enable must be true or false, not {value!r}")
            enabled = value
        metrics_path = _string(config, "path", where, default=metrics_path)
    if not enabled:
        return None
    metrics_path = metrics_path or PROMETHEUS_PATH
    if not metrics_path.startswith("/") or metrics_path.lower().startswith("/v1/"):
        raise ConfigError(f"{where}: path {metrics_path!r} must start with '/' and not be "
                          "under /v1/ (the REST API)")
    return metrics_path


def _model_config(config: textproto.Message, source: str,
                  tags: tuple[str, ...]) -> ModelConfig:
    where = f"{source}: config"
    _only(config, {"name", "base_path", "model_platform", "model_version_policy",
                   "version_labels", "logging_config", "model_type"}, where)
    name = check_name(_string(config, "name", where), f"{where} name")
    where = f"{source}: model {name!r}"
    platform = _string(config, "model_platform", where, default="tensorflow")
    if platform != "tensorflow":
        raise ConfigError(f"{where}: model_platform {platform!r} is not served (only 'tensorflow')")
    base_path = check_base_path(_string(config, "base_path", where), name)
    policy = VersionPolicy()
    for message in _messages(config, "model_version_policy", where):
        policy = _version_policy(message, where)
    labels: dict[str, int] = {}
    for entry in _messages(config, "version_labels", where):
        key, value = entry.get("key", [""])[-1], entry.get("value", [None])[-1]
        if not isinstance(key, str) or not key or not isinstance(value, int):
            raise ConfigError(f"{where}: version_labels needs a key and an integer value")
        labels[key] = value
    return ModelConfig(name=name, base_path=base_path, policy=policy, labels=labels, tags=tags)


def _version_policy(message: textproto.Message, where: str) -> VersionPolicy:
    _only(message, {"latest", "all", "specific"}, f"{where}: model_version_policy")
    if len(message) != 1:
        raise ConfigError(f"{where}: model_version_policy needs one of latest, all, specific")
    kind, (body,) = next(iter(message.items()))
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: model_version_policy {kind} must be a message")
    if kind == "latest":
        n = body.get("num_versions", [1])[-1]
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f"{where}: latest.num_versions must be a positive integer")
        return VersionPolicy("latest", num_versions=n)
    if kind == "specific":
        versions = [v for v in body.get("versions", []) if isinstance(v, int) and v >= 0]
        if not versions or len(versions) != len(body.get("versions", [])):
            raise ConfigError(f"{where}: specific needs one or more versions (integers)")
        return VersionPolicy("specific", versions=tuple(versions))
    return VersionPolicy("all")


def check_name(name: str, what: str) -> str:
    """``name`` if it can be a model name in URLs; else ConfigError naming ``what``."""
    if not name or any(c in name for c in "/:") or not name.isprintable():
        raise ConfigError(f"{what}: {name!r} is not a model name (no '/', ':' or control "
                          "characters, not empty)")
    return name


def check_base_path(base_path: str, name: str) -> str:
    """The absolute base path of model ``name``; ConfigError if it is not a directory."""
    if not base_path:
        raise ConfigError(f"model {name!r}: no base path")
    path = Path(base_path).expanduser()
    if not path.is_dir():
        raise ConfigError(f"model {name!r}: base path {base_path!r} is not a directory")
    return str(path.resolve())


def read_text(path: str) -> str:
    """A config file's text; ConfigError if it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def _only(message: textproto.Message, allowed: set[str], where: str) -> None:
    unknown = sorted(message.keys() - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")


def _messages(message: textproto.Message, key: str, where: str) -> list[textproto.Message]:
    values = message.get(key, [])
    if not all(isinstance(v, dict) for v in values):
        raise ConfigError(f"{where}: {key} must be a message ({key} {{ ... }})")
    return values  # type: ignore[return-value]


def _string(message: textproto.Message, key: str, where: str, default: str | None = None) -> str:
    values = message.get(key)
    if not values:
        if default is None:
            raise ConfigError(f"{where}: missing {key}")
        return default
    value = values[-1]
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string, not {value!r}")
    return value


@dataclass(frozen=True)
class GrpcOptions:
    """Where and how the gRPC API listens."""

    port: int = 8500
    """TCP port on ``ServerOptions``' host (0: a free one)."""
    socket_path: str = ""
    """Also listen on this Unix socket (``--grpc_socket_path``)."""
    max_threads: int = 4 * (os.cpu_count() or 1)
    """Requests handled at once (``--grpc_max_threads``)."""
    channel_arguments: tuple[tuple[str, int | str], ...] = ()
    """grpcio server options (``--grpc_channel_arguments``: ``key=value,...``)."""
    ssl: SSLConfig | None = None
    """TLS (``--ssl_config_file``)."""
    tensor_content: bool = False
    """``--enable_serialization_as_tensor_content``: replies' tensors as tensor_content."""
    health_check: bool = False
    """``--enable_grpc_healthcheck_service``: serve grpc.health.v1.Health."""


@dataclass(frozen=True)
class SSLConfig:
    """TF Serving's SSLConfig: server key and certificate (PEM), an optional custom CA, and
    whether clients must present a certificate it signed."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False


def read_ssl_config_file(path: str | os.PathLike[str]) -> SSLConfig:
    """Parses ``--ssl_config_file`` (TF Serving's ``SSLConfig`` text proto)."""
    source = os.fspath(path)
    root = textproto.parse(read_text(source), source)
    _only(root, {"server_key", "server_cert", "custom_ca", "client_verify"}, source)
    key, cert = _string(root, "server_key", source), _string(root, "server_cert", source)
    verify = root.get("client_verify", [False])[-1]
    if not isinstance(verify, bool):
        raise ConfigError(f"{source}: client_verify must be true or false")
    ca = _string(root, "custom_ca", source, default="")
    if verify and not ca:
        raise ConfigError(f"{source}: client_verify needs custom_ca (the CA that signs "
                          "client certificates)")
    return SSLConfig(key, cert, ca, verify)


def parse_channel_arguments(text: str) -> tuple[tuple[str, int | str], ...]:
    """``--grpc_channel_arguments``: ``key=value`` pairs, comma-separated; integer values
    are passed as integers, as TF Serving does."""
    pairs: list[tuple[str, int | str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--grpc_channel_arguments: {item!r} is not key=value")
        try:
            pairs.append((key, int(value)))
        except ValueError:
            pairs.append((key, value))
    return tuple(pairs)


@dataclass(frozen=True)
class ServerOptions:
    """How the server runs; the defaults are TF Serving's where it has one."""

    num_threads: int = 4 * (os.cpu_count() or 1)
    """Threads that parse requests, run models and encode replies."""
    timeout_seconds: float = 30.0
    """A request that has not been answered after this long gets HTTP 504."""
    max_request_bytes: int = 64 << 20
    """Larger bodies get HTTP 413 without being read."""
    poll_wait_seconds: float = 1.0
    """Seconds between looks for new versions; 0 looks once (at start), never again."""
    batching: BatchingOptions | None = None
    """Server-side batching for signatures with a leading batch dimension, if set."""
    shutdown_grace_seconds: float = 30.0
    """On SIGTERM, how long requests in flight may take to finish and send their answers."""
    inline_bytes: int = 4096
    """With batching (the run happens in a batch thread), bodies up to this size are parsed
    on the event loop: a thread hop would cost more than the parsing."""
    max_parsing_bytes: int = 128 << 20
    """Request bodies being read or parsed at once, in bytes (parsing JSON takes a bounded
    multiple of the body); past it HTTP 503 with ``Retry-After: 1``. A single body is always
    let through when no other is being parsed."""
    max_queued_requests: int = 256
    """Jobs that may wait for a free thread; past it HTTP 503 with ``Retry-After: 1``."""
    prometheus_path: str | None = None
    """Also serve the metrics at this path (``--monitoring_config_file``), as TF Serving does
    when its monitoring config enables Prometheus; ``/metrics`` is always served."""
    cors: bool = False
    """``--rest_api_enable_cors_support``: CORS headers on REST replies, OPTIONS answered."""
    check_method_name: bool = False
    """``--enable_signature_method_name_check``: a signature's method_name must fit the API."""
    max_load_retries: int = 0
    """A version that fails to load is tried again this many times (TF Serving's
    ``--max_num_load_retries``; smrt serve's default is TF Serving's, 5)."""
    load_retry_interval_seconds: float = 0.0
    """Seconds between those tries (``--load_retry_interval_micros``; TF Serving: 60)."""
    config_poll_seconds: float = 0.0
    """Seconds between re-reads of the model config file (TF Serving's
    ``--model_config_file_poll_wait_seconds``); 0 reads it once, at start."""
    per_model_batching: bool = False
    """``--enable_per_model_batching_parameters``: with batching on, a version batches with
    the :data:`BATCHING_PARAMS_FILE` in its directory, and without one not at all (TF
    Serving's rule)."""
    warmup: bool = True
    """``--enable_model_warmup``: replay a version's ``assets.extra/tf_serving_warmup_requests``
    before it serves (:mod:`smrt.serving.core.warmup`)."""
    warmup_iterations: int = 1
    """``--num_request_iterations_for_warmup``: times each warmup record is replayed."""
    allow_unavailable_labels: bool = False
    """``--allow_version_labels_for_unavailable_models``: else a label naming a version that
    is not available at start stops the server, as in TF Serving."""

    saved_model_tags: tuple[str, ...] = ("serve",)
    """``--saved_model_tags``: the MetaGraph tags of models a config reload adds."""

    grpc: GrpcOptions | None = None
    """TF Serving's gRPC API (``--port`` and the gRPC flags); None serves REST only."""

    def __post_init__(self) -> None:
        for name in ("num_threads", "max_request_bytes", "max_parsing_bytes",
                     "timeout_seconds"):
            if not getattr(self, name) > 0:
                raise ValueError(f"ServerOptions.{name} must be positive")
        if self.max_queued_requests < 0:
            raise ValueError("ServerOptions.max_queued_requests must not be negative")
