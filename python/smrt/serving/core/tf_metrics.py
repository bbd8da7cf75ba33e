"""TF Serving's own metrics, under TF Serving's names, beside smrt's (:mod:`.metrics`).

Dashboards and alerts written for ``tensorflow_model_server``'s Prometheus endpoint read
these names (TensorFlow's monitoring names with ``/`` turned into ``:``, as TF Serving's
exporter writes them), labels and units (microseconds):

- ``:tensorflow:serving:request_count{model_name, status}``: predict/classify/regress
  requests by canonical status code name (``OK``, ``INVALID_ARGUMENT``...);
- ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``: histogram, receipt
  to reply (entrypoint ``REST`` or ``GRPC``);
- ``:tensorflow:serving:runtime_latency{model_name, API, runtime}``: histogram, the session
  run alone (runtime ``TF1``: a classic session, as TF Serving labels it);
- ``:tensorflow:cc:saved_model:load_attempt_count{model_path, status}`` (``success`` or
  ``fail``) and ``:tensorflow:cc:saved_model:load_latency{model_path}`` (a counter of
  microseconds spent in successful loads);
- ``:tensorflow:serving:model_warmup_latency{model_path, status}``: histogram.

Updated from several threads (the event loop, the pool, the polling thread): one lock.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

BUCKETS_MICROS = tuple(10 * 1.8**i for i in range(33))
"""TF Serving's latency buckets: Buckets::Exponential(10, 1.8, 33) (~20 minutes)."""

_HELP = {
    ":tensorflow:serving:request_count": ("counter", "The total number of requests."),
    ":tensorflow:serving:request_latency": (
        "histogram", "Distribution of wall time (in microseconds) for Tensorflow Serving "
                     "request."),
    ":tensorflow:serving:runtime_latency": (
        "histogram", "Distribution of wall time (in microseconds) for Tensorflow runtime."),
    ":tensorflow:cc:saved_model:load_attempt_count": (
        "counter", "The number of times a SavedModel was successfully loaded."),
    ":tensorflow:cc:saved_model:load_latency": (
        "counter", "Latency in microseconds for SavedModels that were successfully loaded."),
    ":tensorflow:serving:model_warmup_latency": (
        "histogram", "Distribution of wall time (in microseconds) for warming up the model."),
}

Labels = tuple[tuple[str, str], ...]


class TFServingMetrics:
    """Counters and histograms under TF Serving's names; :meth:`render` writes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self._histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)

    def request(self, model: str, api: str, entrypoint: str, status: str,
                seconds: float) -> None:
        """One predict/classify/regress request (``api``: TF Serving's ``Predict``...)."""
        self._count(":tensorflow:serving:request_count",
                    (("model_name", model), ("status", status)))
        self._observe(":tensorflow:serving:request_latency",
                      (("model_name", model), ("API", api), ("entrypoint", entrypoint)), seconds)

    def runtime(self, model: str, api: str, seconds: float) -> None:
        """One session run of a request."""
        self._observe(":tensorflow:serving:runtime_latency",
                      (("model_name", model), ("API", api), ("runtime", "TF1")), seconds)

    def load(self, path: str, ok: bool, seconds: float) -> None:
        """One attempt to load a SavedModel."""
        self._count(":tensorflow:cc:saved_model:load_attempt_count",
                    (("model_path", path), ("status", "success" if ok else "fail")))
        if ok:
            self._count(":tensorflow:cc:saved_model:load_latency", (("model_path", path),),
                        round(seconds * 1e6))

    def warmup(self, path: str, status: str, seconds: float) -> None:
        """One version's warmup (status: ``OK`` or the error's code name)."""
        self._observe(":tensorflow:serving:model_warmup_latency",
                      (("model_path", path), ("status", status)), seconds)

    def _count(self, name: str, labels: Labels, by: float = 1) -> None:
        with self._lock:
            self._counters[name][labels] += by

    def _observe(self, name: str, labels: Labels, seconds: float) -> None:
        micros = seconds * 1e6
        with self._lock:
            cells = self._histograms[name].setdefault(labels, [0.0] * (len(BUCKETS_MICROS) + 2))
            cells[bisect.bisect_left(BUCKETS_MICROS, micros)] += 1
            cells[-1] += micros  # the sum

    def render(self) -> list[str]:
        """Prometheus text lines, TYPE and HELP first for each metric."""
        lines: list[str] = []
        with self._lock:
            for name, counters in sorted(self._counters.items()):
                lines += _header(name)
                for labels, value in sorted(counters.items()):
                    lines.append(f"{name}{{{_labels(labels)}}} {value:g}")
            for name, hists in sorted(self._histograms.items()):
                lines += _header(name)
                for labels, cells in sorted(hists.items()):
                    total = 0.0
                    for bound, n in zip((*BUCKETS_MICROS, float("inf")), cells, strict=False):
                        total += n
                        le = "+Inf" if bound == float("inf") else f"{bound:g}"
                        lines.append(f'{name}_bucket{{{_labels(labels)},le="{le}"}} {total:g}')
                    lines.append(f"{name}_sum{{{_labels(labels)}}} {cells[-1]:g}")
                    lines.append(f"{name}_count{{{_labels(labels)}}} {total:g}")
        return lines


def _header(name: str) -> list[str]:
    kind, text = _HELP[name]
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _labels(labels: Labels) -> str:
    return ",".join(f'{k}="{_esc(v)}"' for k, v in labels)


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


API_NAMES = {"predict": "Predict", "classify": "Classify", "regress": "Regress",
             "multi_inference": "MultiInference"}
"""smrt's API names -> TF Serving's ``API`` label values."""
