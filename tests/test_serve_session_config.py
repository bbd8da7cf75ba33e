"""--tensorflow_session_config_file (a ConfigProto text proto), --per_process_gpu_memory_fraction
and the parallelism flags: the config smrt encodes is the one TensorFlow's own text parser
makes, it reaches TensorFlow's session, and a field smrt does not apply stops the start with
its name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from smrt.serving.core.config import ConfigError
from smrt.serving.core.session_config import read_session_config

from .conftest import Zoo
from .serving import ServerProcess, version_dir

FULL = """
allow_soft_placement: true
log_device_placement: false
intra_op_parallelism_threads: 2
inter_op_parallelism_threads: -1
device_count { key: "CPU" value: 1 }
device_count { key: "GPU" value: 0 }
device_filters: "/job:localhost"
gpu_options {
  allow_growth: true
  per_process_gpu_memory_fraction: 0.25
  visible_device_list: "0,1"
  allocator_type: "BFC"
}
graph_options { optimizer_options { global_jit_level: ON_1 opt_level: L0 } infer_shapes: 1 }
operation_timeout_in_ms: 60000
use_per_session_threads: false
"""


def test_encoded_as_tensorflow_parses_it(tmp_path: Path, run_python: Any) -> None:
    text = tmp_path / "session.config"
    text.write_text(FULL)
    (tmp_path / "encoded.pb").write_bytes(read_session_config(text))
    # TensorFlow's own protos, in a subprocess: the server never imports them.
    out = run_python(f"""
from google.protobuf import text_format
from tensorflow.core.protobuf import config_pb2
ours = config_pb2.ConfigProto.FromString(open({str(tmp_path / 'encoded.pb')!r}, 'rb').read())
theirs = text_format.Parse(open({str(text)!r}).read(), config_pb2.ConfigProto())
assert ours == theirs, (ours, theirs)
print(theirs.graph_options.optimizer_options.global_jit_level, theirs.gpu_options.allocator_type)
""", env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.split() == ["1", "BFC"]


@pytest.mark.parametrize(("text", "match"), [
    ("rpc_options { }", r"ConfigProto\.rpc_options: unsupported field"),
    ("gpu_options { experimental { } }", r"ConfigProto\.gpu_options\.experimental: unsupported"),
    ("graph_options { rewrite_options { } }", r"graph_options\.rewrite_options: unsupported"),
    ("allow_soft_placement: 3", r"allow_soft_placement: expected true or false"),
    ("intra_op_parallelism_threads: 4294967296", r"expected an int32"),
    ("graph_options { optimizer_options { global_jit_level: ON_9 } }",
     r"global_jit_level: expected one of"),
    ("gpu_options: 1", r"gpu_options: expected a message"),
    ("gpu_options { } gpu_options { }", r"gpu_options: a non-repeated field is specified more"),
])
def test_a_field_smrt_does_not_apply_is_named(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "session.config"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_session_config(path)


@pytest.fixture(scope="module")
def base(zoo: Zoo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("session") / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"))
    return base


def test_the_config_reaches_tensorflow(base: Path, tmp_path: Path) -> None:
    good = tmp_path / "good.config"
    good.write_text(FULL)
    server = ServerProcess(f"--model_base_path={base}", f"--tensorflow_session_config_file={good}",
                           "--per_process_gpu_memory_fraction=0.5",
                           "--tensorflow_intra_op_parallelism=1")
    try:
        reply = server.post("/v1/models/default:predict", json={"instances": [2.0]})
        assert reply.json() == {"predictions": [3.0]}
    finally:
        assert server.stop() == 0
    # No CPU device for the session: TensorFlow itself refuses to create it.
    no_cpu = tmp_path / "no_cpu.config"
    no_cpu.write_text('device_count { key: "CPU" value: 0 }')
    with pytest.raises(RuntimeError, match="No CPU devices are available"):
        ServerProcess(f"--model_base_path={base}", f"--tensorflow_session_config_file={no_cpu}",
                      "--max_num_load_retries=0")


@pytest.mark.parametrize(("flags", "match"), [
    (["--tensorflow_session_config_file={config}"], r"rpc_options: unsupported field"),
    (["--per_process_gpu_memory_fraction=1.5"], "between 0 and 1"),
    (["--tensorflow_session_parallelism=2", "--tensorflow_intra_op_parallelism=1",
      "--tensorflow_inter_op_parallelism=1"], "You cannot configure all"),
])
def test_bad_session_flags_stop_the_start(base: Path, tmp_path: Path, flags: list[str],
                                          match: str) -> None:
    config = tmp_path / "bad.config"
    config.write_text("rpc_options { }")
    with pytest.raises(RuntimeError, match=match):
        ServerProcess(f"--model_base_path={base}", *(f.format(config=config) for f in flags))
