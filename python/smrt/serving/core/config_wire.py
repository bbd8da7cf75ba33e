"""TF Serving's ``ModelServerConfig`` in protobuf's binary form, as gRPC's
``ModelService/HandleReloadConfigRequest`` carries it, read into the same :class:`ModelConfig`
list a ``--model_config_file`` gives (:func:`config.read_model_config_file`).

Field numbers (tensorflow_serving/config/model_server_config.proto): ModelServerConfig
{model_config_list = 1 {config = 1}, custom_model_config = 2}; ModelConfig{name = 1,
base_path = 2, model_type = 3, model_platform = 4, logging_config = 6, model_version_policy = 7
{latest = 100 {num_versions = 1}, all = 101, specific = 102 {versions = 1}}, version_labels = 8
(map<string, int64>)}. Parsed as protobuf parses: the last scalar wins, embedded messages
merge, repeated fields concatenate (packed or not)."""

from __future__ import annotations

from dataclasses import dataclass, field

from smrt.errors import FailedPreconditionError

from .config import ConfigError, ModelConfig, VersionPolicy, check_base_path, check_name


@dataclass
class Fields:
    """One message's fields: number -> values in order (varints and fixed-size as int,
    length-delimited as bytes), and the order the field numbers came in."""

    values: dict[int, list[int | bytes]] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)

    def get(self, number: int, default: list[int | bytes] | None = None) -> list[int | bytes]:
        return self.values.get(number, default if default is not None else [])

    def __bool__(self) -> bool:
        return bool(self.values)


def read_model_server_config(data: bytes,
                             tags: tuple[str, ...] = ("serve",)) -> list[ModelConfig]:
    """The models of a serialized ModelServerConfig; ConfigError for anything malformed.

    The config is a oneof whose last member set wins: a model_config_list replaces the served
    models; none set, or a custom_model_config, is FailedPreconditionError with TF Serving's
    words (ServerCore::ReloadConfig from a model_config_list), and changes nothing."""
    top = message_fields(data, "ModelServerConfig")
    if _last_position(top, 1) <= _last_position(top, 2):  # -1 for a member never set
        raise FailedPreconditionError(
            "Cannot transition to requested config. It is only legal to transition from one "
            "ModelConfigList to another.")
    # Switching oneof members clears the old one: lists before the last custom one are dropped.
    dropped = top.order[:_last_position(top, 2) + 1].count(1)
    lists = Fields({1: top.get(1)[dropped:]})
    configs: list[ModelConfig] = []
    for config_list in _messages(lists, 1, "model_config_list"):
        for raw in _repeated(message_fields(config_list, "model_config_list"), 1, "config"):
            configs.append(_model_config(raw, tags))
    names = [c.name for c in configs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"ModelServerConfig: model name(s) configured twice: "
                          f"{', '.join(duplicated)}")
    return configs


def _model_config(raw: bytes, tags: tuple[str, ...]) -> ModelConfig:
    fields = message_fields(raw, "ModelConfig")
    name = check_name(_string(fields, 1, "ModelConfig.name"), "ModelConfig name")
    where = f"model {name!r}"
    platform = _string(fields, 4, f"{where}: model_platform") or "tensorflow"
    if platform != "tensorflow":
        raise ConfigError(f"{where}: model_platform {platform!r} is not served "
                          "(only 'tensorflow')")
    base_path = check_base_path(_string(fields, 2, f"{where}: base_path"), name)
    policy = VersionPolicy()
    policy_fields = _merged(fields, 7, f"{where}: model_version_policy")
    if policy_fields:
        choice = max((n for n in (100, 101, 102) if policy_fields.get(n)), default=None,
                     key=lambda n: _last_position(policy_fields, n))
        if choice == 100:
            latest = _merged(policy_fields, 100, f"{where}: latest")
            n = _int(latest, 1, 1)
            if n < 1:
                raise ConfigError(f"{where}: latest.num_versions must be a positive integer")
            policy = VersionPolicy("latest", num_versions=n)
        elif choice == 101:
            policy = VersionPolicy("all")
        elif choice == 102:
            specific = _merged(policy_fields, 102, f"{where}: specific")
            versions = _ints(specific, 1, f"{where}: specific.versions")
            if not versions:
                raise ConfigError(f"{where}: specific needs one or more versions")
            policy = VersionPolicy("specific", versions=tuple(versions))
    labels: dict[str, int] = {}
    for entry in _repeated(fields, 8, f"{where}: version_labels"):
        pair = message_fields(entry, f"{where}: version_labels")
        key = _string(pair, 1, f"{where}: version_labels key")
        if not key:
            raise ConfigError(f"{where}: version_labels needs a key")
        labels[key] = _int(pair, 2, 0)
    return ModelConfig(name=name, base_path=base_path, policy=policy, labels=labels, tags=tags)


# --- the wire format ------------------------------------------------------------------------


def message_fields(data: bytes, what: str) -> Fields:
    """The fields of message ``data`` (``what`` names it in errors)."""
    out = Fields()
    i, n = 0, len(data)
    while i < n:
        tag, i = _varint(data, i, what)
        number, kind = tag >> 3, tag & 7
        if number == 0:
            raise ConfigError(f"{what}: invalid field number 0")
        if kind == 0:
            value, i = _varint(data, i, what)
            out.values.setdefault(number, []).append(value)
        elif kind == 2:
            size, i = _varint(data, i, what)
            if i + size > n:
                raise ConfigError(f"{what}: a field runs past the end of the message")
            out.values.setdefault(number, []).append(data[i:i + size])
            i += size
        elif kind in (1, 5):
            width = 8 if kind == 1 else 4
            if i + width > n:
                raise ConfigError(f"{what}: truncated fixed-size field")
            out.values.setdefault(number, []).append(int.from_bytes(data[i:i + width], "little"))
            i += width
        else:
            raise ConfigError(f"{what}: unsupported wire type {kind}")
        out.order.append(number)
    return out


def _last_position(fields: Fields, number: int) -> int:
    """Where ``number`` last occurred (for a oneof: the last member set wins)."""
    return max((i for i, n in enumerate(fields.order) if n == number), default=-1)


def _varint(data: bytes, i: int, what: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(data) or shift > 63:
            raise ConfigError(f"{what}: truncated or overlong varint")
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _messages(fields: Fields, number: int, what: str) -> list[bytes]:
    values = fields.get(number, [])
    if not all(isinstance(v, bytes) for v in values):
        raise ConfigError(f"{what} must be a message")
    return [b"".join(values)] if values else []  # type: ignore[arg-type]  # singular: merged


def _repeated(fields: Fields, number: int, what: str) -> list[bytes]:
    values = fields.get(number, [])
    if not all(isinstance(v, bytes) for v in values):
        raise ConfigError(f"{what} must be a message")
    return values  # type: ignore[return-value]


def _merged(fields: Fields, number: int, what: str) -> Fields:
    merged = _messages(fields, number, what)
    return message_fields(merged[0], what) if merged else Fields()


def _string(fields: Fields, number: int, what: str) -> str:
    values = fields.get(number, [])
    if not values:
        return ""
    value = values[-1]
    if not isinstance(value, bytes):
        raise ConfigError(f"{what} must be a string")
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not valid UTF-8") from None


def _int(fields: Fields, number: int, default: int) -> int:
    values = [v for v in fields.get(number, []) if isinstance(v, int)]
    if not values:
        return default
    value = values[-1]
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(fields: Fields, number: int, what: str) -> list[int]:
    out: list[int] = []
    for value in fields.get(number, []):
        if isinstance(value, int):
            out.append(value - (1 << 64) if value >= 1 << 63 else value)
        else:  # packed
            i = 0
            while i < len(value):
                v, i = _varint(value, i, what)
                out.append(v - (1 << 64) if v >= 1 << 63 else v)
    if any(v < 0 for v in out):
        raise ConfigError(f"{what}: versions must not be negative")
    return out
