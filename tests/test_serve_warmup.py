"""Model warmup (--enable_model_warmup, --num_request_iterations_for_warmup): a version's
assets.extra/tf_serving_warmup_requests, written by TensorFlow's TFRecordWriter with
tensorflow-serving-api's PredictionLog (tests/tf_serving_protos.py), is replayed before the
version is AVAILABLE; a bad record fails the load with a message naming it; and the first real
request after load is no slower than later ones, unlike without warmup."""

from __future__ import annotations

import statistics
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import smrt.errors
from smrt import _core
from smrt.serving.core.warmup import read_records

from .conftest import Zoo
from .serving import ServerProcess, version_with_files

MODEL = "tf_serving_half_plus_two"
COPIES = 5


def warmed_version(base: Path, version: int, source: str, warmup: Path | None) -> Path:
    """``base/<version>``: the SavedModel at ``source`` with ``warmup`` as its
    assets.extra/tf_serving_warmup_requests."""
    files = {} if warmup is None else {"assets.extra/tf_serving_warmup_requests": warmup}
    return version_with_files(base, version, source, files)  # type: ignore[arg-type]


def _warmup_file(tf_protos: Path, name: str) -> Path:
    return tf_protos / "warmup" / name / "tf_serving_warmup_requests"


@pytest.fixture(scope="module")
def server(zoo: Zoo, tf_protos: Path, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[ServerProcess]:
    """Ten copies of the model: w0..w4 with the warmup file (every log type), u0..u4 without."""
    root = tmp_path_factory.mktemp("warmup")
    config = []
    for name in [f"{kind}{i}" for kind in "wu" for i in range(COPIES)]:
        warmup = _warmup_file(tf_protos, "good") if name.startswith("w") else None
        warmed_version(root / name, 1, zoo.path(MODEL), warmup)
        config.append(f'config {{ name: "{name}" base_path: "{root / name}" }}')
    models = "\n".join(config)
    (root / "models.config").write_text(f"model_config_list {{\n{models}\n}}\n")
    process = ServerProcess(f"--model_config_file={root / 'models.config'}",
                            "--num_request_iterations_for_warmup=2", "--access_log=false")
    yield process
    assert process.stop() == 0


def test_every_record_is_replayed_before_the_version_serves(server: ServerProcess) -> None:
    # predict, classify, regress and multi-inference logs, twice each.
    lines = [line for line in server.lines if "warmup records replayed" in line]
    assert len(lines) == COPIES, server.log
    assert all("4 warmup records replayed 2 time(s)" in line for line in lines), lines
    # Replayed before AVAILABLE: the server was ready (all versions AVAILABLE) after them.
    ready = next(i for i, line in enumerate(server.lines) if "REST API at" in line)
    assert all(server.lines.index(line) < ready for line in lines)


def _first_request_ratio(server: ServerProcess, name: str, later: int = 15) -> float:
    """The first predict request's latency over the median of the next ``later``."""
    times = []
    for _ in range(1 + later):
        start = time.perf_counter()
        reply = server.post(f"/v1/models/{name}:predict", json={"instances": [[2.0]]})
        times.append(time.perf_counter() - start)
        assert reply.json() == {"predictions": [[3.0]]}
    return times[0] / statistics.median(times[1:])


def test_the_first_request_is_no_slower_than_later_ones(server: ServerProcess) -> None:
    # Unwarmed, TensorFlow optimizes the graph on the first run (about ten milliseconds
    # against one for a request); the median over five models each way, measured in turns,
    # keeps a few noisy requests on a busy machine out.
    assert server.get("/v1/models/u0").status_code == 200  # the connection is up
    warmed: list[float] = []
    unwarmed: list[float] = []
    for i in range(COPIES):
        warmed.append(_first_request_ratio(server, f"w{i}"))
        unwarmed.append(_first_request_ratio(server, f"u{i}"))
    assert statistics.median(warmed) < 2.0, (warmed, unwarmed)
    # The contrast: without warmup, the first request is several times slower (less so on a
    # loaded machine, where the later requests slow down too).
    assert statistics.median(unwarmed) > max(2.5, 2 * statistics.median(warmed)), (
        warmed, unwarmed)


@pytest.mark.parametrize(("name", "message"), [
    ("bad_input", r"warmup record 1 of \S+tf_serving_warmup_requests: .*nope"),
    ("too_many", r"Number of warmup records exceeds the maximum \(1000\)"),
    ("not_a_prediction_log", r"warmup record 0 of \S+: not a PredictionLog"),
    ("bad_crc", r"corrupted record \(checksum mismatch\) at byte 0\. Please verify your "
                "warmup data is in TFRecord format"),
])
def test_a_bad_record_fails_the_load(zoo: Zoo, tf_protos: Path, tmp_path: Path, name: str,
                                     message: str) -> None:
    warmed_version(tmp_path / "m", 1, zoo.path(MODEL), _warmup_file(tf_protos, name))
    with pytest.raises(RuntimeError, match=message):
        ServerProcess(f"--model_base_path={tmp_path / 'm'}", "--max_num_load_retries=0")


def test_a_record_longer_than_the_file_is_refused_before_reading(tmp_path: Path) -> None:
    # A 20-byte file whose (checksummed) header says 2**50 bytes: reading that much would
    # allocate it first (a MemoryError, or 16 GiB for 2**34), then find 8 bytes.
    length = struct.pack("<Q", 2**50)
    path = tmp_path / "tf_serving_warmup_requests"
    path.write_bytes(length + struct.pack("<I", _core.masked_crc32c(length)) + b"\0" * 8)
    with open(path, "rb") as f, pytest.raises(
            smrt.errors.DataLossError, match=r"truncated record \(its header says 1125899906842624 "
                                             r"bytes\) at byte 0"):
        list(read_records(f, str(path)))


def test_warmup_can_be_turned_off(zoo: Zoo, tf_protos: Path, tmp_path: Path) -> None:
    warmed_version(tmp_path / "m", 1, zoo.path(MODEL), _warmup_file(tf_protos, "bad_input"))
    server = ServerProcess(f"--model_base_path={tmp_path / 'm'}", "--enable_model_warmup=false")
    try:
        assert server.get("/v1/models/default").json()["model_version_status"][0]["state"] == (
            "AVAILABLE")
        assert "warmup records replayed" not in server.log
    finally:
        assert server.stop() == 0


def test_warmup_computes_only_the_filtered_outputs(zoo: Zoo, tf_protos: Path,
                                                  tmp_path: Path) -> None:
    """A predict record's output_filter is a fetch, as in a request: guarded_outputs'
    `checked` fails any run for x <= 0, so the record with x = -1 filtered to `y` loads only
    if `checked` is not computed, and the same record unfiltered fails the load."""
    warmed_version(tmp_path / "m", 1, zoo.path("guarded_outputs"),
                   _warmup_file(tf_protos, "guarded_filtered"))
    server = ServerProcess(f"--model_base_path={tmp_path / 'm'}")
    try:
        assert "1 warmup records replayed" in server.log
    finally:
        assert server.stop() == 0
    warmed_version(tmp_path / "n", 1, zoo.path("guarded_outputs"),
                   _warmup_file(tf_protos, "guarded_unfiltered"))
    with pytest.raises(RuntimeError, match=r"warmup record 0 of \S+: .*checked needs a positive x"):
        ServerProcess(f"--model_base_path={tmp_path / 'n'}", "--max_num_load_retries=0")
