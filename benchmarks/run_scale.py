"""Batch inference at scale: smrt's Beam and Spark handlers against TensorFlow's Python API.

    python benchmarks/run_scale.py [--rows N] [--spark-rows N] [--rounds R] [--quick]

needs: pip install '.[beam,spark]' tensorflow-hub; pip install --no-deps tf-keras
(Beam's tensorflow_inference module imports tensorflow_hub; tf-keras lets its loader read a
SavedModel).

The same MobileNet (the model zoo's ``keras_mobilenet``, 224x224x3 float32 images), the same
data and the same engine settings, run alternately, each run in a fresh child process:

- Beam, DirectRunner with two worker processes (``multi_processing``): ``RunInference`` with
  ``smrt.beam.ModelHandlerNumpy`` against Beam's ``TFModelHandlerNumpy`` (its loader with an
  ``inference_fn`` calling the SavedModel's serving signature, as for any exported SavedModel).
  Measured: the pipeline's rows/s end to end; each worker's start-up (from its process start
  to its model loaded, recorded in the worker); each worker's peak RSS (sampled by the child).
- Spark ``local[2]``: ``smrt.spark.predict_batch_udf`` against pyspark's
  ``predict_batch_udf`` with a TensorFlow Python predict function (``tf.saved_model.load``).
  Measured on a fresh session: the first job (2 rows over 2 partitions: every Python worker
  starts and loads the model), then rows/s of a job of ``--spark-rows`` rows (the workers and
  their models reused), and the peak RSS of each Python worker.

Prints the ratios (TensorFlow / smrt for times and memory, smrt / TensorFlow for throughput;
medians over the rounds) and writes benchmarks/results/scale.json (scale-quick.json with
``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from harness import CHILD_ENV, DEFAULT_CACHE, ensure_models  # noqa: E402

IMAGE = (224, 224, 3)
RECORDS_ENV = "SMRT_SCALE_RECORDS"


# --- measuring -------------------------------------------------------------------------------


@contextmanager
def peak_rss_of_children() -> Iterator[dict[int, int]]:
    """Samples every descendant process's RSS every 50 ms; yields {pid: peak bytes} of the
    Python ones (Spark's JVM is not a worker)."""
    import psutil

    peaks: dict[int, int] = {}
    stop = threading.Event()
    me = psutil.Process()

    def sample() -> None:
        while not stop.wait(0.05):
            for child in me.children(recursive=True):
                try:
                    if "python" not in child.name():
                        continue
                    rss = child.memory_info().rss
                except psutil.Error:
                    continue
                peaks[child.pid] = max(peaks.get(child.pid, 0), rss)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peaks
    finally:
        stop.set()
        thread.join()


def record_load(kind: str) -> None:
    """In a worker, after its model loaded: its start-up time, appended to the records file."""
    import psutil

    path = os.environ.get(RECORDS_ENV)
    if path:
        startup = time.time() - psutil.Process().create_time()
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "kind": kind, "startup_s": startup,
                                "tensorflow_imported": "tensorflow" in sys.modules,
                                "rss_mb": psutil.Process().memory_info().rss / 2**20}) + "\n")


def image(i: int) -> Any:
    import numpy as np

    return np.random.default_rng(i).random(IMAGE, dtype=np.float32)


# --- Beam ------------------------------------------------------------------------------------


def beam_handler(kind: str, model_dir: str) -> Any:
    if kind == "smrt":
        from smrt.beam import ModelHandlerNumpy

        class TimedSmrt(ModelHandlerNumpy):
            def load_model(self) -> Any:
                model = super().load_model()
                record_load("smrt")
                return model

        return TimedSmrt(model_dir)

    from apache_beam.ml.inference.base import PredictionResult
    from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerNumpy

    def serving_default(model: Any, batch: Any, inference_args: Any, model_id: Any = None
                        ) -> Any:
        import numpy as np
        import tensorflow as tf

        (out,) = model.signatures["serving_default"](tf.constant(np.stack(batch))).values()
        return [PredictionResult(x, y, model_id) for x, y in zip(batch, out.numpy(), strict=True)]

    class TimedTF(TFModelHandlerNumpy):
        def load_model(self) -> Any:
            model = super().load_model()
            record_load("tf")
            return model

    return TimedTF(model_dir, inference_fn=serving_default)


def beam_child(kind: str, rows: int, model_dir: str) -> dict[str, Any]:
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(["--direct_running_mode=multi_processing",
                               "--direct_num_workers=2"])
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as records, \
            peak_rss_of_children() as peaks:
        os.environ[RECORDS_ENV] = records.name
        start = time.perf_counter()
        pipeline = beam.Pipeline(options=options)
        _ = (pipeline | beam.Create(list(range(rows))) | beam.Map(image)
             | RunInference(beam_handler(kind, model_dir))
             | beam.Map(lambda r: int(r.inference.argmax())) | beam.combiners.Count.Globally())
        pipeline.run().wait_until_finish()
        seconds = time.perf_counter() - start
        loads = [json.loads(line) for line in records.read().splitlines()]
    if kind == "smrt" and any(r["tensorflow_imported"] for r in loads):
        sys.exit("a worker using smrt imported TensorFlow's Python package")
    if not loads:
        sys.exit("no worker recorded its model load")
    return {"rows_per_s": rows / seconds, "seconds": seconds,
            "worker_startup_s": [r["startup_s"] for r in loads],
            "worker_rss_after_load_mb": [r["rss_mb"] for r in loads],
            "tensorflow_imported_in_workers": [r["tensorflow_imported"] for r in loads],
            "worker_peak_rss_mb": sorted(v / 2**20 for v in peaks.values())}


# --- Spark -----------------------------------------------------------------------------------


def spark_udf(kind: str, model_dir: str) -> Any:
    from pyspark.sql.types import ArrayType, FloatType

    if kind == "smrt":
        from smrt.spark import predict_batch_udf

        return predict_batch_udf(model_dir, return_type=ArrayType(FloatType()), batch_size=64)

    from pyspark.ml.functions import predict_batch_udf as pyspark_udf

    def make_predict_fn() -> Any:
        import tensorflow as tf

        signature = tf.saved_model.load(model_dir).signatures["serving_default"]

        def predict(images: Any) -> Any:
            (out,) = signature(tf.constant(images)).values()
            return out.numpy()

        return predict

    return pyspark_udf(make_predict_fn, return_type=ArrayType(FloatType()), batch_size=64,
                       input_tensor_shapes=[list(IMAGE)])


def spark_child(kind: str, rows: int, model_dir: str) -> dict[str, Any]:
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    with peak_rss_of_children() as peaks:
        spark = (SparkSession.builder.master("local[2]").appName(f"smrt-scale-{kind}")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "3g")
                 .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        udf = spark_udf(kind, model_dir)
        size = IMAGE[0] * IMAGE[1] * IMAGE[2]

        def run(n: int, partitions: int) -> float:
            df = spark.range(n, numPartitions=partitions).select(
                F.array_repeat(((F.col("id") % 255) / 255.0).cast("float"), size).alias("x"))
            start = time.perf_counter()
            total = df.select(F.sum(F.element_at(udf("x"), 1))).collect()[0][0]
            assert total is not None
            return time.perf_counter() - start

        first_job = run(2, 2)
        seconds = run(rows, 4)
        spark.stop()
    return {"first_job_s": first_job, "rows_per_s": rows / seconds, "seconds": seconds,
            "worker_peak_rss_mb": sorted(v / 2**20 for v in peaks.values())}


# --- the driver ------------------------------------------------------------------------------


def child(engine: str, kind: str, rows: int, model_dir: Path) -> dict[str, Any]:
    env = {**CHILD_ENV, "TF_USE_LEGACY_KERAS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, __file__, "--child", engine, kind, str(rows), str(model_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        sys.exit(f"{engine}/{kind} failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000, help="Beam rows (default 2000)")
    parser.add_argument("--spark-rows", type=int, default=1000, help="Spark rows (default 1000)")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each side (default 2)")
    parser.add_argument("--quick", action="store_true", help="200 rows, one round")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, kind, rows, model_dir = args.child
        run = beam_child if engine == "beam" else spark_child
        print(json.dumps(run(kind, int(rows), model_dir)))
        return 0
    if args.quick:
        args.rows = args.spark_rows = 200
        args.rounds = 1
    model_dir = ensure_models(args.cache_dir, ["keras_mobilenet"])["keras_mobilenet"]

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {"beam": {}, "spark": {}}
    for engine, rows in (("beam", args.rows), ("spark", args.spark_rows)):
        for _ in range(args.rounds):  # alternate, so drift hits both alike
            for kind in ("smrt", "tf"):
                result = child(engine, kind, rows, model_dir)
                runs[engine].setdefault(kind, []).append(result)
                print(f"{engine:5} {kind:4} {json.dumps(result)}", file=sys.stderr, flush=True)

    def m(engine: str, kind: str, key: str) -> float:
        values: list[float] = []
        for r in runs[engine][kind]:
            values += r[key] if isinstance(r[key], list) else [r[key]]
        return median(values)

    def peak(engine: str, kind: str) -> float:
        # The workers: the largest Python processes (Beam's SDK workers, Spark's Python
        # workers); the smallest ones are Spark's daemon and helper processes.
        return median([max(r["worker_peak_rss_mb"]) for r in runs[engine][kind]])

    ratios = {
        "beam_throughput_smrt_over_tf": m("beam", "smrt", "rows_per_s") / m("beam", "tf",
                                                                          "rows_per_s"),
        "beam_worker_startup_tf_over_smrt": m("beam", "tf", "worker_startup_s") / m(
            "beam", "smrt", "worker_startup_s"),
        "beam_worker_peak_rss_tf_over_smrt": peak("beam", "tf") / peak("beam", "smrt"),
        "spark_throughput_smrt_over_tf": m("spark", "smrt", "rows_per_s") / m("spark", "tf",
                                                                            "rows_per_s"),
        "spark_first_job_tf_over_smrt": m("spark", "tf", "first_job_s") / m(
            "spark", "smrt", "first_job_s"),
        "spark_worker_peak_rss_tf_over_smrt": peak("spark", "tf") / peak("spark", "smrt"),
    }
    summary = {
        "beam_rows_per_s": {k: m("beam", k, "rows_per_s") for k in ("smrt", "tf")},
        "beam_worker_startup_s": {k: m("beam", k, "worker_startup_s") for k in ("smrt", "tf")},
        "beam_worker_peak_rss_mb": {k: peak("beam", k) for k in ("smrt", "tf")},
        "spark_rows_per_s": {k: m("spark", k, "rows_per_s") for k in ("smrt", "tf")},
        "spark_first_job_s": {k: m("spark", k, "first_job_s") for k in ("smrt", "tf")},
        "spark_worker_peak_rss_mb": {k: peak("spark", k) for k in ("smrt", "tf")},
    }
    for key, value in ratios.items():
        print(f"{key:<40} {value:6.2f}x")
    out = BENCH_DIR / "results" / ("scale-quick.json" if args.quick else "scale.json")
    out.write_text(json.dumps({"command": " ".join(["python", "benchmarks/run_scale.py",
                                                    *sys.argv[1:]]),
                               "rows": {"beam": args.rows, "spark": args.spark_rows},
                               "rounds": args.rounds, "ratios": ratios, "summary": summary,
                               "runs": runs}, indent=1) + "\n")
    print(f"wrote {out.relative_to(BENCH_DIR.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
