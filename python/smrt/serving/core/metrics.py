"""Request metrics in Prometheus' text exposition format (``GET /metrics``).

Counts requests by model, API and HTTP status, and latencies as a histogram by model and API;
no client library needed. Updated from the event loop only, so no lock.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

# Seconds; Prometheus' default buckets plus finer ones where model calls live.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: dict[tuple[str, str], list[int]] = {}
        self._latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.in_flight = 0

    def observe(self, model: str, api: str, status: int, seconds: float) -> None:
        """One finished request. ``model`` is "" for requests not about a model."""
        self._requests[model, api, status] += 1
        counts = self._latency.setdefault((model, api), [0] * (len(BUCKETS) + 1))
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._latency_sum[model, api] += seconds

    def render(self, serving: dict[str, list[int]] | None = None,
               batches: dict[tuple[str, int, str], tuple[int, int]] | None = None,
               load: tuple[int, int] | None = None) -> str:
        """The exposition text. ``serving``: versions served by model name; ``batches``:
        (batches run, requests in them) by (model, version, signature); ``load``: (bytes of
        bodies being parsed, jobs in the thread pool)."""
        lines = [
            "# HELP smrt_requests_total REST requests by model, API and HTTP status.",
            "# TYPE smrt_requests_total counter",
        ]
        for (model, api, status), n in sorted(self._requests.items()):
            lines.append(f'smrt_requests_total{{model="{_esc(model)}",api="{api}",'
                         f'status="{status}"}} {n}')
        lines += [
            "# HELP smrt_request_errors_total REST requests answered with an error status.",
            "# TYPE smrt_request_errors_total counter",
        ]
        errors: dict[tuple[str, str], int] = defaultdict(int)
        for (model, api, status), n in self._requests.items():
            if status >= 400:
                errors[model, api] += n
        for (model, api), n in sorted(errors.items()):
            lines.append(f'smrt_request_errors_total{{model="{_esc(model)}",api="{api}"}} {n}')
        lines += [
            "# HELP smrt_request_latency_seconds REST request latency, receipt to reply.",
            "# TYPE smrt_request_latency_seconds histogram",
        ]
        for (model, api), counts in sorted(self._latency.items()):
            labels = f'model="{_esc(model)}",api="{api}"'
            total = 0
            for bound, n in zip((*BUCKETS, float("inf")), counts, strict=True):
                total += n
                le = "+Inf" if bound == float("inf") else repr(bound)
                lines.append(f'smrt_request_latency_seconds_bucket{{{labels},le="{le}"}} {total}')
            lines.append(f"smrt_request_latency_seconds_sum{{{labels}}} "
                         f"{self._latency_sum[model, api]!r}")
            lines.append(f"smrt_request_latency_seconds_count{{{labels}}} {total}")
        lines += [
            "# HELP smrt_requests_in_flight REST requests being handled now.",
            "# TYPE smrt_requests_in_flight gauge",
            f"smrt_requests_in_flight {self.in_flight}",
        ]
        if load is not None:
            lines += [
                "# HELP smrt_parsing_bytes Bytes of request bodies being read or parsed now.",
                "# TYPE smrt_parsing_bytes gauge",
                f"smrt_parsing_bytes {load[0]}",
                "# HELP smrt_pool_jobs Jobs running or waiting in the request thread pool.",
                "# TYPE smrt_pool_jobs gauge",
                f"smrt_pool_jobs {load[1]}",
            ]
        lines += [
            "# HELP smrt_model_versions_serving Versions of each model being served.",
            "# TYPE smrt_model_versions_serving gauge",
        ]
        for model, versions in sorted((serving or {}).items()):
            lines.append(f'smrt_model_versions_serving{{model="{_esc(model)}"}} {len(versions)}')
        if batches:
            for metric, index, text in (
                    ("smrt_batches_total", 0, "Session runs that served two or more requests."),
                    ("smrt_batched_requests_total", 1, "Requests answered by those runs.")):
                lines += [f"# HELP {metric} {text}", f"# TYPE {metric} counter"]
                for (model, version, signature), pair in sorted(batches.items()):
                    lines.append(f'{metric}{{model="{_esc(model)}",version="{version}",'
                                 f'signature="{_esc(signature)}"}} {pair[index]}')
        return "\n".join(lines) + "\n"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
