"""TF Serving's ``ModelServerConfig`` in protobuf's binary form, as gRPC's
``ModelService/HandleReloadConfigRequest`` carries it, read into the same :class:`ModelConfig`
list a ``--model_config_file`` gives (:func:`config.read_model_config_file`).

Field numbers (tensorflow_serving/config/model_server_config.proto): ModelServerConfig
{model_config_list = 1 {config = 1}, custom_model_config = 2}; ModelConfig{name = 1,
base_path = 2, model_type = 3, model_platform = 4, logging_config = 6, model_version_policy = 7
{latest = 100 {num_versions = 1}, all = 101, specific = 102 {versions = 1}}, version_labels = 8
(map<string, int64>)}. Parsed as protobuf parses: the last scalar wins, embedded messages
merge, repeated fields concatenate (packed or not), and a field that comes with another wire
type than its declared type's is an unknown field, skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from smrt.errors import FailedPreconditionError

from .config import ConfigError, ModelConfig, VersionPolicy, check_base_path, check_name

VARINT, FIXED64, LENGTH_DELIMITED, START_GROUP, END_GROUP, FIXED32 = range(6)
"""Protobuf's wire types."""


@dataclass
class Fields:
    """One message's fields in the order they came: (field number, wire type, value), varints
    and fixed-size values as int, length-delimited ones as bytes. A reader asks for a field
    with the wire type its declared type uses: an occurrence with another wire type is an
    unknown field to it and is skipped, as protobuf's parsers skip it."""

    entries: list[tuple[int, int, int | bytes]] = field(default_factory=list)

    def payloads(self, number: int) -> list[bytes]:
        """Field ``number``'s length-delimited occurrences (a string, bytes or a message)."""
        return [v for n, w, v in self.entries
                if n == number and w == LENGTH_DELIMITED and isinstance(v, bytes)]

    def varints(self, number: int) -> list[int]:
        """Field ``number``'s varint occurrences (an integer, bool or enum)."""
        return [v for n, w, v in self.entries if n == number and w == VARINT and isinstance(v, int)]

    def last_position(self, number: int) -> int:
        """Where field ``number`` last occurred as a message (-1: never), for a oneof of
        messages, whose last member set wins."""
        return max((i for i, (n, w, _) in enumerate(self.entries)
                    if n == number and w == LENGTH_DELIMITED), default=-1)

    def __bool__(self) -> bool:
        return bool(self.entries)


CONFIG_MEMBERS = (1, 2)
"""ModelServerConfig's oneof: model_config_list, custom_model_config."""

POLICY_MEMBERS = (100, 101, 102)
"""FileSystemStoragePathSourceConfig.ServableVersionPolicy's oneof: latest, all, specific."""


def read_model_server_config(data: bytes,
                             tags: tuple[str, ...] = ("serve",)) -> list[ModelConfig]:
    """The models of a serialized ModelServerConfig; ConfigError for anything malformed.

    The config is a oneof whose last member set wins: a model_config_list replaces the served
    models; none set, or a custom_model_config, is FailedPreconditionError with TF Serving's
    words (ServerCore::ReloadConfig from a model_config_list), and changes nothing."""
    top = message_fields(data, "ModelServerConfig")
    if top.last_position(1) <= top.last_position(2):  # -1 for a member never set
        raise FailedPreconditionError(
            "Cannot transition to requested config. It is only legal to transition from one "
            "ModelConfigList to another.")
    configs: list[ModelConfig] = []
    config_list = _oneof_member(top, 1, CONFIG_MEMBERS, "model_config_list")
    for raw in config_list.payloads(1):
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
        choice = max((n for n in POLICY_MEMBERS if policy_fields.payloads(n)), default=None,
                     key=policy_fields.last_position)
        if choice == 100:
            latest = _oneof_member(policy_fields, 100, POLICY_MEMBERS, f"{where}: latest")
            n = _int(latest, 1, 1)
            if n < 1:
                raise ConfigError(f"{where}: latest.num_versions must be a positive integer")
            policy = VersionPolicy("latest", num_versions=n)
        elif choice == 101:
            policy = VersionPolicy("all")
        elif choice == 102:
            specific = _oneof_member(policy_fields, 102, POLICY_MEMBERS, f"{where}: specific")
            versions = _ints(specific, 1, f"{where}: specific.versions")
            if not versions:
                raise ConfigError(f"{where}: specific needs one or more versions")
            policy = VersionPolicy("specific", versions=tuple(versions))
    labels: dict[str, int] = {}
    for entry in fields.payloads(8):
        pair = message_fields(entry, f"{where}: version_labels")
        key = _string(pair, 1, f"{where}: version_labels key")
        if not key:
            raise ConfigError(f"{where}: version_labels needs a key")
        labels[key] = _int(pair, 2, 0)
    return ModelConfig(name=name, base_path=base_path, policy=policy, labels=labels, tags=tags)


# --- the wire format ------------------------------------------------------------------------


def message_fields(data: bytes, what: str) -> Fields:
    """The fields of message ``data`` (``what`` names it in errors). Groups (a deprecated
    encoding no field here uses) are skipped whole, as protobuf skips unknown ones; wire types
    6 and 7, a stray end of group and data cut short are ConfigError naming the field."""
    out = Fields()
    i, n = 0, len(data)
    while i < n:
        tag, i = _varint(data, i, what)
        number, kind = tag >> 3, tag & 7
        if number == 0:
            raise ConfigError(f"{what}: invalid field number 0")
        where = f"{what}: field {number}"
        if kind == VARINT:
            value, i = _varint(data, i, where)
            out.entries.append((number, kind, value))
        elif kind == LENGTH_DELIMITED:
            size, i = _varint(data, i, where)
            if i + size > n:
                raise ConfigError(f"{where} runs past the end of the message")
            out.entries.append((number, kind, data[i:i + size]))
            i += size
        elif kind in (FIXED64, FIXED32):
            width = 8 if kind == FIXED64 else 4
            if i + width > n:
                raise ConfigError(f"{where}: truncated fixed-size field")
            out.entries.append((number, kind, int.from_bytes(data[i:i + width], "little")))
            i += width
        elif kind == START_GROUP:
            i = _skip_group(data, i, number, where)
        elif kind == END_GROUP:
            raise ConfigError(f"{where}: end of a group that was not started")
        else:
            raise ConfigError(f"{where}: invalid wire type {kind}")
    return out


def _skip_group(data: bytes, i: int, number: int, where: str, depth: int = 0) -> int:
    """Where the group of field ``number`` whose fields start at ``i`` ends (past its end
    tag); nested groups are skipped the same way, up to protobuf's nesting limit."""
    if depth > 64:
        raise ConfigError(f"{where}: groups nested too deeply")
    while i < len(data):
        tag, i = _varint(data, i, where)
        kind = tag & 7
        if kind == VARINT:
            _, i = _varint(data, i, where)
        elif kind == LENGTH_DELIMITED:
            size, i = _varint(data, i, where)
            i += size
        elif kind in (FIXED64, FIXED32):
            i += 8 if kind == FIXED64 else 4
        elif kind == START_GROUP:
            i = _skip_group(data, i, tag >> 3, where, depth + 1)
        elif kind == END_GROUP:
            if tag >> 3 != number:
                raise ConfigError(f"{where}: a group ends with another field's end tag")
            return i
        else:
            raise ConfigError(f"{where}: invalid wire type {kind} inside a group")
    raise ConfigError(f"{where}: truncated group")


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


def _merged(fields: Fields, number: int, what: str) -> Fields:
    """A singular message field: its occurrences merged, as protobuf merges them."""
    return message_fields(b"".join(fields.payloads(number)), what)


def _oneof_member(fields: Fields, number: int, members: tuple[int, ...], what: str) -> Fields:
    """Oneof member ``number`` (a message): setting another member clears it, so only its
    occurrences after the last of any other member are merged."""
    cleared = max((fields.last_position(m) for m in members if m != number), default=-1)
    return message_fields(b"".join(
        v for i, (n, w, v) in enumerate(fields.entries)
        if n == number and w == LENGTH_DELIMITED and i > cleared and isinstance(v, bytes)), what)


def _string(fields: Fields, number: int, what: str) -> str:
    values = fields.payloads(number)
    if not values:
        return ""
    try:
        return values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not valid UTF-8") from None


def _int(fields: Fields, number: int, default: int) -> int:
    values = fields.varints(number)
    if not values:
        return default
    value = values[-1]
    return value - (1 << 64) if value >= 1 << 63 else value


def _ints(fields: Fields, number: int, what: str) -> list[int]:
    """A repeated int64 field: single varints and packed runs, in the order they came."""
    out: list[int] = []
    for n, kind, value in fields.entries:
        if n != number:
            continue
        if kind == VARINT and isinstance(value, int):
            out.append(value - (1 << 64) if value >= 1 << 63 else value)
        elif kind == LENGTH_DELIMITED and isinstance(value, bytes):  # packed
            i = 0
            while i < len(value):
                v, i = _varint(value, i, what)
                out.append(v - (1 << 64) if v >= 1 << 63 else v)
    if any(v < 0 for v in out):
        raise ConfigError(f"{what}: versions must not be negative")
    return out
