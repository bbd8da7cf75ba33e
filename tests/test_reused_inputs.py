"""A signature that keeps no input reuses the tensor it made over an aligned array when the next
call passes the same memory with the same shape (issue 18): what each signature may keep,
and that reuse never returns a stale or shared answer."""

from __future__ import annotations

import gc
import threading
import warnings
import weakref

import numpy as np

import smrt

from .conftest import Zoo


def test_which_signatures_may_keep_inputs(zoo: Zoo) -> None:
    assert not smrt.load(zoo.path("tiny_add")).signatures["serving_default"].may_keep_inputs
    # Variable reads and function calls keep nothing.
    assert not smrt.load(zoo.path("keras_dense")).signatures["serving_default"].may_keep_inputs
    stateful = smrt.load(zoo.path("stateful")).signatures
    assert stateful["mutate"].may_keep_inputs  # assigns its input to a variable
    assert not stateful["serving_default"].may_keep_inputs
    # A TF1 tf.cond (a stateful If) whose branch asserts keeps nothing: its branches are checked.
    assert not smrt.load(zoo.path("guarded_outputs")).signatures["serving_default"].may_keep_inputs


def test_a_reused_array_is_read_afresh_at_every_call(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("tiny_add")).signatures["serving_default"]
    x = smrt.aligned(np.arange(4, dtype=np.float32).reshape(1, 4))
    first = sig(x=x)["y"]
    x[...] = 5.0
    second = sig(x=x)["y"]
    np.testing.assert_array_equal(first, [[0, 2, 4, 6]])  # an earlier result is not a view of x
    np.testing.assert_array_equal(second, [[10, 10, 10, 10]])
    assert not np.shares_memory(second, x)


def test_same_memory_with_another_shape_is_wrapped_again(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("add_one")).signatures["serving_default"]
    buffer = smrt.aligned(np.arange(8, dtype=np.float32).reshape(2, 4))
    np.testing.assert_array_equal(sig(x=buffer)["y"], buffer + 1)
    np.testing.assert_array_equal(sig(x=buffer[:1])["y"], buffer[:1] + 1)  # same address, 1 row
    np.testing.assert_array_equal(sig(x=buffer.reshape(4, 2))["y"], buffer.reshape(4, 2) + 1)


def test_memory_freed_and_allocated_again_gives_right_answers(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("tiny_add")).signatures["serving_default"]
    for value in range(50):  # the allocator hands the same addresses back
        x = smrt.empty((1, 4), np.float32)
        x.fill(value)
        np.testing.assert_array_equal(sig(x=x)["y"], np.full((1, 4), 2.0 * value))
        del x
        gc.collect()


def test_an_output_that_is_the_input_is_a_copy(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("guarded_outputs")).signatures["serving_default"]
    assert not sig.may_keep_inputs  # else the inputs are lent, not reused
    x = smrt.aligned(np.array([1.0, 2.5], np.float32))
    for _ in range(2):  # the second call reuses the tensor the first made
        out = sig(x=x)
        assert not np.shares_memory(out["checked"], x)
        x[...] = [3.0, 4.0]
        np.testing.assert_array_equal(out["checked"], [1.0, 2.5])
        x[...] = [1.0, 2.5]


def test_the_array_is_not_held_after_the_call(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("tiny_add")).signatures["serving_default"]
    x = smrt.empty((1, 4), np.float32)
    x.fill(1.0)
    sig(x=x)
    sig(x=x)
    gone = weakref.ref(x)
    del x
    gc.collect()
    assert gone() is None


def test_threads_calling_with_their_own_arrays(zoo: Zoo) -> None:
    sig = smrt.load(zoo.path("tiny_add")).signatures["serving_default"]
    errors: list[BaseException] = []

    def work(value: float) -> None:
        try:
            x = smrt.empty((1, 4), np.float32)
            x.fill(value)
            for _ in range(300):
                np.testing.assert_array_equal(sig(x=x)["y"], np.full((1, 4), 2 * value))
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_a_signature_that_keeps_no_input_never_warns_of_a_kept_one(zoo: Zoo) -> None:
    with smrt.load(zoo.path("stateful")) as model:
        x = smrt.aligned(np.array([1.0, 2.0], np.float32))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            for _ in range(3):
                model.signatures["serving_default"](x=x)
