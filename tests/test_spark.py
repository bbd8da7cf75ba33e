"""smrt.spark: predict_batch_udf on a real Spark (local[2]: two Python workers), against
TensorFlow's answers from the model zoo. One SparkSession for the module: it starts slowly."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt
from smrt import model_uri

from .conftest import Zoo, ZooServer, assert_same

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("Spark needs Java (.ci/run installs it)", allow_module_level=True)

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    FloatType,
    StringType,
    StructField,
    StructType,
)

from smrt.spark import predict_batch_udf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("smrt-cache")


@pytest.fixture(scope="module")
def spark(cache_dir: Path) -> Iterator[SparkSession]:
    # Spark's Python workers inherit the environment the JVM started with.
    saved = os.environ.get("SMRT_CACHE_DIR")
    os.environ["SMRT_CACHE_DIR"] = str(cache_dir)
    session = (SparkSession.builder.master("local[2]").appName("smrt-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        del os.environ["SMRT_CACHE_DIR"]
    else:
        os.environ["SMRT_CACHE_DIR"] = saved


@pytest.fixture(scope="module")
def tabular(zoo: Zoo, spark: SparkSession) -> tuple[DataFrame, Any]:
    """The tabular model's TensorFlow case as a DataFrame of 3 partitions: flat arrays, as
    Spark stores tensors; patch as doubles (Spark's default), which smrt casts to float32."""
    (case, _) = zoo.cases("tabular")
    ins = case.inputs
    rows = [(i, ins["features"][i].tolist(), int(ins["ids"][i]), ins["patch"][i].ravel().tolist())
            for i in range(len(ins["ids"]))]
    schema = "i long, features array<float>, ids long, patch array<double>"
    return spark.createDataFrame(rows, schema).repartition(3), case


def test_a_single_input_with_an_array_output(zoo: Zoo, zoo_url: str, tabular: Any,
                                             cache_dir: Path) -> None:
    df, _ = tabular
    (_, case) = zoo.cases("tabular")
    udf = predict_batch_udf(f"{zoo_url}/tabular", signature="features_only",
                            return_type=ArrayType(FloatType()), batch_size=2)
    rows = df.withColumn("probs", udf("features")).orderBy("i").collect()
    assert_same(np.array([r.probs for r in rows], np.float32), case.outputs["probs"], "probs")
    # Two workers fetched the model over HTTP: one copy in the cache, no partial ones.
    assert len(list(cache_dir.iterdir())) == 1


def test_several_inputs_with_a_struct_output(zoo: Zoo, tabular: Any) -> None:
    df, case = tabular
    return_type = StructType([StructField("probs", ArrayType(FloatType())),
                              StructField("score", FloatType()),
                              StructField("label", StringType())])
    udf = predict_batch_udf(zoo.path("tabular"), return_type=return_type,
                            input_keys=["features", "ids", "patch"], batch_size=3)
    rows = df.withColumn("y", udf("features", "ids", "patch")).orderBy("i").collect()
    assert_same(np.array([r.y.probs for r in rows], np.float32), case.outputs["probs"], "probs")
    assert_same(np.array([r.y.score for r in rows], np.float32), case.outputs["score"], "score")
    assert [r.y.label.encode() for r in rows] == case.outputs["label"].tolist()


def test_one_of_several_outputs_by_output_key(zoo: Zoo, tabular: Any) -> None:
    df, case = tabular
    udf = predict_batch_udf(zoo.path("tabular"), return_type=StringType(), output_key="label",
                            input_keys=["features", "ids", "patch"])
    rows = df.withColumn("label", udf("features", "ids", "patch")).orderBy("i").collect()
    assert [r.label.encode() for r in rows] == case.outputs["label"].tolist()


def test_each_python_worker_loads_the_model_once(
        zoo_server: ZooServer, tabular: Any, tmp_path: Path) -> None:
    # Every load fetches the URI, which lists the model directory once over HTTP (to
    # fingerprint it; the copy itself happens once per machine): count the listings of one
    # fetch here, then of a job of 8 partitions run by Spark's 2 Python workers.
    listing = "/tabular/"
    before = zoo_server.requests[listing]
    model_uri.fetch(f"{zoo_server.url}/tabular", cache_dir=tmp_path)
    per_load = zoo_server.requests[listing] - before
    assert per_load > 0
    df, case = tabular
    udf = predict_batch_udf(f"{zoo_server.url}/tabular", signature="features_only",
                            return_type=ArrayType(FloatType()), batch_size=2)
    before = zoo_server.requests[listing]
    rows = df.repartition(8).withColumn("probs", udf("features")).collect()
    assert len(rows) == len(case.inputs["ids"])
    loads = (zoo_server.requests[listing] - before) / per_load
    assert loads in (1, 2), zoo_server.requests


# --- errors are raised on the driver, when the UDF is made ------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"return_type": FloatType()},
     r"signature 'serving_default' has inputs \['features', 'ids', 'patch'\]: name the ones"),
    ({"return_type": FloatType(), "input_keys": ["features", "nope"]},
     r"input_keys \['features', 'nope'\]: each must be one input"),
    ({"return_type": FloatType(), "input_keys": ["features", "ids", "patch"]},
     r"has outputs \['label', 'probs', 'score'\]: pick one with output_key="),
    ({"return_type": FloatType(), "input_keys": ["ids"], "output_key": "nope"},
     r"output_key 'nope' is not an output"),
    ({"return_type": StructType([StructField("logits", FloatType())]), "input_keys": ["ids"]},
     r"return_type's fields \['logits'\] are not outputs"),
    ({"return_type": FloatType(), "signature": "nope"}, "has no signature 'nope'"),
    ({"return_type": BinaryType(), "input_keys": ["ids"], "output_key": "label"},
     "return_type is binary; predict_batch_udf returns numbers or strings"),
    ({"return_type": StructType([StructField("label", BooleanType())]), "input_keys": ["ids"]},
     "field 'label' of return_type is boolean"),
    ({"return_type": FloatType(), "input_keys": ["ids", "patch"],
      "input_tensor_shapes": [None]}, "1 shapes for the 2 inputs"),
])
def test_bad_arguments_are_invalid_input_errors(
        zoo: Zoo, spark: SparkSession, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(smrt.InvalidInputError, match=message):
        predict_batch_udf(zoo.path("tabular"), **kwargs)


def test_a_missing_model_is_model_not_found(tmp_path: Path, spark: SparkSession) -> None:
    with pytest.raises(smrt.ModelNotFoundError, match="no such directory"):
        predict_batch_udf(str(tmp_path / "missing"), return_type=FloatType())


def test_a_tf_serving_base_path_runs_its_highest_version(
        zoo: Zoo, spark: SparkSession, tmp_path: Path) -> None:
    (tmp_path / "1").symlink_to(zoo.path("half_plus_two"))
    (tmp_path / "2").symlink_to(zoo.path("half_plus_three"))
    udf = predict_batch_udf(str(tmp_path), return_type=FloatType(), tags="serve")
    (tmp_path / "3").symlink_to(zoo.path("half_plus_two"))  # too late: the UDF runs version 2
    df = spark.createDataFrame([(float(x),) for x in range(4)], "x double")
    assert [r.y for r in df.withColumn("y", udf("x")).orderBy("x").collect()] == [
        3.0, 3.5, 4.0, 4.5]


def test_integers_out_of_an_input_s_range_are_refused_not_wrapped() -> None:
    # Spark gives LongType columns as int64; an int32 input takes them only if they fit.
    from smrt.saved_model import TensorSpec
    from smrt.spark import _to_input

    spec = TensorSpec("x", "int32", (None,), "x:0")
    fitting = _to_input(np.array([1, -2**31, 2**31 - 1], np.int64), spec)
    assert (fitting.dtype, fitting.tolist()) == (np.int32, [1, -2**31, 2**31 - 1])
    with pytest.raises(smrt.InvalidInputError, match=r"input 'x' is int32, which cannot hold "
                                                     r"the value 2147483653 of this batch"):
        _to_input(np.array([1, 2**31 + 5], np.int64), spec)
    with pytest.raises(smrt.InvalidInputError, match="the value -1099511627776 "):
        _to_input(np.array([1, -2**40], np.int64), spec)


def test_an_output_without_a_row_per_input_row_is_a_clear_error() -> None:
    from smrt.spark import _to_spark

    np.testing.assert_array_equal(_to_spark("y", np.ones((2, 3)), ArrayType(FloatType()), 2),
                                  np.ones((2, 3)))
    for array in (np.float32(1.0), np.ones((1, 6), np.float32)):  # a reduction over the batch
        with pytest.raises(smrt.InvalidInputError,
                           match=r"output 'y' has shape \(.*\), not one row for each of the "
                                 r"batch's 2 rows"):
            _to_spark("y", np.asarray(array), ArrayType(FloatType()), 2)
