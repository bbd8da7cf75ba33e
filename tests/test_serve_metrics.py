"""smrt serve's /monitoring/prometheus/metrics text: rendered without a server, and TF
Serving's metric names on a real one."""

from __future__ import annotations

import re
from pathlib import Path

from smrt.serving.core.metrics import Metrics

from .conftest import Zoo
from .serving import ServerProcess, version_dir

_SAMPLE = re.compile(r'^[a-z_]+(\{([a-z_]+="(?:[^"\\]|\\.)*",?)*\})? [0-9.e+-]+$')


def test_metrics_render_prometheus_text() -> None:
    metrics = Metrics()
    metrics.observe("m", "predict", 200, 0.003)
    metrics.observe("m", "predict", 400, 0.0001)
    metrics.observe('we"ird', "status", 404, 100.0)
    text = metrics.render({"m": [1, 2]}, {("m", 2, "serving_default"): (3, 7)})
    for line in text.splitlines():
        assert line.startswith("# ") or _SAMPLE.match(line), line
    assert 'smrt_requests_total{model="m",api="predict",status="200"} 1' in text
    assert 'smrt_request_errors_total{model="m",api="predict"} 1' in text
    assert 'smrt_request_latency_seconds_bucket{model="m",api="predict",le="0.0025"} 1' in text
    assert 'smrt_request_latency_seconds_bucket{model="m",api="predict",le="0.005"} 2' in text
    assert 'smrt_request_latency_seconds_count{model="m",api="predict"} 2' in text
    assert 'le="+Inf"} 1' in text
    assert 'model="we\\"ird"' in text
    assert 'smrt_model_versions_serving{model="m"} 2' in text
    assert 'smrt_batched_requests_total{model="m",version="2",signature="serving_default"} 7' \
        in text


_TF_SAMPLE = re.compile(r'^:[a-z_:]+(\{([A-Za-z_]+="(?:[^"\\]|\\.)*",?)*\})? [0-9.e+-]+$')


def test_tf_servings_metric_names_on_a_real_server(zoo: Zoo, tmp_path: Path) -> None:
    """TF Serving's names, labels and units (microseconds) beside smrt's: what dashboards
    written for tensorflow_model_server read."""
    version = version_dir(tmp_path / "m", 1, zoo.path("half_plus_two"))
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text("prometheus_config { enable: true }")
    server = ServerProcess(f"--model_base_path={tmp_path / 'm'}", "--model_name=m",
                           f"--monitoring_config_file={monitoring}")
    try:
        assert server.post("/v1/models/m:predict", json={"instances": [1.0]}).status_code == 200
        assert server.post("/v1/models/m:predict", json={"instances": ["x"]}).status_code == 400
        assert server.post("/v1/models/m:regress", json={"signature_name": "regress_x_to_y",
                                                         "examples": [{"x": 1.0}]}).ok
        text = server.get("/monitoring/prometheus/metrics").text
    finally:
        assert server.stop() == 0
    tf_lines = [line for line in text.splitlines() if line.startswith(":")]
    for line in tf_lines:
        assert _TF_SAMPLE.match(line), line
    assert ':tensorflow:serving:request_count{model_name="m",status="OK"} 2' in tf_lines
    assert (':tensorflow:serving:request_count{model_name="m",status="INVALID_ARGUMENT"} 1'
            in tf_lines)
    assert (':tensorflow:serving:request_latency_count{model_name="m",API="Predict",'
            'entrypoint="REST"} 2') in tf_lines
    assert (':tensorflow:serving:request_latency_count{model_name="m",API="Regress",'
            'entrypoint="REST"} 1') in tf_lines
    assert (':tensorflow:serving:runtime_latency_count{model_name="m",API="Predict",'
            'runtime="TF1"} 1') in tf_lines
    path = str(version)  # the version directory, as found under the base path
    assert (f':tensorflow:cc:saved_model:load_attempt_count{{model_path="{path}",'
            'status="success"} 1') in tf_lines
    latency = [line for line in tf_lines
               if line.startswith(f':tensorflow:cc:saved_model:load_latency{{model_path="{path}"')]
    assert len(latency) == 1
    assert float(latency[0].split()[-1]) > 0
    assert (f':tensorflow:serving:model_warmup_latency_count{{model_path="{path}",'
            'status="OK"} 1') in tf_lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
