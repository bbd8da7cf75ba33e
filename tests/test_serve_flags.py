"""tensorflow_model_server's flags on smrt serve: every one accepted with TF Serving's syntax
and defaults; those without effect logged, those that would change answers refused; and the
ones implemented (monitoring config, CORS, method-name check, version labels, --version),
each against a real server on loopback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from smrt.cli import build_parser
from smrt.cli.serve_flags import (
    IMPLEMENTED,
    NO_EFFECT,
    REFUSED,
    SMRT_DEFAULTS,
    TF_SERVING_FLAGS,
    Flag,
)

from .conftest import Zoo
from .serving import ServerProcess, free_port, version_dir
from .test_serve_lifecycle import POLL, _publish, _start_fails, _wait_until

CPUS = os.cpu_count() or 1

# Transcribed from TF Serving 2.x tensorflow_serving/model_servers/main.cc (flag_list, in its
# order), with the defaults of server.h's Server::Options and main.cc's locals.
MAIN_CC_FLAGS = [
    ("port", 8500), ("grpc_socket_path", ""), ("rest_api_port", 0),
    ("rest_api_num_threads", 4 * CPUS), ("rest_api_timeout_in_ms", 30000),
    ("rest_api_enable_cors_support", False), ("enable_batching", False),
    ("allow_version_labels_for_unavailable_models", False), ("batching_parameters_file", ""),
    ("enable_per_model_batching_parameters", False), ("model_config_file", ""),
    ("model_config_file_poll_wait_seconds", 0), ("model_name", "default"),
    ("model_base_path", ""), ("num_load_threads", 0), ("num_unload_threads", 0),
    ("max_num_load_retries", 5), ("load_retry_interval_micros", 60_000_000),
    ("file_system_poll_wait_seconds", 1), ("flush_filesystem_caches", True),
    ("tensorflow_session_parallelism", 0), ("tensorflow_session_config_file", ""),
    ("tensorflow_intra_op_parallelism", 0), ("tensorflow_inter_op_parallelism", 0),
    ("use_alts_credentials", False), ("ssl_config_file", ""), ("platform_config_file", ""),
    ("per_process_gpu_memory_fraction", 0.0), ("saved_model_tags", ""),
    ("grpc_channel_arguments", ""), ("grpc_max_threads", 4 * CPUS),
    ("enable_model_warmup", True), ("num_request_iterations_for_warmup", 0),
    ("version", False), ("monitoring_config_file", ""),
    ("remove_unused_fields_from_bundle_metagraph", True), ("prefer_tflite_model", False),
    ("num_tflite_pools", CPUS), ("num_tflite_interpreters_per_pool", 1),
    ("enable_signature_method_name_check", False), ("xla_cpu_compilation_enabled", False),
    ("xla_gpu_compilation_enabled", False), ("enable_profiler", True),
    ("thread_pool_factory_config_file", ""), ("mixed_precision", ""),
    ("skip_initialize_tpu", False), ("enable_grpc_healthcheck_service", False),
    ("enable_serialization_as_tensor_content", False),
]


def test_the_table_is_main_cc() -> None:
    assert len(MAIN_CC_FLAGS) == 48
    assert [(f.name, f.default) for f in TF_SERVING_FLAGS] == MAIN_CC_FLAGS
    for flag in TF_SERVING_FLAGS:
        assert flag.treatment in (IMPLEMENTED, NO_EFFECT, REFUSED)
        assert type(flag.default) is flag.type, flag.name
        assert flag.treatment == IMPLEMENTED or flag.why, flag.name


def test_defaults_are_tf_servings() -> None:
    """Left alone, a flag means what it means in TF Serving (None: not given, TF Serving's
    default applies); SMRT_DEFAULTS lists the exceptions and why."""
    parsed = _parse()
    for flag in TF_SERVING_FLAGS:
        default = parsed[flag.name]
        if flag.name in SMRT_DEFAULTS:
            assert default == SMRT_DEFAULTS[flag.name][0], flag.name
        else:
            assert default is None or default == flag.default, flag.name


def _parse(*argv: str) -> dict[str, object]:
    return vars(build_parser().parse_args(["serve", *argv]))


@pytest.mark.parametrize("flag", TF_SERVING_FLAGS, ids=lambda f: f.name)
def test_every_flag_parses_with_tf_servings_syntax(flag: Flag) -> None:
    name, kind = flag.name, flag.type
    if kind is bool:
        assert _parse(f"--{name}")[name] is True
        for text, expected in [("true", True), ("false", False), ("1", True), ("0", False),
                               ("True", True)]:
            assert _parse(f"--{name}={text}")[name] is expected
        with pytest.raises(SystemExit):
            _parse(f"--{name}=maybe")
    else:
        example = {int: "7", float: "0.5", str: "x"}[kind]
        assert _parse(f"--{name}={example}")[name] == kind(example)
        assert _parse(f"--{name}", example)[name] == kind(example)


# A command line as found in deployment scripts: TF Serving's flags, including gRPC and
# TPU/TFLite/warmup ones, in every syntax.
def _real_world_command_line(base: Path, monitoring: Path) -> list[str]:
    return [
        f"--port={free_port()}", "--model_name=hp", f"--model_base_path={base}",
        "--rest_api_num_threads=4", "--rest_api_timeout_in_ms=30000",
        "--rest_api_enable_cors_support", "--enable_batching=false",
        "--allow_version_labels_for_unavailable_models=false",
        "--enable_per_model_batching_parameters=false",
        "--model_config_file_poll_wait_seconds=60", "--num_load_threads=4",
        "--num_unload_threads=2", "--max_num_load_retries=5",
        "--load_retry_interval_micros=60000000", "--file_system_poll_wait_seconds=1",
        "--flush_filesystem_caches=true", "--tensorflow_session_parallelism=2",
        "--tensorflow_intra_op_parallelism=0", "--tensorflow_inter_op_parallelism=0",
        "--use_alts_credentials=false", "--per_process_gpu_memory_fraction=0.5",
        "--saved_model_tags=serve", "--grpc_channel_arguments=grpc.max_connection_age_ms=2000",
        "--grpc_max_threads=8", "--enable_model_warmup=true",
        "--num_request_iterations_for_warmup=1", f"--monitoring_config_file={monitoring}",
        "--remove_unused_fields_from_bundle_metagraph=true", "--prefer_tflite_model=false",
        "--num_tflite_pools=2", "--num_tflite_interpreters_per_pool=1",
        "--enable_signature_method_name_check", "--xla_cpu_compilation_enabled=false",
        "--enable_profiler=true", "--mixed_precision=", "--skip_initialize_tpu=true",
        "--enable_grpc_healthcheck_service=true",
        "--enable_serialization_as_tensor_content=false",
    ]


def test_a_real_world_command_line_starts_and_serves(zoo: Zoo, tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config: {\n  enable: true,\n  path: "/prom/metrics"\n}\n')
    server = ServerProcess(*_real_world_command_line(base, monitoring))
    try:
        reply = server.post("/v1/models/hp:predict", json={"instances": [2.0]})
        assert reply.json() == {"predictions": [3.0]}
        log = server.log
        # One line per flag given that does nothing here, saying why.
        assert re.search(r"gRPC API at 127\.0\.0\.1:\d+ \(plaintext\)", log)
        for name in ["num_load_threads", "flush_filesystem_caches", "skip_initialize_tpu",
                     "num_unload_threads", "enable_profiler"]:
            assert len(re.findall(rf"INFO smrt\.serve: --{name}=\S*: accepted, no effect here "
                                  "because \\S", log)) == 1, name
        assert "--prefer_tflite_model" not in log  # accepted at its default, silently
        assert "--rest_api_enable_cors_support" not in log  # implemented: nothing to say

        # --monitoring_config_file: the metrics at its path, not at TF Serving's default one.
        metrics = server.get("/prom/metrics")
        assert metrics.status_code == 200
        assert 'smrt_requests_total{model="hp",api="predict",status="200"} 1' in metrics.text
        assert server.get("/monitoring/prometheus/metrics").status_code == 404

        # --rest_api_enable_cors_support: TF Serving's headers on replies, preflight answered.
        cors = {"Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "POST, GET",
                "Access-Control-Allow-Headers": "Content-Type"}
        assert {k: reply.headers.get(k) for k in cors} == cors
        preflight = server.session.options(
            server.url + "/v1/models/hp:predict", timeout=60,
            headers={"Origin": "http://example.com", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"})
        assert preflight.status_code == 200
        assert {k: preflight.headers.get(k) for k in cors} == cors
        error = server.get("/v1/models/nope")
        assert error.status_code == 404
        assert error.headers["Access-Control-Allow-Origin"] == "*"

        # --enable_signature_method_name_check: TF Serving's error texts and statuses.
        reply = server.post("/v1/models/hp:classify",
                            json={"examples": [{"x": 1.0}]})  # serving_default: predict
        assert reply.status_code == 400
        assert reply.json() == {"error": "Expected classification signature method_name to be "
                                         "tensorflow/serving/classify. Was: "
                                         "tensorflow/serving/predict"}
        reply = server.post("/v1/models/hp:regress", json={
            "signature_name": "classify_x_to_y", "examples": [{"x": 1.0}]})
        assert reply.status_code == 400
        assert reply.json()["error"] == ("Expected regression signature method_name to be "
                                         "tensorflow/serving/regress. Was: "
                                         "tensorflow/serving/classify")
        reply = server.post("/v1/models/hp:regress", json={
            "signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]})
        assert reply.json() == {"results": [3.0]}
        # A predict on a classify signature is allowed, as in TF Serving.
        reply = server.post("/v1/models/hp:predict", json={
            "signature_name": "classify_x_to_y", "instances": [{"inputs": "x"}]})
        assert "method_name" not in reply.text
    finally:
        assert server.stop() == 0, server.log


def test_defaults_serve_no_prometheus_path_and_no_cors(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: false }\n")
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           "--monitoring_config_file", str(monitoring))
    try:
        reply = server.post("/v1/models/hp:predict", json={"instances": [2.0]})
        assert reply.json() == {"predictions": [3.0]}
        assert "Access-Control-Allow-Origin" not in reply.headers
        assert server.session.options(server.url + "/v1/models/hp:predict",
                                      timeout=60).status_code == 405
        assert server.get("/monitoring/prometheus/metrics").status_code == 404
        assert server.get("/metrics").status_code == 200  # smrt's own, always
        # Without the method-name check, classify on a predict signature fails on its shape.
        reply = server.post("/v1/models/hp:classify", json={"examples": [{"x": 1.0}]})
        assert reply.status_code == 400
        assert "method_name" not in reply.text
    finally:
        assert server.stop() == 0, server.log


def test_prometheus_enabled_without_a_path_uses_tf_servings(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }\n")
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           f"--monitoring_config_file={monitoring}")
    try:
        assert "smrt_model_versions_serving" in server.get(
            "/monitoring/prometheus/metrics").text
    finally:
        assert server.stop() == 0, server.log


def test_prometheus_at_smrts_own_metrics_path(zoo: Zoo, tmp_path: Path) -> None:
    # The path smrt always serves: no second route (aiohttp refused to start with one).
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics" }\n')
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(tmp_path / "hp"),
                           f"--monitoring_config_file={monitoring}")
    try:
        assert "smrt_model_versions_serving" in server.get("/metrics").text
    finally:
        assert server.stop() == 0, server.log


def test_values_that_would_change_answers_are_refused(tmp_path: Path) -> None:
    err = _start_fails("--model_base_path", str(tmp_path), "--prefer_tflite_model=true")
    assert err.strip().splitlines() == [
        "smrt serve: error: --prefer_tflite_model=true is not supported: smrt runs the "
        "SavedModel's TensorFlow graph, never a TensorFlow Lite model (only "
        "--prefer_tflite_model=false is accepted)"]
    err = _start_fails("--model_base_path", str(tmp_path), "--mixed_precision=bfloat16")
    assert "--mixed_precision=bfloat16 is not supported" in err
    bad = tmp_path / "monitoring.config"
    bad.write_text("prometheus_config { enable: true path: 'metrics' }")
    assert "must start with '/'" in _start_fails("--model_base_path", str(tmp_path),
                                                 "--monitoring_config_file", str(bad))
    bad.write_text("prometheus { enable: true }")
    assert "unknown field(s) prometheus" in _start_fails(
        "--model_base_path", str(tmp_path), "--monitoring_config_file", str(bad))


def test_version_labels_for_unavailable_versions(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    config = tmp_path / "models.config"
    config.write_text(f"""model_config_list {{ config {{
        name: "hp" base_path: "{tmp_path / 'hp'}" model_platform: "tensorflow"
        version_labels {{ key: "stable" value: 1 }}
        version_labels {{ key: "canary" value: 2 }} }} }}""")
    err = _start_fails("--model_config_file", str(config))
    assert ("Request to assign label to version 2 of model hp, which is not currently "
            "available for inference") in err
    server = ServerProcess("--model_config_file", str(config),
                           "--allow_version_labels_for_unavailable_models")
    try:
        assert server.post("/v1/models/hp/labels/stable:predict",
                           json={"instances": [2.0]}).json() == {"predictions": [3.0]}
        reply = server.post("/v1/models/hp/labels/canary:predict", json={"instances": [2.0]})
        assert reply.status_code == 404
    finally:
        assert server.stop() == 0, server.log


def test_version_prints_smrts_and_tensorflows_and_exits() -> None:
    import smrt

    result = subprocess.run([sys.executable, "-m", "smrt", "serve", "--version"],
                            capture_output=True, text=True, timeout=120,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"TensorFlow ModelServer: smrt {smrt.__version__}"
    assert re.fullmatch(r"TensorFlow Library: \d+\.\d+\.\S+", lines[1]), lines


def _break(source: str, tmp_path: Path, name: str) -> Path:
    broken = tmp_path / name
    shutil.copytree(source, broken)
    (broken / "saved_model.pb").write_bytes(b"\x0a\xff\xff not a SavedModel")
    return broken


def _status(server: ServerProcess, version: int) -> dict[str, object]:
    reply = server.get(f"/v1/models/hp/versions/{version}")
    (status,) = reply.json()["model_version_status"]
    return status  # type: ignore[no-any-return]


def test_a_failed_load_is_retried_as_told(zoo: Zoo, tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"), copy=True)
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base), *POLL,
                           "--model_config_file_poll_wait_seconds=0",
                           "--max_num_load_retries=3", "--load_retry_interval_micros=300000")
    try:
        # Broken for good: tried 1 + 3 times, then given up, with the error in its status.
        os.rename(_break(zoo.path("half_plus_three"), tmp_path, "b2"), base / "2")
        server.wait_for_log("model hp: version 2: retry 3 of 3 in 0.3 s")
        _wait_until(lambda: _status(server, 2)["state"] == "END")
        assert len(re.findall("version 2 failed to load", server.log)) == 4
        status = _status(server, 2)
        assert status["status"]["error_code"] == "DATA_LOSS"  # type: ignore[index]
        assert server.post("/v1/models/hp:predict",
                           json={"instances": [2.0]}).json() == {"predictions": [3.0]}
        # Broken while being copied in, complete before the retries run out: it is served.
        os.rename(_break(zoo.path("half_plus_three"), tmp_path, "b3"), base / "3")
        server.wait_for_log("model hp: version 3: retry 1 of 3")
        shutil.copy(Path(zoo.path("half_plus_three")) / "saved_model.pb", base / "3")
        _wait_until(lambda: _status(server, 3)["state"] == "AVAILABLE")
        assert server.post("/v1/models/hp:predict",
                           json={"instances": [2.0]}).json() == {"predictions": [4.0]}
    finally:
        assert server.stop() == 0, server.log


def test_tf_servings_retry_defaults_and_stopping_while_waiting(zoo: Zoo,
                                                              tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"), copy=True)
    server = ServerProcess("--model_name", "hp", "--model_base_path", str(base), *POLL)
    try:
        _publish(base, 2, str(_break(zoo.path("half_plus_three"), tmp_path, "b2")))
        server.wait_for_log("model hp: version 2: retry 1 of 5 in 60 s")
        status = _status(server, 2)  # still loading, and saying why
        assert status["state"] == "LOADING"
        assert status["status"]["error_code"] == "DATA_LOSS"  # type: ignore[index]
        assert "saved_model.pb" in status["status"]["error_message"]  # type: ignore[index]
    finally:
        start = time.monotonic()
        assert server.stop() == 0, server.log
        assert time.monotonic() - start < 20  # not the minute of the retry's wait


def _write_config(path: Path, text: str) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(text)
    os.rename(staging, path)  # the server never reads half a file


def test_model_config_file_is_re_read_live(zoo: Zoo, tmp_path: Path) -> None:
    version_dir(tmp_path / "hp", 1, zoo.path("half_plus_two"))
    version_dir(tmp_path / "hp", 2, zoo.path("half_plus_three"))
    version_dir(tmp_path / "other", 1, zoo.path("half_plus_three"))
    config = tmp_path / "models.config"

    def model(name: str, base: str, extra: str = "") -> str:
        return (f'config {{ name: "{name}" base_path: "{tmp_path / base}" '
                f'model_platform: "tensorflow" {extra} }}')

    only_1 = "model_version_policy { specific { versions: 1 } }"
    only_2 = "model_version_policy { specific { versions: 2 } }"
    _write_config(config, f"model_config_list {{ {model('a', 'hp', only_1)} }}")
    server = ServerProcess("--model_config_file", str(config), *POLL,
                           "--model_config_file_poll_wait_seconds=1")

    def predict(name: str) -> object:
        return server.post(f"/v1/models/{name}:predict", json={"instances": [2.0]}).json()

    try:
        assert predict("a") == {"predictions": [3.0]}
        assert server.get("/v1/models/b").status_code == 404
        # A model added, another re-versioned and labelled.
        _write_config(config, "model_config_list { "
                      + model("a", "hp", only_2 + ' version_labels { key: "stable" value: 2 }')
                      + model("b", "other") + " }")
        _wait_until(lambda: predict("b") == {"predictions": [4.0]})
        _wait_until(lambda: predict("a") == {"predictions": [4.0]})
        assert server.post("/v1/models/a/labels/stable:predict",
                           json={"instances": [2.0]}).json() == {"predictions": [4.0]}
        # A model dropped; a label naming a version not available is refused, as TF Serving.
        _write_config(config, "model_config_list { " + model(
            "a", "hp", only_2 + ' version_labels { key: "canary" value: 9 }') + " }")
        _wait_until(lambda: server.get("/v1/models/b").status_code == 404)
        server.wait_for_log(r"model a: label 'canary' not assigned: Request to assign label to "
                            "version 9 of model a, which is not currently available")
        assert server.post("/v1/models/a/labels/canary:predict",
                           json={"instances": [2.0]}).status_code == 404
        time.sleep(2.5)  # more reloads of the same file: the refusal is logged once
        assert len(re.findall("label 'canary' not assigned", server.log)) == 1
        # A broken file changes nothing.
        _write_config(config, "model_config_list { config { name: ")
        server.wait_for_log("model config not reloaded: ")
        assert predict("a") == {"predictions": [4.0]}
    finally:
        assert server.stop() == 0, server.log


def test_a_refused_label_is_assigned_once_its_version_is_available(zoo: Zoo,
                                                                   tmp_path: Path) -> None:
    base = tmp_path / "hp"
    version_dir(base, 1, zoo.path("half_plus_two"))
    config = tmp_path / "models.config"
    _write_config(config, f'model_config_list {{ config {{ name: "a" base_path: "{base}" '
                  "model_version_policy { all { } } }}")
    server = ServerProcess("--model_config_file", str(config), *POLL,
                           "--model_config_file_poll_wait_seconds=1")
    try:
        _write_config(config, f'model_config_list {{ config {{ name: "a" base_path: "{base}" '
                      'model_version_policy { all { } } version_labels { key: "canary" '
                      "value: 2 } }}")
        server.wait_for_log("label 'canary' not assigned")
        _publish(base, 2, zoo.path("half_plus_three"))  # the file itself is unchanged
        server.wait_for_log("label 'canary' assigned to version 2, now available")
        assert server.post("/v1/models/a/labels/canary:predict",
                           json={"instances": [2.0]}).json() == {"predictions": [4.0]}
    finally:
        assert server.stop() == 0, server.log


def test_retries_do_not_hold_up_other_models(zoo: Zoo, tmp_path: Path) -> None:
    """A version waiting a minute to be retried does not stop another model's new version
    from being picked up meanwhile (the polling thread never sleeps on a retry)."""
    version_dir(tmp_path / "a", 1, zoo.path("half_plus_two"))
    version_dir(tmp_path / "b", 1, zoo.path("half_plus_two"))
    config = tmp_path / "models.config"
    _write_config(config, "model_config_list { " + " ".join(
        f'config {{ name: "{n}" base_path: "{tmp_path / n}" }}' for n in "ab") + " }")
    server = ServerProcess("--model_config_file", str(config), *POLL)
    try:
        _publish(tmp_path / "a", 2, str(_break(zoo.path("half_plus_three"), tmp_path, "b2")))
        server.wait_for_log("model a: version 2: retry 1 of 5 in 60 s")
        _publish(tmp_path / "b", 2, zoo.path("half_plus_three"))
        _wait_until(lambda: server.post("/v1/models/b:predict", json={"instances": [2.0]})
                    .json() == {"predictions": [4.0]}, timeout=20)
    finally:
        assert server.stop() == 0, server.log


def test_method_name_check_on_predict(tmp_path: Path, run_python: Any) -> None:
    """A signature with a method name outside TF Serving's three: predict refuses it with
    TF Serving's error (500) under the check, and runs it without."""
    run_python(f"""
import tensorflow as tf
v1 = tf.compat.v1
with tf.Graph().as_default(), v1.Session() as sess:
    x = v1.placeholder(tf.float32, [None], name="x")
    y = tf.identity(2.0 * x, name="y")
    builder = v1.saved_model.Builder({str(tmp_path / "m" / "1")!r})
    info = v1.saved_model.build_tensor_info
    sig = v1.saved_model.build_signature_def({{"x": info(x)}}, {{"y": info(y)}}, "custom/run")
    builder.add_meta_graph_and_variables(sess, ["serve"],
                                         signature_def_map={{"serving_default": sig}})
    builder.save()
""", env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    for check, expected in [(False, None), (True, 500)]:
        server = ServerProcess("--model_name", "m", "--model_base_path", str(tmp_path / "m"),
                               f"--enable_signature_method_name_check={str(check).lower()}")
        try:
            reply = server.post("/v1/models/m:predict", json={"instances": [1.5]})
            if expected is None:
                assert reply.json() == {"predictions": [3.0]}
            else:
                assert reply.status_code == expected
                assert reply.json() == {"error": (
                    "Expected prediction signature method_name to be one of "
                    "{tensorflow/serving/predict, tensorflow/serving/classify, "
                    "tensorflow/serving/regress}. Was: custom/run")}
        finally:
            assert server.stop() == 0, server.log


class _Stop(Exception):
    pass


@pytest.mark.parametrize(("flags", "intra", "inter"), [
    ([], 0, 0),
    (["--tensorflow_session_parallelism=3"], 3, 3),
    (["--tensorflow_session_parallelism=3", "--tensorflow_intra_op_parallelism=1"], 1, 0),
    (["--tensorflow_session_parallelism=3", "--tensorflow_inter_op_parallelism=2"], 0, 2),
    (["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=2"], 1, 2),
])
def test_session_parallelism_sets_both_pools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             flags: list[str], intra: int, inter: int) -> None:
    """As TF Serving (server.cc BuildAndStart): the session parallelism sizes both thread
    pools, unless either specific flag is given: then those two set the pools (0: TensorFlow
    chooses)."""
    from smrt.cli import serve

    seen: list[dict[str, object]] = []

    def loader(**options: object) -> None:
        seen.append(options)
        raise _Stop

    monkeypatch.setattr(serve, "default_loader", loader)
    args = build_parser().parse_args(["serve", "--model_base_path", str(tmp_path), *flags])
    with pytest.raises(_Stop):
        args.func(args)
    assert (seen[0]["intra_op_threads"], seen[0]["inter_op_threads"]) == (intra, inter)
