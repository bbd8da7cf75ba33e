"""Build the test suite's SavedModels and TensorFlow's own answers for them.

Usage: ``python3 tests/model_zoo.py OUTDIR [NAME ...]``

Run in a subprocess with TensorFlow's Python API (it is never imported by smrt's tests).
Builds the named models (all of ``DEFAULT_MODELS`` if none are named) in one process and
prints one line per model. Everything is seeded, so two builds give the same models and cases.

For each model ``<name>`` it writes, in this order:

- ``OUTDIR/<name>/``: the SavedModel directory (``saved_model.pb``, ``variables/``, ...).
- ``OUTDIR/<name>.cases.npz``: reference cases, written with ``np.savez`` (load it with
  ``allow_pickle=True``; string tensors are object arrays). Keys are
  ``"<case>/<signature_key>/in/<input_key>"`` and ``"<case>/<signature_key>/out/<output_key>"``
  with ``<case>`` = ``c0``, ``c1``, ... Inputs are the NumPy arrays exactly as fed to
  TensorFlow: string tensors as object arrays of ``bytes``, scalars as 0-d arrays. Outputs are
  ``tensor.numpy()`` of what ``tf.saved_model.load(dir).signatures[sig](**inputs)`` returned
  (0-d string outputs are wrapped in 0-d object arrays), computed against the LOADED model,
  not the Python object that was saved. The cases run in index order against ONE loaded
  model, so a stateful model's case sequence must be replayed in that order too. A case of
  a signature without inputs has only ``out`` keys; a model without cases has an empty file.
- ``OUTDIR/<name>.done``: an empty file, written last; a model without it is half-built.

bfloat16: inputs and outputs are ``ml_dtypes.bfloat16`` arrays when written, but ``.npy``
headers cannot name that dtype, so ``np.load`` returns them as raw 2-byte void (``|V2``)
arrays with the same bytes; ``arr.view(ml_dtypes.bfloat16)`` restores them.

``add_one_big`` is only built when named explicitly (memory benchmarks).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import ml_dtypes
import numpy as np


@contextlib.contextmanager
def _stderr_replayed_only_on_error() -> Iterator[None]:
    """Points file descriptor 2 at a temporary file; copies it to stderr only if the body raises.

    Importing TensorFlow 2.21 logs oneDNN notices through absl before absl logging is set up,
    and those ignore TF_CPP_MIN_LOG_LEVEL.
    """
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.buffer.write(log.read())
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


with _stderr_replayed_only_on_error():
    import tensorflow as tf

# (signature_key, {input_key: array}); a builder saves its model and returns its cases.
Case = tuple[str, dict[str, np.ndarray]]
Builder = Callable[[Path], list[Case]]

SEED = 1234
F32 = tf.float32


def _rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


def _spec(shape: list[int | None] | None, dtype: tf.DType, name: str) -> tf.TensorSpec:
    return tf.TensorSpec(shape, dtype, name=name)


def _save(path: Path, signatures: object = None, module: tf.Module | None = None) -> None:
    """Saves `module` (default: an empty one); `signatures` as tf.saved_model.save takes it."""
    tf.saved_model.save(module or tf.Module(), str(path), signatures=signatures)


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


def _string(value: bytes | str) -> np.ndarray:
    """A 0-d string tensor's value: a 0-d object array holding bytes."""
    return np.array(_bytes(value), dtype=object)


def _strings(*values: bytes | str) -> np.ndarray:
    """A 1-d string tensor's value: an object array of bytes."""
    return np.array([_bytes(v) for v in values], dtype=object)


def _to_numpy(tensor: tf.Tensor) -> np.ndarray:
    if tensor.dtype == tf.string:
        return np.array(tensor.numpy(), dtype=object)
    return np.asarray(tensor.numpy())


def _write_cases(model_dir: Path, cases: list[Case], out: Path) -> None:
    """Runs `cases` in order against one freshly loaded `model_dir`; writes them to `out`."""
    arrays: dict[str, np.ndarray] = {}
    loaded = tf.saved_model.load(str(model_dir)) if cases else None
    for i, (sig, inputs) in enumerate(cases):
        outputs = loaded.signatures[sig](**{k: tf.constant(v) for k, v in inputs.items()})
        arrays.update({f"c{i}/{sig}/in/{k}": v for k, v in inputs.items()})
        # Sorted: the loaded signature's output order varies from run to run.
        arrays.update({f"c{i}/{sig}/out/{k}": _to_numpy(outputs[k]) for k in sorted(outputs)})
    np.savez(out, **arrays)


# --- simple float models -------------------------------------------------------------------


def _elementwise(path: Path, shape: list[int | None], fn: Callable[[tf.Tensor], tf.Tensor]) -> None:
    @tf.function(input_signature=[_spec(shape, F32, "x")])
    def serve(x):
        return {"y": fn(x)}

    _save(path, {"serving_default": serve})


def build_add_one(path: Path) -> list[Case]:
    _elementwise(path, [None, None], lambda x: x + 1.0)
    rng = _rng()
    shapes = [(1, 4), (3, 5)]
    return [("serving_default", {"x": rng.standard_normal(s, dtype=np.float32)}) for s in shapes]


def build_tiny_add(path: Path) -> list[Case]:
    _elementwise(path, [1, 4], lambda x: x + x)
    return [("serving_default", {"x": _rng().standard_normal((1, 4), dtype=np.float32)})]


def build_add_one_big(path: Path) -> list[Case]:
    _elementwise(path, [None], lambda x: x + 1.0)
    return []


def build_keras_mobilenet(path: Path) -> list[Case]:
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.applications.MobileNet(weights=None, input_shape=(224, 224, 3), alpha=0.25)
    rng = _rng()
    _calibrate_batch_norm(model, rng.random((4, 224, 224, 3), dtype=np.float32))
    model.export(str(path), verbose=False)
    # Keras names the signature input after the model's input layer; read it back.
    sig = tf.saved_model.load(str(path)).signatures["serving_default"]
    (input_key,) = sig.structured_input_signature[1]
    return [("serving_default", {input_key: rng.random((2, 224, 224, 3), dtype=np.float32)})]


def _calibrate_batch_norm(model, batch: np.ndarray) -> None:
    """Sets every BatchNormalization's moving statistics from one batch.

    With fresh random weights MobileNet's activations shrink to ~1e-15 by the last block, so
    it answers a constant 0.001 for every class and input, which would check nothing.
    """
    import keras

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0  # the moving statistics become this batch's statistics
    model(batch, training=True)
    for layer, momentum in zip(layers, momenta, strict=True):
        layer.momentum = momentum


# --- the SavedModel guide's modules --------------------------------------------------------


class CustomModule(tf.Module):
    """The CustomModule of TensorFlow's SavedModel guide."""

    def __init__(self) -> None:
        super().__init__()
        self.v = tf.Variable(1.0)

    @tf.function
    def __call__(self, x):
        return x * self.v

    @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
    def mutate(self, new_v):
        self.v.assign(new_v)


def _custom_module() -> tuple[CustomModule, tf.types.experimental.ConcreteFunction]:
    """The guide's module, traced once with a scalar, and its unknown-rank `x` function."""
    module = CustomModule()
    module(tf.constant(0.0))
    return module, module.__call__.get_concrete_function(tf.TensorSpec(None, tf.float32))


def build_module_no_signatures(path: Path) -> list[Case]:
    module, _ = _custom_module()
    _save(path, module=module)
    _custom_module_calls(path, vector=True)
    return []


def build_module_with_signature(path: Path) -> list[Case]:
    module, call = _custom_module()
    _save(path, call, module=module)
    _custom_module_calls(path, vector=True)
    vector = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    return [
        ("serving_default", {"x": np.array(3.0, np.float32)}),
        ("serving_default", {"x": vector}),
    ]


def _record_calls(path: Path, calls: dict[str, object]) -> None:
    """What TensorFlow's restored object tree returned for calls tests/test_object_tree.py
    replays, as <name>.tf_calls.npz beside the model: nested outputs flattened to keys
    "call/key/0" (dict keys sorted, as TensorFlow's nest orders them); None is left out."""
    arrays: dict[str, np.ndarray] = {}

    def add(key: str, value: object) -> None:
        if isinstance(value, dict):
            for k in sorted(value):
                add(f"{key}/{k}", value[k])
        elif isinstance(value, (tuple, list)):
            for i, item in enumerate(value):
                add(f"{key}/{i}", item)
        elif value is not None:
            arrays[key] = _to_numpy(tf.convert_to_tensor(value))

    for key, value in calls.items():
        add(key, value)
    np.savez(path.parent / f"{path.name}.tf_calls.npz", **arrays)


def _custom_module_calls(path: Path, vector: bool) -> None:
    """The guide's sequence on TensorFlow's restored module: call, mutate, call again."""
    imported = tf.saved_model.load(str(path))
    calls: dict[str, object] = {"call": imported(tf.constant(3.0))}
    imported.mutate(tf.constant(2.0))
    calls["call_after_mutate"] = imported(tf.constant(3.0))
    if vector:
        calls["vector_after_mutate"] = imported(tf.constant([3.0]))
    if "serving_default" in imported.signatures:
        calls["signature_after_mutate"] = imported.signatures["serving_default"](x=tf.constant(3.0))
    calls["v"] = imported.v
    _record_calls(path, calls)


def build_module_guide(path: Path) -> list[Case]:
    """The guide's module exactly: traced once, with a scalar, so a vector finds no function."""
    module = CustomModule()
    module(tf.constant(0.0))
    _save(path, module=module)
    _custom_module_calls(path, vector=False)
    return []


def build_module_vector_trace(path: Path) -> list[Case]:
    """The guide's module with a `[None]` concrete function traced before saving."""
    module = CustomModule()
    module(tf.constant(0.0))
    module.__call__.get_concrete_function(tf.TensorSpec([None], tf.float32))
    _save(path, module=module)
    _custom_module_calls(path, vector=True)
    return []


class _Inner(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = tf.Variable(2.0, name="w")
        self.b = tf.Variable([1.0, 2.0], name="w")  # the same name as w: only paths tell them apart

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def f(self, x):
        return x * self.w + self.b


class _Outer(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = _Inner()
        self.alias = self.inner  # a second path to the same objects
        self.v = tf.Variable(1.0, name="w")
        self.lst = [tf.Variable(3.0), {"a.b/c": tf.Variable(4.0)}]  # escaped checkpoint keys
        self.offsets = tf.constant([5.0, 6.0])  # captured as a SavedConstant
        self.table = tf.lookup.StaticHashTable(  # a resource smrt cannot bind yet
            tf.lookup.KeyValueTensorInitializer(tf.constant(["a"]), tf.constant([1])), -1)

    @tf.function
    def __call__(self, x, y=None):
        return {"s": x * self.v, "t": (self.inner.f(x), x if y is None else x + y)}

    @tf.function(input_signature=[tf.TensorSpec([2], tf.float32)])
    def offset(self, x):
        return x + self.offsets

    @tf.function(input_signature=[{
        "a": tf.TensorSpec([None], tf.float32),
        "b": (tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32)),
    }])
    def combine(self, inputs):
        scale, count = inputs["b"]
        return inputs["a"] * scale + tf.cast(count, tf.float32), count + 1

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def look(self, keys):
        return self.table.lookup(keys)

    @tf.function(input_signature=[])
    def bump(self):
        self.v.assign_add(1.0)
        self.lst[1]["a.b/c"].assign_add(self.lst[0])


def build_nested_modules(path: Path) -> list[Case]:
    """Nested tf.Modules, an alias, same-named variables, a list and a dict with a key that
    needs escaping; __call__ traced with and without its optional argument, and a method that
    returns nothing."""
    module = _Outer()
    module(tf.constant([1.0]))
    module(tf.constant([1.0]), tf.constant(2.0))
    _save(path, module=module)
    imported = tf.saved_model.load(str(path))
    calls: dict[str, object] = {
        "call_x": imported(tf.constant([1.0])),
        "call_xy": imported(tf.constant([1.0]), y=tf.constant(2.0)),
        "f": imported.inner.f(tf.constant([1.0, 2.0])),
        "offset": imported.offset(tf.constant([1.0, 2.0])),
        "combine": imported.combine({"a": tf.constant([1.0, 2.0]),
                                     "b": (tf.constant(3.0), tf.constant(4))}),
    }
    imported.bump()
    calls["call_after_bump"] = imported(tf.constant([1.0]))
    calls["v"] = imported.v
    calls["lst_1"] = imported.lst[1]["a.b/c"]
    _record_calls(path, calls)
    return []


def build_keras_dense(path: Path) -> list[Case]:
    """A small Keras model exported for serving: its `serve` function and layer variables."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.export(str(path), verbose=False)
    x = _rng().random((4, 3), dtype=np.float32)
    imported = tf.saved_model.load(str(path))
    _record_calls(path, {"x": x, "serve": imported.serve(tf.constant(x)),
                         "kernel": model.layers[0].kernel, "bias": model.layers[0].bias})
    sig = imported.signatures["serving_default"]
    (input_key,) = sig.structured_input_signature[1]
    return [("serving_default", {input_key: x})]


def build_keras_stateful(path: Path) -> list[Case]:
    """A Keras model exported with an ExportArchive whose endpoints (each both a function on the
    root and a signature) read and write one layer's variables: Keras saves each variable twice
    (``variables`` and ``_all_variables``), and the graph's signatures use the second copy's
    handles while the functions' captures name the first."""
    import keras

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    dense = model.layers[0]
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", model.call,
                         input_signature=[tf.TensorSpec([None, 3], tf.float32)])

    def set_bias(bias):
        dense.bias.assign(bias)
        return dense.bias.value

    archive.add_endpoint("set_bias", set_bias, input_signature=[tf.TensorSpec([2], tf.float32)])
    archive.write_out(str(path), verbose=False)
    x = _rng().random((2, 3), dtype=np.float32)
    imported = tf.saved_model.load(str(path))
    calls: dict[str, object] = {"x": x, "serve": imported.serve(tf.constant(x))}
    imported.set_bias(tf.constant([10.0, 20.0]))
    calls["signature_after_function_write"] = imported.signatures["serve"](inputs=tf.constant(x))
    imported.signatures["set_bias"](bias=tf.constant([1.0, 2.0]))
    calls["function_after_signature_write"] = imported.serve(tf.constant(x))
    calls["kernel"] = dense.kernel.numpy()
    _record_calls(path, calls)
    return []


_TABLE_KEYS = "a\nb\nc\n"


class _Tables(tf.Module):
    """Functions capturing lookup tables (initialized from a vocabulary file, an asset, and from
    tensors) and an asset itself; one table is also used by a signature."""

    def __init__(self, vocabulary: str) -> None:
        super().__init__()
        self.vocabulary = tf.saved_model.Asset(vocabulary)
        lines = tf.lookup.TextFileInitializer(
            vocabulary, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
            tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
        self.table = tf.lookup.StaticHashTable(lines, -1)
        self.vocab = tf.lookup.StaticVocabularyTable(lines, num_oov_buckets=2)
        self.pairs = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
            tf.constant(["x", "y"]), tf.constant([7, 8], tf.int64)), -1)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def look(self, keys):
        return self.table.lookup(keys)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def vocab_ids(self, keys):
        return self.vocab.lookup(keys)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def pair(self, keys):
        return self.pairs.lookup(keys)

    @tf.function(input_signature=[])
    def read_vocabulary(self):
        return tf.io.read_file(self.vocabulary)


def build_lookup_tables(path: Path) -> list[Case]:
    """A module whose functions capture lookup tables and an asset; the vocabulary file is
    deleted after saving, so only the SavedModel's assets/ copy can be read."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        vocabulary = Path(tmp) / "vocab.txt"
        vocabulary.write_text(_TABLE_KEYS)
        module = _Tables(str(vocabulary))
        tf.saved_model.save(module, str(path), signatures={"look": module.look})
    imported = tf.saved_model.load(str(path))
    keys = tf.constant(["b", "z", "a"])
    _record_calls(path, {
        "look": imported.look(keys), "vocab_ids": imported.vocab_ids(keys),
        "pair": imported.pair(tf.constant(["y", "q"])),
        "read_vocabulary": np.frombuffer(imported.read_vocabulary().numpy(), np.uint8),
    })
    return [("look", {"keys": _strings("b", "z", "a")})]


def build_multiple_signatures(path: Path) -> list[Case]:
    module, call = _custom_module()

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def parse_string(string_input):
        return module(tf.strings.to_number(string_input))

    _save(path, {"serving_default": parse_string, "from_float": call}, module=module)
    return [
        ("serving_default", {"string_input": _string(b"3.")}),
        ("from_float", {"x": np.array(3.0, np.float32)}),
    ]


# --- state and control flow ----------------------------------------------------------------


class StatefulModule(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.v = tf.Variable(1.0)

    @tf.function(input_signature=[_spec([None], F32, "x")])
    def serve(self, x):
        return {"y": x * self.v}

    @tf.function(input_signature=[_spec([], F32, "new_v")])
    def mutate(self, new_v):
        self.v.assign(new_v)
        return {"v": self.v.read_value()}

    @tf.function(input_signature=[])
    def read(self):
        return {"v": self.v.read_value()}


def build_stateful(path: Path) -> list[Case]:
    m = StatefulModule()
    _save(path, {"serving_default": m.serve, "mutate": m.mutate, "read": m.read}, module=m)
    x = np.array([1.0, 2.0], dtype=np.float32)
    return [
        ("serving_default", {"x": x}),
        ("mutate", {"new_v": np.array(2.0, np.float32)}),
        ("serving_default", {"x": x}),
        ("read", {}),
    ]


def build_control_flow(path: Path) -> list[Case]:
    @tf.function(input_signature=[_spec([], tf.int32, "x")])
    def branch(x):
        if x < 0:  # AutoGraph turns this into tf.cond
            return {"y": tf.constant(-1)}
        return {"y": x % 3}

    @tf.function(input_signature=[_spec([], tf.int32, "n")])
    def loop(n):
        _, total = tf.while_loop(lambda i, s: i < n, lambda i, s: (i + 1, s + i), (0, 0))
        return {"y": total}

    _save(path, {"serving_default": branch, "loop": loop})
    cases: list[Case] = [("serving_default", {"x": np.array(x, np.int32)}) for x in (-1, 2, 3)]
    return [*cases, ("loop", {"n": np.array(5, np.int32)})]


def build_hidden_file_reads(path: Path) -> list[Case]:
    """``tf.io.read_file`` where saved_model_cli's scan does not look: in a ``tf.cond`` branch,
    a ``tf.while_loop`` body and a ``tf.data`` map function. The cases read nothing."""

    @tf.function(input_signature=[_spec([], tf.string, "path"), _spec([], tf.bool, "read")])
    def in_cond(path, read):
        return {"data": tf.cond(read, lambda: tf.io.read_file(path), lambda: tf.constant(""))}

    @tf.function(input_signature=[_spec([], tf.string, "path"), _spec([], tf.int32, "n")])
    def in_while(path, n):
        def body(i, size):
            return i + 1, size + tf.strings.length(tf.io.read_file(path))

        _, size = tf.while_loop(lambda i, size: i < n, body, (0, 0))
        return {"size": size}

    @tf.function(input_signature=[_spec([None], tf.string, "paths")])
    def in_dataset(paths):
        sizes = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: tf.strings.length(tf.io.read_file(p)))
        return {"size": sizes.reduce(tf.constant(0), lambda a, b: a + b)}

    _save(path, {"in_cond": in_cond, "in_while": in_while, "in_dataset": in_dataset})
    return [
        ("in_cond", {"path": _string("/nonexistent"), "read": np.array(False)}),
        ("in_while", {"path": _string("/nonexistent"), "n": np.array(0, np.int32)}),
    ]


# --- tf.train.Example parsing --------------------------------------------------------------

EXAMPLE_FEATURES = {
    "x": tf.io.FixedLenFeature([1], tf.float32),
    "name": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "ids": tf.io.VarLenFeature(tf.int64),
}


def _example(x: float, ids: list[int], name: bytes | None = None) -> bytes:
    feature = {
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
        "ids": tf.train.Feature(int64_list=tf.train.Int64List(value=ids)),
    }
    if name is not None:
        feature["name"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[name]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def build_parse_example(path: Path) -> list[Case]:
    @tf.function(input_signature=[_spec([None], tf.string, "examples")])
    def parse(examples):
        parsed = tf.io.parse_example(examples, EXAMPLE_FEATURES)
        return {
            "x": parsed["x"],
            "name": parsed["name"],
            "ids": tf.sparse.to_dense(parsed["ids"], default_value=0),
            "score": 2.0 * parsed["x"],
        }

    _save(path, {"serving_default": parse})
    # The second example has no "name" (so it gets the default) and fewer ids (padded with 0).
    examples = _strings(_example(1.5, [1, 2, 3], b"first"), _example(-2.0, [7]))
    return [("serving_default", {"examples": examples})]


# --- every dtype ---------------------------------------------------------------------------

ALL_DTYPES = {
    "f16": tf.float16,
    "f32": tf.float32,
    "f64": tf.float64,
    "bf16": tf.bfloat16,
    "i8": tf.int8,
    "i16": tf.int16,
    "i32": tf.int32,
    "i64": tf.int64,
    "u8": tf.uint8,
    "u16": tf.uint16,
    "u32": tf.uint32,
    "u64": tf.uint64,
    "b": tf.bool,
    "c64": tf.complex64,
    "c128": tf.complex128,
    "s": tf.string,
}


def _touch(x: tf.Tensor) -> tf.Tensor:
    """An op that keeps x's dtype but proves x was read (AddV2 covers every numeric dtype)."""
    if x.dtype == tf.bool:
        return tf.logical_not(x)
    if x.dtype == tf.string:
        return tf.strings.join([x, x])
    return x + x


def _random_values(dtype: tf.DType, n: int, rng: np.random.Generator) -> np.ndarray:
    if dtype == tf.string:
        return _strings(b"", "é", "ünïcødé, and longer than 22 bytes")[:n]
    if dtype == tf.bool:
        return np.array([True, False, True][:n])
    if dtype == tf.bfloat16:
        return rng.standard_normal(n).astype(ml_dtypes.bfloat16)
    np_dtype = dtype.as_numpy_dtype
    if dtype.is_complex:
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np_dtype)
    if dtype.is_floating:
        return rng.standard_normal(n).astype(np_dtype)
    info = np.iinfo(np_dtype)  # the whole range: overflow wraps the same way in TF and NumPy
    return rng.integers(info.min, info.max, size=n, dtype=np_dtype, endpoint=True)


def build_all_dtypes(path: Path) -> list[Case]:
    @tf.function(input_signature=[{k: _spec([None], t, k) for k, t in ALL_DTYPES.items()}])
    def serve(inputs):
        return {f"o_{k}": _touch(v) for k, v in inputs.items()}

    @tf.function(
        input_signature=[_spec([], F32, "a"), _spec([], tf.int64, "b"), _spec([], tf.string, "c")]
    )
    def scalars(a, b, c):
        return {"o_a": a * 2.0, "o_b": b + 1, "o_c": c}

    _save(path, {"serving_default": serve, "scalars": scalars})
    rng = _rng()
    scalar_inputs = {
        "a": np.array(1.25, np.float32),
        "b": np.array(2**40, np.int64),
        "c": _string("scalar ✓ with a NUL \0 inside"),
    }
    return [
        ("serving_default", {k: _random_values(t, 3, rng) for k, t in ALL_DTYPES.items()}),
        ("scalars", scalar_inputs),
    ]


def build_dynamic_shapes(path: Path) -> list[Case]:
    @tf.function(input_signature=[_spec([None, None, 3], F32, "x"), _spec(None, F32, "z")])
    def serve(x, z):
        return {"y": tf.reduce_sum(x, axis=1), "w": z * 2.0}

    _save(path, {"serving_default": serve})
    rng = _rng()
    shapes = [((2, 4, 3), (2, 2)), ((0, 5, 3), ()), ((3, 0, 3), (1, 2, 3))]
    return [
        (
            "serving_default",
            {
                "x": rng.standard_normal(xs, dtype=np.float32),
                "z": rng.standard_normal(zs, dtype=np.float32),
            },
        )
        for xs, zs in shapes
    ]


def build_two_tag_sets(path: Path) -> list[Case]:
    """A TF1-style SavedModel (tf.compat.v1 Builder) with MetaGraphs 'serve' and 'serve, gpu'.

    Both take x float32 [None, 1] (tensor "x:0") and a variable w = 2: "serve" returns y = x @ w,
    "serve, gpu" returns y = 3 * (x @ w). No cases: tf.saved_model.load picks one tag-set only,
    so the tests check the values (2x and 6x) themselves.
    """
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        x = v1.placeholder(F32, [None, 1], name="x")
        w = v1.get_variable("w", initializer=tf.constant([[2.0]]))
        y = tf.identity(tf.matmul(x, w), name="y")
        y3 = tf.identity(3.0 * y, name="y3")
        sess.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        predict = v1.saved_model.predict_signature_def
        builder.add_meta_graph_and_variables(
            sess, ["serve"], signature_def_map={"serving_default": predict({"x": x}, {"y": y})}
        )
        builder.add_meta_graph(
            ["serve", "gpu"], signature_def_map={"serving_default": predict({"x": x}, {"y": y3})}
        )
        builder.save()
    return []


# --- TensorFlow Serving's classic test model -------------------------------------------------


def _half_plus(path: Path, k: float) -> list[Case]:
    """TF Serving's half_plus_two / half_plus_three, TF1-style: y = 0.5 * x + k.

    Signatures: ``serving_default`` (predict, x float32 [None] -> y), ``regress_x_to_y``
    (regress: serialized tf.Examples with feature x -> outputs [None, 1]), ``classify_x_to_y``
    (classify: classes ["low", "high"] and scores [y, 1 - y] per example, with an optional
    feature "bias" added to y) and ``classify_scores_only`` (scores only, like TF Serving's).
    """
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as sess:
        a = v1.get_variable("a", initializer=tf.constant(0.5))
        b = v1.get_variable("b", initializer=tf.constant(float(k)))
        x = v1.placeholder(F32, [None], name="x")
        y = tf.identity(a * x + b, name="y")
        examples = v1.placeholder(tf.string, [None], name="tf_example")
        features = {
            "x": tf.io.FixedLenFeature([1], F32),
            "bias": tf.io.FixedLenFeature([1], F32, default_value=[0.0]),
        }
        parsed = tf.io.parse_example(examples, features)
        y_ex = tf.identity(a * parsed["x"] + b + parsed["bias"], name="y_ex")
        scores = tf.concat([y_ex, 1.0 - y_ex], axis=1, name="scores")
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(y_ex)[0], 1], name="classes")
        sess.run(v1.global_variables_initializer())
        sigs = v1.saved_model
        builder = sigs.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sigs.predict_signature_def({"x": x}, {"y": y}),
            "regress_x_to_y": sigs.regression_signature_def(examples, y_ex),
            "classify_x_to_y": sigs.classification_signature_def(examples, classes, scores),
            "classify_scores_only": sigs.classification_signature_def(examples, None, scores),
        })
        builder.save()
    batch = _strings(_example_x(1.0), _example_x(-4.0, bias=0.25))
    return [
        ("serving_default", {"x": np.array([1.0, 2.0, 5.0], np.float32)}),
        ("regress_x_to_y", {"inputs": batch}),
        ("classify_x_to_y", {"inputs": batch}),
        ("classify_scores_only", {"inputs": batch}),
    ]


def _example_x(x: float, bias: float | None = None) -> bytes:
    feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}
    if bias is not None:
        feature["bias"] = tf.train.Feature(float_list=tf.train.FloatList(value=[bias]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def build_bytes_echo(path: Path) -> list[Case]:
    """Binary strings in and out, named as TF Serving's REST API expects (``_bytes``)."""

    @tf.function(input_signature=[_spec([None], tf.string, "image_bytes")])
    def serve(image_bytes):
        return {"echo_bytes": image_bytes, "echo": image_bytes,
                "size": tf.strings.length(image_bytes)}

    _save(path, {"serving_default": serve})
    return [("serving_default", {"image_bytes": _strings(b"\xff\x00\xd8", "text")})]


# --- where another backend differs from TensorFlow ---------------------------------------------


def build_wrapping_cast(path: Path) -> list[Case]:
    """A float -> uint8 cast of negative values: TensorFlow wraps them (-100 -> 156), OpenVINO
    saturates (-> 0), so ``backend="auto"`` must keep TensorFlow for it."""

    @tf.function(input_signature=[_spec([None], F32, "x")])
    def serve(x):
        return {"y": tf.cast(x * 100.0, tf.uint8)}

    _save(path, {"serving_default": serve})
    return [("serving_default", {"x": np.array([-1.0, -0.5, 0.25, 1.0], np.float32)})]


def build_stateless_random(path: Path) -> list[Case]:
    """x plus seeded stateless noise: ops OpenVINO's TensorFlow frontend does not convert."""

    @tf.function(input_signature=[_spec([None], F32, "x")])
    def serve(x):
        return {"y": x + tf.random.stateless_uniform(tf.shape(x), seed=[1, 2])}

    _save(path, {"serving_default": serve})
    return [("serving_default", {"x": np.array([0.0, 1.0, 2.0], np.float32)})]


def build_pair_add(path: Path) -> list[Case]:
    """z = x + y over rows of 3: each input alone fits (None, 3), together they must agree."""

    @tf.function(input_signature=[_spec([None, 3], F32, "x"), _spec([None, 3], F32, "y")])
    def serve(x, y):
        return {"z": x + y}

    _save(path, {"serving_default": serve})
    return [("serving_default", {"x": np.ones((2, 3), np.float32),
                                 "y": np.arange(6, dtype=np.float32).reshape(2, 3)})]


def build_half_plus_two(path: Path) -> list[Case]:
    return _half_plus(path, 2.0)


def build_half_plus_three(path: Path) -> list[Case]:
    return _half_plus(path, 3.0)


def build_tf_serving_half_plus_two(path: Path) -> list[Case]:
    """TF Serving's own test model (its saved_model_half_plus_two.py generator, CPU, without the
    asset): ``x`` is not a placeholder but the parsed tf.Example feature, so its declared shape
    is (-1, 1), and TF Serving's REST tests feed it ``[2.0, 3.0, 4.0]``."""
    v1 = tf.compat.v1
    sigs = v1.saved_model
    with tf.Graph().as_default(), v1.Session() as sess:
        a, b, c = (v1.Variable(v, name=n) for v, n in ((0.5, "a"), (2.0, "b"), (3.0, "c")))
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        parsed = tf.io.parse_example(serialized, {
            "x": tf.io.FixedLenFeature([1], F32),
            "x2": tf.io.FixedLenFeature([1], F32, default_value=[0.0]),
        })
        x = tf.identity(parsed["x"], name="x")
        y = tf.identity(a * x + b, name="y")
        y2 = tf.identity(a * x + c, name="y2")
        x2 = tf.identity(parsed["x2"], name="x2")
        a2, c2 = v1.Variable(0.5, name="a2"), v1.Variable(3.0, name="c2")
        y3 = tf.identity(a2 * x2 + c2, name="y3")

        def regression(inputs: tf.Tensor, outputs: tf.Tensor) -> object:
            return sigs.build_signature_def(
                {"inputs": sigs.build_tensor_info(inputs)},
                {"outputs": sigs.build_tensor_info(outputs)}, sigs.REGRESS_METHOD_NAME)

        sess.run(v1.global_variables_initializer())
        builder = sigs.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sigs.predict_signature_def({"x": x}, {"y": y}),
            "regress_x_to_y": regression(serialized, y),
            "regress_x_to_y2": regression(serialized, y2),
            "regress_x2_to_y3": regression(x2, y3),
            "classify_x_to_y": sigs.build_signature_def(
                {"inputs": sigs.build_tensor_info(serialized)},
                {"scores": sigs.build_tensor_info(y)}, sigs.CLASSIFY_METHOD_NAME),
        })
        builder.save()
    return [("serving_default", {"x": np.array([[2.0], [3.0], [4.0]], np.float32)})]


class ExamplesModule(tf.Module):
    """half_plus_two's classify and regress signatures written the TF2 way: y = 0.5 * x + 2
    from serialized tf.Examples with feature x, in functions of a tf.Module."""

    def __init__(self) -> None:
        super().__init__()
        self.a = tf.Variable(0.5)
        self.b = tf.Variable(2.0)

    def _y(self, inputs: tf.Tensor) -> tf.Tensor:
        parsed = tf.io.parse_example(inputs, {"x": tf.io.FixedLenFeature([1], F32)})
        return self.a * parsed["x"] + self.b

    @tf.function(input_signature=[_spec([None], F32, "x")])
    def predict(self, x):
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[_spec([None], tf.string, "inputs")])
    def classify(self, inputs):
        y = self._y(inputs)
        classes = tf.tile(tf.constant([["low", "high"]]), [tf.shape(y)[0], 1])
        return {"classes": classes, "scores": tf.concat([y, 1.0 - y], axis=1)}

    @tf.function(input_signature=[_spec([None], tf.string, "inputs")])
    def regress(self, inputs):
        return {"outputs": self._y(inputs)}


def build_tf2_classify_regress(path: Path) -> list[Case]:
    """A TF2 export (tf.saved_model.save) served to TF Serving's Classify, Regress and
    MultiInference APIs: ``serving_default`` (x float32 [None] -> y), ``classify_x`` (classes
    and scores) and ``regress_x`` (outputs [None, 1]) with TF Serving's method names, and
    ``regress_as_saved`` (the regress function again, with the predict method name
    tf.saved_model.save writes for every signature). tf.saved_model.save has no way to name
    another method, so the two method names are set afterwards in saved_model.pb with
    TensorFlow's own protos."""
    from tensorflow.core.protobuf import saved_model_pb2

    module = ExamplesModule()
    _save(path, {"serving_default": module.predict, "classify_x": module.classify,
                 "regress_x": module.regress, "regress_as_saved": module.regress}, module)
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    signatures = saved.meta_graphs[0].signature_def
    signatures["classify_x"].method_name = "tensorflow/serving/classify"
    signatures["regress_x"].method_name = "tensorflow/serving/regress"
    (path / "saved_model.pb").write_bytes(saved.SerializeToString())
    batch = _strings(_example_x(1.0), _example_x(-4.0))
    return [
        ("serving_default", {"x": np.array([1.0, -4.0], np.float32)}),
        ("classify_x", {"inputs": batch}),
        ("regress_x", {"inputs": batch}),
        ("regress_as_saved", {"inputs": batch}),
    ]


def build_guarded_outputs(path: Path) -> list[Case]:
    """Two outputs of one input, TF1-style, so each is its own graph tensor and a run that
    fetches one computes only that one's ops: ``y = 2 * x`` for any x, and ``checked = x``,
    whose Assert fails the run unless every x is positive. A Predict that filters its outputs
    to ``y`` succeeds for x <= 0 only if the server fetches ``y`` alone."""
    v1 = tf.compat.v1
    sigs = v1.saved_model
    with tf.Graph().as_default(), v1.Session() as sess:
        x = v1.placeholder(F32, [None], name="x")
        y = tf.identity(2.0 * x, name="y")
        positive = tf.debugging.assert_positive(x, message="checked needs a positive x")
        with tf.control_dependencies([positive]):
            checked = tf.identity(x, name="checked")
        builder = sigs.Builder(str(path))
        builder.add_meta_graph_and_variables(sess, ["serve"], signature_def_map={
            "serving_default": sigs.predict_signature_def({"x": x}, {"y": y, "checked": checked}),
        })
        builder.save()
    return [("serving_default", {"x": np.array([1.0, 2.5], np.float32)})]


def build_path_output_keys(path: Path) -> list[Case]:
    """Output keys that are paths: `smrt run --outdir` must not write outside its directory."""

    @tf.function(input_signature=[_spec([None], F32, "x")])
    def serve(x):
        return {"../escape": x + 1.0, "/abs": x * 2.0}

    _save(path, {"serving_default": serve})
    return [("serving_default", {"x": np.array([1.0, 2.0], np.float32)})]


# --- custom ops: tensorflow-text ------------------------------------------------------------

TEXT_VOCAB = ["[UNK]", "the", "quick", "brown", "fox", "jump", "##s", "##ed", "over", "lazy", "dog"]


def _text_tokenizers() -> tf.types.experimental.ConcreteFunction:
    """Whitespace split, then wordpieces: ops from two of tensorflow-text's op libraries."""
    import tensorflow_text as text  # a test-only package (tests/requirements-no-deps.txt)

    whitespace = text.WhitespaceTokenizer()
    wordpiece = text.FastWordpieceTokenizer(vocab=TEXT_VOCAB, token_out_type=tf.int64)

    @tf.function(input_signature=[_spec([None], tf.string, "text")])
    def serve(sentences):
        words = whitespace.tokenize(sentences)  # ragged [batch, (words)]
        ids = wordpiece.tokenize(words.flat_values)  # ragged [words, (pieces)]
        return {"words": words.to_tensor(default_value=""), "ids": ids.flat_values,
                "pieces_per_word": ids.row_lengths()}

    return serve


def build_text_tokenizers(path: Path) -> list[Case]:
    _save(path, {"serving_default": _text_tokenizers()})
    sentences = _strings("the quick brown fox jumped", "over the lazy dogs", "")
    return [("serving_default", {"text": sentences}),
            ("serving_default", {"text": _strings("jumps foxed")})]


def build_unknown_ops(path: Path) -> list[Case]:
    """The text model with two ops renamed to ones nothing registers: one named as
    tensorflow-addons names its ops ("Addons>..."), one no package is known for."""
    from tensorflow.core.protobuf import saved_model_pb2

    _save(path, {"serving_default": _text_tokenizers()})
    renames = {"TFText>WhitespaceTokenizeWithOffsetsV2": "Addons>NoSuchOp",
               "FastWordpieceTokenizeWithOffsets": "NoSuchOpAnywhere"}
    saved = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    for meta in saved.meta_graphs:
        for op in meta.meta_info_def.stripped_op_list.op:
            op.name = renames.get(op.name, op.name)
        for function in meta.graph_def.library.function:
            for node in function.node_def:
                node.op = renames.get(node.op, node.op)
    (path / "saved_model.pb").write_bytes(saved.SerializeToString())
    return []


def build_tabular(path: Path) -> list[Case]:
    """Batch inference (smrt.beam, smrt.spark): inputs of several dtypes and ranks, a
    single-input signature, and float, vector and string outputs, all with a batch dimension."""
    rng = _rng()
    w = tf.constant(rng.standard_normal((4, 3), dtype=np.float32))

    @tf.function(input_signature=[
        _spec([None, 4], F32, "features"), _spec([None], tf.int64, "ids"),
        _spec([None, 2, 3], F32, "patch"),
    ])
    def serve(features, ids, patch):
        logits = features @ w + tf.reduce_sum(patch, axis=1)
        score = tf.reduce_sum(logits, axis=1) + tf.cast(ids, F32)
        return {"probs": tf.nn.softmax(logits), "score": score,
                "label": tf.where(score > 0.0, "pos", "neg")}

    @tf.function(input_signature=[_spec([None, 4], F32, "features")])
    def features_only(features):
        return {"probs": tf.nn.softmax(features @ w)}

    _save(path, {"serving_default": serve, "features_only": features_only})
    n = 7
    features = rng.standard_normal((n, 4), dtype=np.float32)
    return [
        ("serving_default", {"features": features, "ids": rng.integers(-3, 3, n, dtype=np.int64),
                             "patch": rng.standard_normal((n, 2, 3), dtype=np.float32)}),
        ("features_only", {"features": features}),
    ]


MODELS: dict[str, Builder] = {
    "add_one": build_add_one,
    "tiny_add": build_tiny_add,
    "keras_mobilenet": build_keras_mobilenet,
    "module_no_signatures": build_module_no_signatures,
    "module_with_signature": build_module_with_signature,
    "module_guide": build_module_guide,
    "module_vector_trace": build_module_vector_trace,
    "nested_modules": build_nested_modules,
    "keras_dense": build_keras_dense,
    "keras_stateful": build_keras_stateful,
    "lookup_tables": build_lookup_tables,
    "multiple_signatures": build_multiple_signatures,
    "stateful": build_stateful,
    "control_flow": build_control_flow,
    "hidden_file_reads": build_hidden_file_reads,
    "parse_example": build_parse_example,
    "all_dtypes": build_all_dtypes,
    "dynamic_shapes": build_dynamic_shapes,
    "two_tag_sets": build_two_tag_sets,
    "bytes_echo": build_bytes_echo,
    "half_plus_two": build_half_plus_two,
    "half_plus_three": build_half_plus_three,
    "tf_serving_half_plus_two": build_tf_serving_half_plus_two,
    "tf2_classify_regress": build_tf2_classify_regress,
    "guarded_outputs": build_guarded_outputs,
    "add_one_big": build_add_one_big,
    "path_output_keys": build_path_output_keys,
    "text_tokenizers": build_text_tokenizers,
    "unknown_ops": build_unknown_ops,
    "tabular": build_tabular,
    "wrapping_cast": build_wrapping_cast,
    "stateless_random": build_stateless_random,
    "pair_add": build_pair_add,
}
DEFAULT_MODELS = [name for name in MODELS if name != "add_one_big"]


def build(outdir: Path, name: str) -> None:
    model_dir, done = outdir / name, outdir / f"{name}.done"
    done.unlink(missing_ok=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    start = time.perf_counter()
    tf.random.set_seed(SEED)
    cases = MODELS[name](model_dir)
    _write_cases(model_dir, cases, outdir / f"{name}.cases.npz")
    done.touch()
    print(f"{name}: {len(cases)} cases, {time.perf_counter() - start:.1f}s", flush=True)


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    outdir, names = Path(argv[0]), argv[1:] or DEFAULT_MODELS
    unknown = sorted(set(names) - MODELS.keys())
    if unknown:
        print(
            f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}", file=sys.stderr
        )
        return 2
    tf.get_logger().setLevel("ERROR")
    outdir.mkdir(parents=True, exist_ok=True)
    for name in names:
        build(outdir, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
