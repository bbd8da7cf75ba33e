"""smrt serve's config files: the text-proto parser, --model_config_file, version policies
and --batching_parameters_file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import smrt.errors
from smrt.serving.core import textproto
from smrt.serving.core.config import (
    BatchingOptions,
    ConfigError,
    VersionPolicy,
    read_batching_parameters_file,
    read_model_config_file,
)
from smrt.serving.core.config_wire import read_model_server_config

from .protowire import field, varint


def test_textproto_parses_tf_serving_config_syntax() -> None:
    text = """
    # a comment
    model_config_list {
      config {
        name: 'a' "b"   # adjacent strings concatenate
        base_path: "/m/\\x41\\n"
        model_version_policy: { specific { versions: [1, 0x2, 3] } }
        version_labels < key: "stable" value: -1 >;
        ratio: 1.5e3 flag: true enum_value: LATEST
      }
      config { name: "c" }
    }
    """
    root = textproto.parse(text)
    (config_list,) = root["model_config_list"]
    first, second = config_list["config"]
    assert first["name"] == ["ab"]
    assert first["base_path"] == ["/m/A\n"]
    assert first["model_version_policy"] == [{"specific": [{"versions": [1, 2, 3]}]}]
    assert first["version_labels"] == [{"key": ["stable"], "value": [-1]}]
    assert first["ratio"] == [1500.0]
    assert first["flag"] == [True]
    assert first["enum_value"] == ["LATEST"]
    assert second == {"name": ["c"]}


@pytest.mark.parametrize(("text", "message"), [
    ("config {", r"missing '\}'"),
    ("name \"x\"", "expected ':'"),
    ("name: }", "expected a value"),
    ("name: @", r"cfg: unexpected character '@' \(line 1\)"),
    ("a: 1\n\nb: ?", r"unexpected character '\?' \(line 3\)"),
    ("{ }", "expected a field name"),
])
def test_textproto_errors_say_where(text: str, message: str) -> None:
    with pytest.raises(textproto.TextProtoError, match=message):
        textproto.parse(text, "cfg")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.config"
    path.write_text(text)
    return path


def test_model_config_file(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    path = _write(tmp_path, f"""
    model_config_list {{
      config {{ name: "a" base_path: "{tmp_path / 'a'}" model_platform: "tensorflow" }}
      config {{
        name: "b" base_path: "{tmp_path / 'b'}"
        model_version_policy {{ latest {{ num_versions: 2 }} }}
        version_labels {{ key: "stable" value: 4 }}
        version_labels {{ key: "canary" value: 5 }}
      }}
    }}""")
    a, b = read_model_config_file(path, ("serve", "gpu"))
    assert (a.name, a.base_path, a.policy, a.tags) == (
        "a", str(tmp_path / "a"), VersionPolicy(), ("serve", "gpu"))
    assert b.policy == VersionPolicy("latest", num_versions=2)
    assert b.labels == {"stable": 4, "canary": 5}


@pytest.mark.parametrize(("body", "message"), [
    ("", "no models"),
    ("model_config_list { }", "no models"),
    ("model_config_list { config { base_path: 'BASE' } }", "missing name"),
    ("model_config_list { config { name: 'a' } }", "missing base_path"),
    ("model_config_list { config { name: 'a' base_path: 'BASE/nope' } }", "is not a directory"),
    ("model_config_list { config { name: 'a/b' base_path: 'BASE' } }", "not a model name"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' model_platform: 'pytorch' } }",
     "model_platform 'pytorch' is not served"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' colour: 1 } }",
     "unknown field.*colour"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' } config { name: 'a' "
     "base_path: 'BASE' } }", "configured twice: a"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { latest { num_versions: 0 } } } }", "positive integer"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { specific { } } } }", "one or more versions"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "model_version_policy { all { } latest { } } } }", "one of latest, all, specific"),
    ("model_config_list { config { name: 'a' base_path: 'BASE' "
     "version_labels { key: 'x' } } }", "version_labels needs"),
    ("model_config_list { config { name: 1 base_path: 'BASE' } }", "name must be a string"),
    ("custom_model_config { }", "unknown field.*custom_model_config"),
])
def test_model_config_file_errors(tmp_path: Path, body: str, message: str) -> None:
    path = _write(tmp_path, body.replace("BASE", str(tmp_path)))
    with pytest.raises(ConfigError, match=message):
        read_model_config_file(path)


def test_model_config_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        read_model_config_file(tmp_path / "nope.config")


def test_model_server_config_oneof(tmp_path: Path) -> None:
    """ModelServerConfig{model_config_list = 1, custom_model_config = 2} is a oneof: the last
    member set decides; none set (it would unload every model) or custom is refused as TF
    Serving's ServerCore::ReloadConfig refuses it."""
    (tmp_path / "a").mkdir()
    listed = field(1, field(1, field(1, b"a") + field(2, str(tmp_path / "a").encode())))
    custom = field(2, field(1, b"type.googleapis.com/x"))
    assert [c.name for c in read_model_server_config(custom + listed)] == ["a"]
    for data in (b"", listed + custom, field(1, b"") + custom):
        with pytest.raises(smrt.errors.FailedPreconditionError,
                           match="only legal to transition from one ModelConfigList to another"):
            read_model_server_config(data)
    assert read_model_server_config(field(1, b"")) == []  # an empty list: serve no model


def _tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def test_model_server_config_skips_fields_of_another_wire_type(tmp_path: Path) -> None:
    """A known field that comes with another wire type than its declared type's is an unknown
    field, skipped as protobuf's parsers skip it (it was refused), and so is a group."""
    (tmp_path / "a").mkdir()
    group = _tag(9, 3) + _tag(1, 0) + varint(1) + _tag(2, 3) + _tag(2, 4) + _tag(9, 4)
    policy = _tag(100, 0) + varint(1) + field(100, _tag(1, 5) + b"\0\0\0\0")
    labels = field(8, _tag(1, 0) + varint(3) + field(1, b"stable") + _tag(2, 1) + b"\0" * 8
                   + _tag(2, 0) + varint(4))
    config = (_tag(1, 0) + varint(7) + field(1, b"a") + _tag(2, 5) + b"abcd"
              + field(2, str(tmp_path / "a").encode()) + field(7, policy) + labels + group)
    data = _tag(1, 0) + varint(1) + _tag(2, 1) + b"\0" * 8 + field(1, field(1, config)) + group
    (model,) = read_model_server_config(data)
    assert (model.name, model.base_path) == ("a", str(tmp_path / "a"))
    assert model.policy == VersionPolicy("latest", num_versions=1)  # fixed32: the default
    assert model.labels == {"stable": 4}
    # A custom_model_config (2) given as a varint is no oneof member: the list still counts.
    assert len(read_model_server_config(field(1, field(1, config)) + _tag(2, 0) + varint(1))) == 1


@pytest.mark.parametrize(("policy", "expected"), [
    (field(102, field(1, b"") + _tag(1, 0) + varint(1)) + field(101, b"")
     + field(102, _tag(1, 0) + varint(2)), VersionPolicy("specific", versions=(2,))),
    (field(100, _tag(1, 0) + varint(3)) + field(102, _tag(1, 0) + varint(1)) + field(100, b""),
     VersionPolicy("latest", num_versions=1)),
    (field(102, _tag(1, 0) + varint(1)) + field(102, _tag(1, 0) + varint(2)),
     VersionPolicy("specific", versions=(1, 2))),
], ids=["specific-all-specific", "latest-specific-latest", "specific-merged"])
def test_a_version_policy_member_set_again_starts_afresh(
        tmp_path: Path, policy: bytes, expected: VersionPolicy) -> None:
    # A oneof: setting another member clears the first, so its earlier values are gone
    # (specific{1} all{} specific{2} serves [2], as TF Serving's protobuf parser reads it).
    (tmp_path / "a").mkdir()
    config = field(1, b"a") + field(2, str(tmp_path / "a").encode()) + field(7, policy)
    (model,) = read_model_server_config(field(1, field(1, config)))
    assert model.policy == expected


@pytest.mark.parametrize(("data", "message"), [
    (field(1, b"") + _tag(3, 6), "ModelServerConfig: field 3: invalid wire type 6"),
    (field(1, field(1, field(1, b"a") + _tag(4, 7))), "ModelConfig: field 4: invalid wire type 7"),
    (field(1, b"") + _tag(3, 4), "ModelServerConfig: field 3: end of a group that was not"),
    (field(1, b"") + _tag(3, 3) + _tag(1, 0), "ModelServerConfig: field 3: truncated"),
    (field(1, b"") + _tag(3, 3) + _tag(1, 4), "field 3: a group ends with another field's"),
    (field(1, b"") + _tag(3, 3) * 70, "field 3: groups nested too deeply"),
    (field(1, b"") + _tag(3, 2) + varint(5) + b"ab", "field 3 runs past the end of the message"),
    (field(1, b"") + _tag(3, 1) + b"\0" * 4, "field 3: truncated fixed-size field"),
    (field(1, b"") + _tag(3, 0) + b"\x80", "field 3: truncated or overlong varint"),
], ids=["wire-type-6", "wire-type-7", "stray-end-group", "open-group", "other-end-group",
        "deep-groups", "long-length", "short-fixed64", "short-varint"])
def test_malformed_model_server_configs_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_model_server_config(data)


def test_a_config_is_not_applied_once_stopping() -> None:
    """A reload racing shutdown must not load models into a registry being closed."""
    from smrt.serving.core.config import ServerOptions
    from smrt.serving.core.registry import ModelRegistry
    from smrt.serving.core.tf_metrics import TFServingMetrics

    async def scenario() -> None:
        registry = ModelRegistry([], ServerOptions(), TFServingMetrics())
        await registry.stop()
        with pytest.raises(smrt.errors.UnavailableError, match="shutting down"):
            await registry.apply_config([])
        await registry.close()

    asyncio.run(scenario())


def test_version_policies() -> None:
    found = [3, 1, 10, 2]
    assert VersionPolicy().select(found) == [10]
    assert VersionPolicy("latest", num_versions=2).select(found) == [3, 10]
    assert VersionPolicy("all").select(found) == [1, 2, 3, 10]
    assert VersionPolicy("specific", versions=(2, 7)).select(found) == [2]
    assert VersionPolicy().select([]) == []


def test_batching_parameters_file(tmp_path: Path) -> None:
    path = tmp_path / "batching.config"
    path.write_text("max_batch_size { value: 128 }\nbatch_timeout_micros { value: 0 }\n"
                    "num_batch_threads { value: 4 }\npad_variable_length_inputs: true\n")
    assert read_batching_parameters_file(path) == BatchingOptions(
        max_batch_size=128, batch_timeout_micros=0, num_batch_threads=4)
    path.write_text("max_batch_size { value: 0 }")
    with pytest.raises(ConfigError, match="max_batch_size must be at least 1"):
        read_batching_parameters_file(path)
    path.write_text("max_batch_size { value: 'big' }")
    with pytest.raises(ConfigError, match="must be an integer"):
        read_batching_parameters_file(path)
    path.write_text("max_batch_sizes { value: 1 }")
    with pytest.raises(ConfigError, match="unknown field"):
        read_batching_parameters_file(path)
