"""--enable_per_model_batching_parameters against a real smrt serve."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import Zoo
from .serving import ServerProcess, version_dir, version_with_files


def test_per_model_batching_parameters(zoo: Zoo, tmp_path: Path) -> None:
    """--enable_per_model_batching_parameters: a version batches with the
    batching_params.pbtxt in its directory, and one without it does not batch (TF Serving's
    GetPerModelBatchingParams); a bad file fails the load, naming it."""
    own_params = b"max_batch_size { value: 8 } batch_timeout_micros { value: 400000 }"
    version_with_files(tmp_path / "own", 1, zoo.path("half_plus_two"),
                       {"batching_params.pbtxt": own_params})
    version_dir(tmp_path / "plain", 1, zoo.path("half_plus_two"))
    config = tmp_path / "models.config"
    entries = " ".join(f'config {{ name: "{n}" base_path: "{tmp_path / n}" }}'
                       for n in ("own", "plain"))
    config.write_text(f"model_config_list {{ {entries} }}")
    server = ServerProcess(f"--model_config_file={config}", "--enable_batching",
                           "--enable_per_model_batching_parameters")
    try:
        timings = {}
        for name in ("own", "plain"):
            start = time.perf_counter()
            reply = server.post(f"/v1/models/{name}:predict", json={"instances": [2.0]})
            timings[name] = time.perf_counter() - start
            assert reply.json() == {"predictions": [3.0]}
        # Its own 400 ms batch timeout: a lone request waits for company (the server's
        # default is 1 ms); the other model has no batcher at all.
        assert timings["own"] > 0.3 > timings["plain"], timings
        metrics = server.get("/metrics").text
        assert 'smrt_batches_total{model="own",version="1",signature="serving_default"}' in (
            metrics)
        assert 'model="plain",version="1"' not in metrics
    finally:
        assert server.stop() == 0
    bad = tmp_path / "bad"
    version_with_files(bad, 1, zoo.path("half_plus_two"),
                       {"batching_params.pbtxt": b"max_batch_size { value: 0 }"})
    with pytest.raises(RuntimeError, match="batching: max_batch_size must be at least 1"):
        ServerProcess(f"--model_base_path={bad}", "--enable_batching",
                      "--enable_per_model_batching_parameters", "--max_num_load_retries=0")
