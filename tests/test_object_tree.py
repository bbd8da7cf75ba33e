"""model.root: the restored object tree, run in smrt's session (issue 17). Every expected value
is what TensorFlow's own restored object returned for the same calls (tests/model_zoo.py
``_record_calls``)."""

from __future__ import annotations

import gc
import shutil
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import smrt
from smrt.errors import NoMatchingFunctionError, UnimplementedError
from smrt.objects import Function

from .conftest import Zoo, assert_same
from .protowire import edit, fields, halves, join, varint
from .test_hostile_models import ATTR, FUNCTION_NODE, FUNCTIONS, META, split_everything, variant


@pytest.fixture
def fresh(zoo: Zoo) -> Iterator[dict[str, smrt.Model]]:
    """Models loaded for one test only: these tests change variables."""
    models: dict[str, smrt.Model] = {}

    def get(name: str) -> smrt.Model:
        models[name] = smrt.load(zoo.path(name))
        return models[name]

    yield get  # type: ignore[misc]
    for model in models.values():
        model.close()


def test_custom_model_section_of_the_guide(zoo: Zoo, fresh) -> None:
    """The SavedModel guide's "custom model" section, call for call."""
    tf = zoo.tf_calls("module_guide")
    model = fresh("module_guide")
    imported = model.root
    assert_same(imported(3.0), tf["call"], "imported(3.)")
    assert imported.mutate(2.0) is None
    assert_same(imported(np.float32(3.0)), tf["call_after_mutate"], "imported(3.) after mutate")
    assert float(imported(3.0)) == 6.0
    with pytest.raises(NoMatchingFunctionError) as raised:
        imported([3.0])
    message = str(raised.value)
    assert "root.__call__" in message
    assert "Option 1:" in message
    assert "TensorSpec(shape=(), dtype=tf.float32, name='x')" in message
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, smrt.Error)
    assert np.asarray(imported.v) == 2.0
    assert imported.v.numpy() == tf["v"]


def test_vector_concrete_function_traced_before_saving(zoo: Zoo, fresh) -> None:
    tf = zoo.tf_calls("module_vector_trace")
    imported = fresh("module_vector_trace").root
    imported.mutate(new_v=2.0)  # by keyword
    assert_same(imported(3.0), tf["call_after_mutate"], "scalar")
    assert_same(imported(np.array([3.0], np.float32)), tf["vector_after_mutate"], "vector")
    assert_same(imported(x=[3.0, 4.0]), np.array([6.0, 8.0], np.float32), "a list, by keyword")
    with pytest.raises(NoMatchingFunctionError, match="Option 2:"):
        imported(np.zeros((1, 1), np.float32))  # neither () nor (None,)
    with pytest.raises(NoMatchingFunctionError):
        imported(np.array([3.0]))  # float64 arrays are not converted, as in TensorFlow


def test_signature_and_function_share_the_variables(zoo: Zoo, fresh) -> None:
    tf = zoo.tf_calls("module_with_signature")
    model = fresh("module_with_signature")
    model.root.mutate(2.0)
    out = model.signatures["serving_default"](x=np.float32(3.0))
    assert_same(out["output_0"], tf["signature_after_mutate/output_0"], "signature after mutate")
    assert np.asarray(model.root.v) == 2.0
    ones = np.ones((2, 2), np.float32)
    assert_same(model.root(ones), np.full((2, 2), 2.0, np.float32), "unknown rank")
    # model(...) is the default signature when there is one.
    assert set(model(x=np.float32(1.0))) == {"output_0"}


def test_unknown_rank_concrete_function(zoo: Zoo, fresh) -> None:
    tf = zoo.tf_calls("module_no_signatures")
    imported = fresh("module_no_signatures").root
    assert_same(imported(3.0), tf["call"], "scalar")
    imported.mutate(np.float32(2.0))
    assert_same(imported([3.0]), tf["vector_after_mutate"], "vector")
    ones = np.ones((2, 1, 2), np.float32)
    assert_same(imported(ones), np.full((2, 1, 2), 2.0, np.float32), "rank 3")


def test_model_call_falls_back_to_root_call(fresh) -> None:
    model = fresh("module_no_signatures")
    assert not model.signatures
    assert float(model(3.0)) == 3.0
    model.root.mutate(4.0)
    assert float(model(x=1.0)) == 4.0


def test_nested_modules(zoo: Zoo, fresh) -> None:
    tf = zoo.tf_calls("nested_modules")
    root = fresh("nested_modules").root
    x = np.array([1.0], np.float32)
    out = root(x)
    assert set(out) == {"s", "t"}
    assert isinstance(out["t"], tuple)
    assert_same(out["s"], tf["call_x/s"], "s")
    assert_same(out["t"][0], tf["call_x/t/0"], "t[0]")
    assert_same(out["t"][1], tf["call_x/t/1"], "t[1]")
    out = root(x, y=np.float32(2.0))
    assert_same(out["t"][1], tf["call_xy/t/1"], "with y")
    assert_same(root.inner.f([1.0, 2.0]), tf["f"], "inner.f")
    assert root.alias is root.inner
    assert root.bump() is None
    assert_same(root(x)["s"], tf["call_after_bump/s"], "after bump")
    assert_same(root.v.numpy(), tf["v"], "v")
    assert_same(np.asarray(getattr(getattr(root.lst, "1"), "a.b/c")), tf["lst_1"], "escaped key")
    # Same-named variables are told apart by their paths.
    assert root.inner.w.name == root.inner.b.name == "w"
    assert root.inner.b.shape == (2,)
    assert root.inner.b.dtype == np.float32
    assert_same(np.asarray(root.inner.b), np.array([1.0, 2.0], np.float32), "inner.b")
    with pytest.raises(AttributeError, match="no saved child 'nope'"):
        root.nope  # noqa: B018
    # Nested inputs (a dict holding a tuple), flattened as TensorFlow's nest does.
    a = np.array([1.0, 2.0], np.float32)
    out = root.combine({"a": a, "b": (3.0, 4)})
    assert isinstance(out, tuple)
    assert_same(out[0], tf["combine/0"], "combine[0]")
    assert_same(out[1], tf["combine/1"], "combine[1]")
    assert_same(root.combine(inputs={"b": [3.0, 4], "a": [1.0, 2.0]})[0], tf["combine/0"], "kw")
    with pytest.raises(NoMatchingFunctionError):
        root.combine({"a": a, "b": (3.0, 4.5)})  # 4.5 is no int32
    with pytest.raises(NoMatchingFunctionError):
        root.combine({"a": a})
    # A captured constant is bound to the graph's Const; a table the init op initializes too.
    assert_same(root.offset([1.0, 2.0]), tf["offset"], "offset")
    assert_same(root.look(["a", "q"]), np.array([1, -1], np.int32), "look")


def test_functions_and_their_traces(zoo: Zoo, fresh) -> None:
    """obj.__call__ is the saved function, as in TensorFlow; its traces (bare concrete
    functions) are callable too, positionally or by their keywords."""
    tf = zoo.tf_calls("module_guide")
    root = fresh("module_guide").root
    call = root.__call__
    assert isinstance(call, Function)
    assert len(call.concrete_functions) == 1
    trace = call.trace_0
    assert_same(trace(3.0), tf["call"], "trace_0")
    assert root.mutate.trace_0(new_v=2.0) is None
    assert float(call(x=3.0)) == 6.0


def test_keras_mobilenet_serve(zoo: Zoo, fresh) -> None:
    """Every one of MobileNet's variables is bound: serve gives what TensorFlow gave."""
    (case,) = zoo.cases("keras_mobilenet")
    model = fresh("keras_mobilenet")
    (x,) = case.inputs.values()
    (expected,) = case.outputs.values()
    assert_same(model.root.serve(x), expected, "serve")
    assert len(model.root.variables._children) > 100


def test_keras_layer_variables_and_serve(zoo: Zoo, fresh) -> None:
    tf = zoo.tf_calls("keras_dense")
    model = fresh("keras_dense")
    root = model.root
    assert_same(root.serve(tf["x"]), tf["serve"], "serve")
    variables = root.variables
    assert_same(np.asarray(getattr(variables, "0")), tf["kernel"], "kernel")
    assert_same(getattr(variables, "1").numpy(), tf["bias"], "bias")
    (case,) = zoo.cases("keras_dense")
    out = model.signatures[case.signature](**case.inputs)
    for key, expected in case.outputs.items():
        assert_same(out[key], expected, key)


def test_calls_from_threads(fresh) -> None:
    """The call op is added once, whichever thread gets there first."""
    root = fresh("module_vector_trace").root
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(20):
                assert float(root(np.float32(i))) == float(i)
                assert root(np.array([i], np.float32))[0] == i
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_first_calls_while_a_signature_runs(fresh) -> None:
    """Adding a call to the graph while other threads run the signature and read variables."""
    model = fresh("module_with_signature")
    signature = model.signatures["serving_default"]
    stop = threading.Event()
    errors: list[BaseException] = []

    def run_signature() -> None:
        try:
            while not stop.is_set():
                assert float(signature(x=np.float32(1.0))["output_0"]) in (1.0, 5.0)
                assert float(np.asarray(model.root.v)) in (1.0, 5.0)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run_signature) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        assert_same(model.root(np.ones(3, np.float32)), np.ones(3, np.float32), "vector")
        model.root.mutate(5.0)
        assert float(model.root(2.0)) == 10.0
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors


def test_closed_model(fresh) -> None:
    model = fresh("module_no_signatures")
    root = model.root
    model.close()
    with pytest.raises(smrt.ModelClosedError):
        root(3.0)
    with pytest.raises(smrt.ModelClosedError):
        root.v.numpy()


def test_a_dropped_model_frees_its_tree_without_the_cyclic_gc(zoo: Zoo) -> None:
    # The tree holds the native model (its session): it must go with the last reference to
    # the Model and its objects, not wait for gc.collect().
    model = smrt.load(zoo.path("module_guide"))
    assert model.root.v.numpy() == model.root.v.numpy()
    assert model.root.mutate is model.root.mutate  # one object per node while in use
    tree = weakref.ref(model.root._tree)
    gc.disable()
    try:
        del model
        assert tree() is None
    finally:
        gc.enable()


def test_tf1_model_has_no_root(fresh) -> None:
    model = fresh("two_tag_sets")
    with pytest.raises(smrt.NotFoundError, match="no object graph"):
        model.root  # noqa: B018


def split_object_tree(pb: bytes) -> bytes:
    """Every message the object tree reads split into two occurrences that merge back:
    SavedVariable, SavedConstant, SavedFunction, SavedConcreteFunction, the SaverDef, the
    restore function's OpDef and its Consts' TensorProto (the checkpoint keys in two halves)."""
    pb = split_everything(pb)
    for kind in (6, 7, 9):  # SavedObject.function / variable / constant
        pb = edit(pb, (META, 7, 1, kind), halves)
    pb = edit(pb, (META, 7, 2, 2), halves)  # concrete_functions entries' SavedConcreteFunction
    pb = edit(pb, (META, 3), halves)  # saver_def
    pb = edit(pb, (*FUNCTIONS, FUNCTION_NODE, ATTR, 2, 8), halves)  # AttrValue.tensor
    return edit(pb, (*FUNCTIONS, 1), halves)  # FunctionDef.signature: input_arg in two


def test_merged_messages_give_the_same_tree(zoo: Zoo, tmp_path: Path) -> None:
    path = variant(zoo, "nested_modules", split_object_tree, tmp_path)
    with smrt.load(path) as changed, smrt.load(zoo.path("nested_modules")) as original:
        assert changed._native.object_tree() == original._native.object_tree()
        tf = zoo.tf_calls("nested_modules")
        assert_same(changed.root.inner.f([1.0, 2.0]), tf["f"], "f")
        assert_same(changed.root.offset([1.0, 2.0]), tf["offset"], "offset")
        changed.root.bump()
        assert_same(np.asarray(changed.root.v), tf["v"], "v")


def test_unbound_variable_is_a_typed_error(zoo: Zoo, tmp_path: Path) -> None:
    """A variable whose checkpoint key the restore op does not assign (here: the root's child
    renamed in the object graph only) is never guessed at: calls that need it say so."""

    def rename_v(pb: bytes) -> bytes:
        def rename(child: bytes) -> list[bytes]:  # ObjectReference{node_id = 1, local_name = 2}
            parts = [(n, w, b"u" if (n, v) == (2, b"v") else v) for n, w, v in fields(child)]
            return [join(parts)]

        return edit(pb, (META, 7, 1, 1), rename)

    path = variant(zoo, "module_guide", rename_v, tmp_path)
    with smrt.load(path) as model:
        with pytest.raises(UnimplementedError, match=r"'u'.*does not tie to a graph variable"):
            model.root(3.0)
        with pytest.raises(UnimplementedError, match="does not tie to a graph variable"):
            model.root.u.numpy()


def test_python_values_convert_as_signature_inputs_do(fresh) -> None:
    root = fresh("nested_modules").root
    a = np.array([1.0, 2.0], np.float32)
    with pytest.raises(smrt.InputTypeError, match="range"):
        root.combine({"a": a, "b": (3.0, 2**40)})  # an int kind, but not an int32 value
    assert_same(root.combine({"a": [1, 2], "b": (True, 1)})[0], np.array([2.0, 3.0], np.float32),
                "ints and bools to float32")
    with pytest.raises(NoMatchingFunctionError):
        root.combine({"a": ["x"], "b": (1.0, 1)})


def test_a_traced_resource_input_is_no_match_not_an_error() -> None:
    # Older SavedModels record a variable argument as a resource spec: no caller value fits
    # it, so dispatch goes on to the next concrete function instead of raising.
    from smrt import objects
    from smrt.saved_model import DTypeValue, ShapeValue, TensorSpecValue

    spec = TensorSpecValue("v", ShapeValue(()), DTypeValue("resource"))
    with pytest.raises(objects._NoMatch):
        objects._fits(1.0, spec)


def test_keras_functions_and_signatures_share_state(zoo: Zoo, fresh) -> None:
    """Keras saves each variable twice (``variables`` and ``_all_variables``) and its graph's
    signatures use the second copy's handles, while the functions' captures name the first:
    smrt binds captures to what the graph's own calls pass, so there is one state."""
    tf = zoo.tf_calls("keras_stateful")
    model = fresh("keras_stateful")
    root, x = model.root, tf["x"]
    assert_same(root.serve(x), tf["serve"], "serve")
    root.set_bias([10.0, 20.0])  # a function writes...
    out = model.signatures["serve"](inputs=x)  # ...and the signature sees it
    assert_same(out["output_0"], tf["signature_after_function_write/output_0"], "signature")
    model.signatures["set_bias"](bias=np.array([1.0, 2.0], np.float32))  # and the other way
    assert_same(root.serve(x), tf["function_after_signature_write"], "function after write")
    # Both saved copies of a variable read the one state.
    for copies in (root.variables, root._all_variables):
        assert_same(np.asarray(getattr(copies, "0")), tf["kernel"], "kernel")
        assert_same(getattr(copies, "1").numpy(), np.array([1.0, 2.0], np.float32), "bias")


def test_functions_capturing_lookup_tables_and_assets(zoo: Zoo, fresh) -> None:
    """Tables initialized from a vocabulary file (an asset) and from tensors, as the loaded
    session's init op left them; an asset captured by a function is its file in the model's
    assets/ directory (the file it was saved from is gone)."""
    tf = zoo.tf_calls("lookup_tables")
    model = fresh("lookup_tables")
    root = model.root
    keys = np.array([b"b", b"z", b"a"], dtype=object)
    assert_same(root.look(keys), tf["look"], "StaticHashTable from a file")
    assert_same(root.vocab_ids(["b", "z", "a"]), tf["vocab_ids"], "StaticVocabularyTable")
    assert_same(root.pair(["y", "q"]), tf["pair"], "StaticHashTable from tensors")
    text = root.read_vocabulary().item()
    assert np.frombuffer(text, np.uint8).tolist() == tf["read_vocabulary"].tolist()
    assert Path(model.path, "assets", "vocab.txt").read_bytes() == text
    (case,) = zoo.cases("lookup_tables")  # the signature uses the same table
    out = model.signatures["look"](**case.inputs)
    assert_same(out["output_0"], case.outputs["output_0"], "signature")
    assert root.vocabulary.asset_path == str(Path(model.path, "assets", "vocab.txt"))



def _renamed_asset(zoo: Zoo, tmp_path: Path, name: str) -> Path:
    """lookup_tables with its AssetFileDefs' filename "vocab.txt" replaced by `name` (as long)."""
    model = tmp_path / "lookup_tables"
    shutil.copytree(zoo.path("lookup_tables"), model)
    pb = (model / "saved_model.pb").read_bytes()
    old = b"\x12\x09vocab.txt"  # AssetFileDef{filename = 2}: the table's asset and the Asset
    assert pb.count(old) == 2
    assert len(name) == 9
    (model / "saved_model.pb").write_bytes(pb.replace(old, b"\x12\x09" + name.encode()))
    return model


def test_an_absolute_asset_name_stays_inside_assets(zoo: Zoo, tmp_path: Path) -> None:
    """TensorFlow joins an asset's name to assets/ (a leading "/" does not escape it); so do
    the functions that capture it."""
    model_dir = _renamed_asset(zoo, tmp_path, "/ocab.txt")
    (model_dir / "assets" / "vocab.txt").rename(model_dir / "assets" / "ocab.txt")
    with smrt.load(model_dir) as model:
        text = model.root.read_vocabulary().item()
        assert text == (model_dir / "assets" / "ocab.txt").read_bytes()
        assert model.root.vocabulary.asset_path == str(model_dir / "assets" / "ocab.txt")


def test_an_asset_name_leaving_assets_is_refused(zoo: Zoo, tmp_path: Path) -> None:
    model_dir = _renamed_asset(zoo, tmp_path, "../ab.txt")
    shutil.copy(model_dir / "assets" / "vocab.txt", model_dir / "ab.txt")  # TensorFlow's own init
    with smrt.load(model_dir) as model, pytest.raises(
            smrt.DataLossError, match=r"asset '\.\./ab\.txt', which names a file outside"):
        model.root.read_vocabulary()


def test_a_deep_chain_of_objects_stays_linear() -> None:
    """A crafted object graph that is one chain 100000 deep: each node's path is spelled out
    only when asked for (all of them would be 10^10 bytes)."""
    from smrt import objects

    depth = 100_000
    nodes = [{"kind": "user_object", "children": [("n", i + 1)] if i < depth else []}
             for i in range(depth + 1)]
    tree = objects._Tree(None, (nodes, {}), "")  # type: ignore[arg-type]
    assert tree.path(depth) == "root" + ".n" * depth
    assert tree.path(depth + 5) == f"object {depth + 5}"


def test_asset_messages_merge(zoo: Zoo, tmp_path: Path) -> None:
    """A SavedAsset that occurs twice merges (its last asset_file_def_index wins), and
    asset_file_def entries are a repeated field: each occurrence is one more asset."""

    def repeat_assets(pb: bytes) -> bytes:  # SavedObject.asset = 5: a wrong index first
        return edit(pb, (META, 7, 1, 5), lambda asset: [join([(1, 0, varint(99))]), asset])

    path = variant(zoo, "lookup_tables", repeat_assets, tmp_path)
    with smrt.load(path) as model:
        text = model.root.read_vocabulary().item()
        assert text == Path(path, "assets", "vocab.txt").read_bytes()
