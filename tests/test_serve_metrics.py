"""smrt serve's /monitoring/prometheus/metrics text, rendered without a server."""

from __future__ import annotations

import re

from smrt.serving.metrics import Metrics

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
