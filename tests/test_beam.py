"""smrt.beam: RunInference with smrt's handlers on Beam's DirectRunner, two worker processes,
against TensorFlow's answers from the model zoo."""

from __future__ import annotations

import base64
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import smrt

from .conftest import Zoo, assert_same

beam = pytest.importorskip("apache_beam")
from apache_beam.metrics.metric import MetricsFilter  # noqa: E402
from apache_beam.ml.inference.base import (  # noqa: E402
    KeyedModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import PipelineOptions  # noqa: E402

from smrt.beam import ModelHandlerDict, ModelHandlerNumpy  # noqa: E402

pytestmark = pytest.mark.slow
MULTI_PROCESS = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]


def _encode(value: object) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


def _run(tmp_path: Path, elements: list[Any], transform: Any) -> tuple[list[Any], Any]:
    """Runs Create(elements) | transform on two worker processes; returns what it produced
    (written to files by the workers, read back here) and the pipeline's metrics."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    pipeline = beam.Pipeline(options=PipelineOptions(MULTI_PROCESS))
    _ = (pipeline | beam.Create(elements) | transform | beam.Map(_encode)
         | beam.io.WriteToText(str(out)))
    result = pipeline.run()
    result.wait_until_finish()
    lines = [line for shard in sorted(tmp_path.glob("out*")) for line in shard.read_text().split()]
    return [pickle.loads(base64.b64decode(line)) for line in lines], result.metrics()


def _counter(metrics: Any, namespace: str, name: str) -> int:
    found = metrics.query(MetricsFilter().with_namespace(namespace).with_name(name))["counters"]
    return sum(c.committed for c in found)


def test_numpy_handler_keyed_with_pre_and_postprocessing_from_a_url(
        zoo: Zoo, zoo_url: str, tmp_path: Path) -> None:
    (_, case) = zoo.cases("tabular")
    features = case.inputs["features"]
    uri, cache = f"{zoo_url}/tabular", tmp_path / "cache"
    handler = (KeyedModelHandler(ModelHandlerNumpy(
        uri, signature="features_only", max_batch_size=3,
        env_vars={"SMRT_CACHE_DIR": str(cache)}))
               .with_preprocess_fn(lambda kv: (kv[0], np.asarray(kv[1], np.float32)))
               .with_postprocess_fn(lambda kv: (kv[0], kv[1].inference, kv[1].model_id)))
    elements = [(i, row.astype(np.float64).tolist()) for i, row in enumerate(features)]
    results, metrics = _run(tmp_path / "run", elements, RunInference(handler))
    assert sorted(k for k, _, _ in results) == list(range(len(features)))
    assert {model_id for _, _, model_id in results} == {uri}
    rows = {k: y for k, y, _ in results}
    assert_same(np.stack([rows[i] for i in range(len(features))]), case.outputs["probs"], "probs")
    assert _counter(metrics, "BeamML_smrt_Numpy", "num_inferences") == len(features)
    assert len(list(cache.iterdir())) == 1  # both workers' loads: one copy, no partial ones


def test_dict_handler_with_a_model_shared_across_processes(zoo: Zoo, tmp_path: Path) -> None:
    (case, _) = zoo.cases("tabular")
    n = len(case.inputs["ids"])
    elements = [(i, {k: v[i] for k, v in case.inputs.items()}) for i in range(n)]
    handler = KeyedModelHandler(ModelHandlerDict(zoo.path("tabular"), large_model=True))
    results, metrics = _run(tmp_path, elements, RunInference(handler))
    by_key: dict[int, PredictionResult] = dict(results)
    assert sorted(by_key) == list(range(n))
    for i, result in by_key.items():
        assert set(result.example) == {"features", "ids", "patch"}
        assert_same(result.example["patch"], case.inputs["patch"][i], "example")
    for key, expected in case.outputs.items():
        got = np.stack([by_key[i].inference[key] for i in range(n)])
        assert_same(got.astype(expected.dtype), expected, key)
        assert got.dtype == expected.dtype or expected.dtype == object
    assert _counter(metrics, "BeamML_smrt_Dict", "num_inferences") == n


# --- the handlers' contract, without a pipeline -----------------------------------------------


def _results(handler: Any, batch: list[Any], **kwargs: Any) -> list[PredictionResult]:
    return list(handler.run_inference(batch, handler.load_model(), **kwargs))


def test_an_inference_is_a_row_or_a_dict_of_rows(zoo: Zoo) -> None:
    (case, _) = zoo.cases("tabular")
    batch = [{k: v[i] for k, v in case.inputs.items()} for i in range(2)]
    rows = _results(ModelHandlerDict(zoo.path("tabular")), batch)
    assert set(rows[1].inference) == {"probs", "score", "label"}
    assert rows[1].inference["label"] == case.outputs["label"][1]
    scores = _results(ModelHandlerDict(zoo.path("tabular"), output_key="score"), batch)
    assert [r.inference for r in scores] == case.outputs["score"][:2].tolist()
    assert scores[0].example is batch[0]


def test_python_values_are_converted_as_smrt_converts_lists(zoo: Zoo) -> None:
    handler = ModelHandlerNumpy(zoo.path("add_one"))
    (result,) = _results(handler, [[1.5, 2.5]])  # Python floats: converted to float32
    assert result.inference.dtype == np.float32
    assert result.inference.tolist() == [2.5, 3.5]
    with pytest.raises(smrt.InputTypeError, match="float64"):  # NumPy arrays: dtype exactly
        _results(handler, [np.array([1.5, 2.5])])


def test_a_batch_of_mixed_dtypes_is_refused_not_cast(zoo: Zoo) -> None:
    # Stacking would cast to element 0's dtype: int64 2**40 into int32 wraps to 0.
    handler = ModelHandlerDict(zoo.path("tabular"), signature="features_only")
    batch = [{"features": np.zeros(4, np.float32)}, {"features": np.full(4, 1e300)}]
    with pytest.raises(smrt.InputTypeError,
                       match=r"input 'features': batch element 1 is a NumPy float64 value"):
        _results(handler, batch)
    text = ModelHandlerNumpy(zoo.path("bytes_echo"), output_key="echo")
    with pytest.raises(smrt.InputTypeError, match=r"batch element 1 is a NumPy <U2 value"):
        _results(text, [np.bytes_(b"ab"), np.str_("cd")])
    ragged = [{"features": np.zeros(4, np.float32)}, {"features": np.zeros(3, np.float32)}]
    with pytest.raises(smrt.InvalidInputError,
                       match=r"input 'features': batch element 1 has shape \(3,\)"):
        _results(handler, ragged)


def test_update_model_path_loads_the_new_model(zoo: Zoo, tmp_path: Path) -> None:
    handler = ModelHandlerNumpy(zoo.path("half_plus_two"))
    x = np.array(2.0, np.float32)
    assert _results(handler, [x])[0].inference == 3.0
    handler.update_model_path(zoo.path("half_plus_three"))
    (result,) = _results(handler, [x])
    assert (result.inference, result.model_id) == (4.0, zoo.path("half_plus_three"))
    handler.update_model_path(None)  # Beam's "no new path": keep the current one
    assert _results(handler, [x])[0].inference == 4.0


def test_beam_options_reach_beam(zoo: Zoo) -> None:
    handler = ModelHandlerNumpy(zoo.path("add_one"), min_batch_size=2, max_batch_size=8,
                                max_batch_duration_secs=3, model_copies=2)
    assert handler.batch_elements_kwargs() == {
        "min_batch_size": 2, "max_batch_size": 8, "max_batch_duration_secs": 3}
    assert handler.share_model_across_processes()
    assert handler.model_copies() == 2
    assert not ModelHandlerNumpy(zoo.path("add_one")).share_model_across_processes()
    assert ModelHandlerNumpy(zoo.path("add_one"), large_model=True).share_model_across_processes()


def test_load_options_reach_smrt_load(zoo: Zoo) -> None:
    handler = ModelHandlerNumpy(zoo.path("hidden_file_reads"), op_policy="default")
    with pytest.raises(smrt.OpPolicyError):
        handler.load_model()


@pytest.mark.parametrize(("make", "message"), [
    (lambda z: _results(ModelHandlerNumpy(z.path("tabular")), [np.zeros(4, np.float32)]),
     r"signature 'serving_default' has inputs \['features', 'ids', 'patch'\]: "
     "ModelHandlerNumpy feeds one; name it with input_key=, or use ModelHandlerDict"),
    (lambda z: _results(ModelHandlerNumpy(z.path("tabular"), signature="features_only",
                                          output_key="nope"), [np.zeros(4, np.float32)]),
     r"output_key 'nope' is not an output of the signature; its outputs are \['probs'\]"),
    (lambda z: _results(ModelHandlerDict(z.path("tabular"), signature="features_only"),
                        [{"features": np.zeros(4, np.float32)}, {"ids": 1}]),
     "every element to be a dict with the same keys"),
    (lambda z: _results(ModelHandlerNumpy(z.path("tiny_add")), [np.zeros(3, np.float32)]),
     "'x'"),
])
def test_bad_input_is_a_clear_invalid_input_error(zoo: Zoo, make: Any, message: str) -> None:
    with pytest.raises(smrt.InvalidInputError, match=message):
        make(zoo)


def test_inference_args_are_inputs_shared_by_the_batch(zoo: Zoo) -> None:
    # dynamic_shapes: y = reduce_sum(x, axis=1) per row, w = z * 2 for any z.
    rows = [np.full((2, 3), i, np.float32) for i in range(3)]
    handler = ModelHandlerNumpy(zoo.path("dynamic_shapes"), input_key="x", output_key="y")
    results = _results(handler, rows, inference_args={"z": np.float32(1.0)})
    assert [r.inference.tolist() for r in results] == [[2 * i] * 3 for i in range(3)]
    with pytest.raises(smrt.InvalidInputError,
                       match=r"output 'w' has shape \(\), not a row per element of the batch of 3"):
        _results(ModelHandlerNumpy(zoo.path("dynamic_shapes"), input_key="x"), rows,
                 inference_args={"z": np.float32(1.0)})


def test_model_handler_dict_takes_no_input_key(zoo: Zoo) -> None:
    with pytest.raises(TypeError, match="ModelHandlerDict takes no input_key"):
        ModelHandlerDict(zoo.path("tabular"), input_key="features")


def test_a_missing_model_is_model_not_found_when_the_handler_is_made(tmp_path: Path) -> None:
    with pytest.raises(smrt.ModelNotFoundError, match="no such directory"):
        ModelHandlerNumpy(str(tmp_path / "missing")).load_model()


def test_a_base_path_is_pinned_to_its_version_when_the_handler_is_made(
        zoo: Zoo, tmp_path: Path) -> None:
    (tmp_path / "1").symlink_to(zoo.path("half_plus_two"))
    (tmp_path / "2").symlink_to(zoo.path("half_plus_three"))
    handler = ModelHandlerNumpy(str(tmp_path))
    (tmp_path / "3").symlink_to(zoo.path("half_plus_two"))  # too late: workers load version 2
    (result,) = _results(handler, [np.array(2.0, np.float32)])
    assert (result.inference, result.model_id) == (4.0, str(tmp_path / "2"))
    handler.update_model_path(str(tmp_path))  # an update pins the highest version again
    (result,) = _results(handler, [np.array(2.0, np.float32)])
    assert (result.inference, result.model_id) == (3.0, str(tmp_path / "3"))


def test_a_tag_set_given_as_a_string_is_comma_separated_tags(zoo: Zoo) -> None:
    # "serve" is one tag, as smrt.load takes it; not the letters s, e, r, v, e.
    handler = ModelHandlerNumpy(zoo.path("add_one"), tags="serve")
    (result,) = _results(handler, [np.array([1.0, 2.0], np.float32)])
    assert result.inference.tolist() == [2.0, 3.0]
    assert smrt.inspect(zoo.path("add_one")).meta_graph("serve").tags == ("serve",)


def test_a_batch_of_strings_of_different_lengths_is_one_batch(zoo: Zoo) -> None:
    # np.bytes_(b"a") is |S1 and np.bytes_(b"abc") |S3: one kind, stacked to the widest.
    handler = ModelHandlerNumpy(zoo.path("bytes_echo"), output_key="echo")
    batch = [np.bytes_(b"a"), np.bytes_(b"abc"), np.bytes_(b"")]
    assert [r.inference for r in _results(handler, batch)] == [b"a", b"abc", b""]
