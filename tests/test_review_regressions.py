"""Regressions found in review: aliasing with model state, races, hostile inputs."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import smrt

from .conftest import Zoo


def test_writing_an_output_never_changes_the_model(zoo: Zoo) -> None:
    # Outputs that TensorFlow still holds (a graph constant, a variable) come back as copies.
    with smrt.load(zoo.path("control_flow")) as model:
        first = model(x=np.int32(-1))["y"]
        first[...] = 99
        assert model(x=np.int32(-1))["y"] == -1
    with smrt.load(zoo.path("stateful")) as model:
        model.signatures["read"]()["v"][...] = 1234.0
        assert model.signatures["read"]()["v"] == 1.0


def test_fresh_outputs_are_still_zero_copy_views(zoo: Zoo) -> None:
    with smrt.load(zoo.path("add_one")) as model:
        y = model(smrt.zeros((2, 3), np.float32))["y"]
        assert type(y.base).__name__ == "PyCapsule"
        assert y.flags.writeable


def test_input_kept_by_a_variable_warns_and_later_inputs_are_copied(zoo: Zoo) -> None:
    with smrt.load(zoo.path("stateful")) as model:
        mutate, read = model.signatures["mutate"], model.signatures["read"]
        first = smrt.aligned(np.array(5.0, np.float32))
        with pytest.warns(RuntimeWarning, match="'mutate' kept a reference"):
            mutate(new_v=first)
        second = smrt.aligned(np.array(6.0, np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mutate(new_v=second)  # copied now: no warning
        second[...] = -1.0
        assert read()["v"] == 6.0


def test_first_bfloat16_use_from_two_threads_does_not_deadlock(zoo: Zoo, run_python) -> None:
    # ml_dtypes must not be imported before the threads race to the first bfloat16 input.
    out = run_python(f"""
import sys, threading, smrt
assert "ml_dtypes" not in sys.modules
sig = smrt.load({zoo.path("all_dtypes")!r}).signatures["serving_default"]
import numpy as np
inputs = {{k: np.zeros(2, spec.numpy_dtype if k != "bf16" else np.float32)
          for k, spec in sig.inputs.items()}}
inputs["s"] = [b"a", b"b"]
results = []
def call():
    results.append(sig(**{{**inputs, "bf16": [1.5, 2.5]}})["o_bf16"].tolist())
threads = [threading.Thread(target=call) for _ in range(2)]
[t.start() for t in threads]
[t.join(60) for t in threads]
print(sum(not t.is_alive() for t in threads), results[0])
""")
    assert out.strip() == "2 [3.0, 5.0]"


def test_close_finishes_while_threads_keep_calling(zoo: Zoo) -> None:
    model = smrt.load(zoo.path("add_one"))
    sig = model.signatures["serving_default"]
    x = smrt.zeros((256, 1024), np.float32)
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                sig(x=x)
            except smrt.ModelClosedError:
                return

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    closer = threading.Thread(target=model.close)
    closer.start()
    closer.join(10)
    finished = not closer.is_alive()
    stop.set()
    for t in threads:
        t.join()
    closer.join()
    assert finished, "close() was starved by calls in flight"
    assert model.closed


def test_array_conversion_that_frees_another_input(zoo: Zoo) -> None:
    with smrt.load(zoo.path("dynamic_shapes")) as model:
        sig = model.signatures["serving_default"]
        inputs: dict[str, object] = {}

        class DropsZ:
            def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
                inputs.pop("z", None)  # the caller's last reference to z
                [np.full(2, 7.0, np.float32) for _ in range(50)]  # reuse its memory
                return np.zeros((1, 1, 3), np.float32)

        inputs.update(x=DropsZ(), z=np.array([1.0, 2.0], np.float32))
        np.testing.assert_array_equal(sig(inputs)["w"], [2.0, 4.0])


def test_bytearray_and_memoryview_string_elements(zoo: Zoo) -> None:
    with smrt.load(zoo.path("multiple_signatures")) as model:
        parse = model.signatures["serving_default"]
        for value, expected in ((bytearray(b"2.5"), 2.5), (memoryview(b"1.5"), 1.5)):
            element = np.empty((), dtype=object)
            element[()] = value
            assert parse(string_input=element)["output_0"] == expected
        with smrt.load(zoo.path("parse_example")) as examples:
            batch = np.empty(1, dtype=object)  # (NumPy would unpack a bytearray in a list)
            batch[0] = bytearray(smrt.tf_example.encode({"x": [1.0]}))
            assert examples(examples=batch)["x"].tolist() == [[1.0]]


@pytest.mark.parametrize("value", [[np.int64(300)], [np.int64(-1)], [1, np.int64(2**40)]])
def test_numpy_integers_that_do_not_fit_are_refused(zoo: Zoo, value: object) -> None:
    sig = smrt.load(zoo.path("all_dtypes")).signatures["serving_default"]
    inputs = {k: np.zeros(len(value), spec.numpy_dtype) for k, spec in sig.inputs.items()}  # type: ignore[arg-type]
    inputs["s"] = np.array([b"s"] * len(value), dtype=object)  # type: ignore[arg-type]
    inputs["u8"] = value
    with pytest.raises(smrt.InputTypeError, match=r"'u8'.*does not hold"):
        sig(**inputs)


def test_saved_model_pb_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").mkdir()
    for call in (smrt.inspect, smrt.load):
        with pytest.raises(smrt.DataLossError, match="not a regular file"):
            call(tmp_path)
