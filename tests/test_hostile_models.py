"""Hostile saved_model.pb files never fool, crash or balloon smrt's reader.

Every reader follows protobuf's merge rules, as TensorFlow's parser does: a file whose messages
are split into several occurrences (which TensorFlow merges back and loads unchanged) reads
exactly as the original. The functions listing stays linear in the file's size.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import smrt
from smrt.cli import main

from .conftest import Zoo, assert_same
from .protowire import edit, field, fields, halves, join, varint

# SavedModel.meta_graphs = 2; MetaGraphDef{meta_info_def = 1, graph_def = 2, signature_def = 5,
# object_graph_def = 7}; GraphDef{node = 1, library = 2 {function = 1 FunctionDef{signature =
# 1, node_def = 3}}}; NodeDef.attr = 5 {value = 2 AttrValue{list = 1, func = 10}};
# SignatureDef.inputs = 1 {value = 2 TensorInfo{tensor_shape = 3}}.
META, GRAPH, LIBRARY, FUNCTION, FUNCTION_NODE, NODE, ATTR = 2, 2, 2, 1, 3, 1, 5
META_GRAPH = (META,)
GRAPH_DEF = (META, GRAPH)
FUNCTIONS = (META, GRAPH, LIBRARY, FUNCTION)


def _split_to_end(number: int) -> Callable[[bytes], list[bytes]]:
    """A message's field `number` split in two occurrences, the second one moved to the end."""

    def change(message: bytes) -> list[bytes]:
        kept, moved = [], []
        for n, w, v in fields(message):
            if n == number and w == 2:
                first, second = halves(v)
                kept.append((n, w, first))
                moved.append((n, w, second))
            else:
                kept.append((n, w, v))
        return [join(kept + moved)]

    return change


def append_empty_graph_def(pb: bytes) -> bytes:
    """The issue's attack: `12 00` (an empty second graph_def) after each MetaGraphDef."""
    return edit(pb, META_GRAPH, lambda meta: [meta + field(GRAPH, b"")])


def _empty_second_func(attr_value: bytes) -> list[bytes]:
    is_func = any(n == 10 for n, _, _ in fields(attr_value))
    return [attr_value + field(10, b"") if is_func else attr_value]


def empty_op_defs_and_library(pb: bytes) -> bytes:
    """An empty second OpDef in every FunctionDef, an empty second library in the graph, and
    an empty second NameAttrList in every function-valued attr (tf.cond's branches...)."""
    pb = edit(pb, FUNCTIONS, lambda function: [function + field(1, b"")])
    for node in ((*GRAPH_DEF, NODE), (*FUNCTIONS, FUNCTION_NODE)):
        pb = edit(pb, (*node, ATTR, 2), _empty_second_func)
    return edit(pb, GRAPH_DEF, lambda graph: [graph + field(LIBRARY, b"")])


def split_everything(pb: bytes) -> bytes:
    """Each singular message smrt reads split into two occurrences that merge back."""
    for number in (1, GRAPH, 7):  # meta_info_def, graph_def, object_graph_def
        pb = edit(pb, META_GRAPH, _split_to_end(number))
    pb = edit(pb, FUNCTIONS, _split_to_end(1))  # FunctionDef.signature: the name in one half
    for node in ((*GRAPH_DEF, NODE), (*FUNCTIONS, FUNCTION_NODE)):
        pb = edit(pb, (*node, ATTR, 2, 10), halves)  # AttrValue.func: name | attrs
        pb = edit(pb, (*node, ATTR, 2, 1), halves)  # AttrValue.list
        pb = edit(pb, (*node, ATTR), _split_to_end(2))  # a map entry's value, twice
    pb = edit(pb, (META, 5), _split_to_end(2))  # signature_def entries' values
    return edit(pb, (META, 5, 2, 1, 2, 3), halves)  # TensorInfo.tensor_shape


def _tagged(number: int, wire: int) -> bytes:
    """Field `number` with wire type `wire` (0 varint, 1 fixed64, 5 fixed32) and a zero value."""
    return varint(number << 3 | wire) + {0: b"\x07", 1: bytes(8), 5: bytes(4)}[wire]


def _append(*extra: tuple[int, int]) -> Callable[[bytes], list[bytes]]:
    return lambda message: [message + b"".join(_tagged(n, w) for n, w in extra)]


def other_wire_types(pb: bytes) -> bytes:
    """Known fields smrt reads, appended with another wire type than their declared type's
    (messages and strings as numbers, numbers as fixed-width ones): protobuf parses each as
    an unknown field, so the model reads and runs as before."""
    # Members of oneofs too, which must stay as they were: TensorInfo's encoding (name = 1,
    # coo_sparse = 4), AttrValue's value, SavedObject's kind, StructuredValue's kind.
    pb = edit(pb, (META, 5, 2, 1, 2), _append((1, 0), (2, 5), (3, 1), (4, 0)))  # TensorInfo
    pb = edit(pb, (META, 5, 2), _append((1, 5), (2, 0), (3, 0)))  # SignatureDef
    pb = edit(pb, (META, 5), _append((1, 0), (2, 1)))  # its map entry
    pb = edit(pb, (META, 1), _append((4, 0)))  # MetaInfoDef.tags
    for node in ((*GRAPH_DEF, NODE), (*FUNCTIONS, FUNCTION_NODE)):
        pb = edit(pb, (*node, ATTR, 2), _append((1, 0), (10, 5)))  # AttrValue.list, .func
        pb = edit(pb, node, _append((1, 0), (2, 5), (3, 1), (5, 0)))  # NodeDef
    pb = edit(pb, (*FUNCTIONS, 1), _append((1, 0)))  # OpDef.name
    pb = edit(pb, FUNCTIONS, _append((1, 0), (3, 5)))  # FunctionDef
    pb = edit(pb, (*GRAPH_DEF, LIBRARY), _append((1, 0), (2, 1)))  # FunctionDefLibrary
    pb = edit(pb, GRAPH_DEF, _append((NODE, 0), (LIBRARY, 5)))
    pb = edit(pb, (META, 7, 1, 6, 2, 1), _append((13, 0), (51, 5)))  # a fullargspec
    pb = edit(pb, (META, 7, 2, 2, 3), _append((11, 0), (12, 5), (52, 0)))  # an input signature
    pb = edit(pb, (META, 7, 1), _append((1, 5), (4, 0), (6, 1)))  # SavedObject
    pb = edit(pb, (META, 7), _append((1, 0), (2, 5)))  # SavedObjectGraph
    pb = edit(pb, META_GRAPH, _append((1, 0), (GRAPH, 5), (3, 1), (5, 0), (7, 0)))
    return pb + _tagged(META, 0)


VARIANTS = {
    "empty_graph_def": append_empty_graph_def,
    "empty_op_defs": empty_op_defs_and_library,
    "split": split_everything,
    "other_wire_types": other_wire_types,
}


def variant(zoo: Zoo, name: str, change: Callable[[bytes], bytes], root: Path) -> str:
    """A copy of zoo model `name` with its saved_model.pb changed."""
    target = root / name
    shutil.copytree(zoo.path(name), target)
    pb = target / "saved_model.pb"
    changed = change(pb.read_bytes())
    assert changed != pb.read_bytes()
    pb.write_bytes(changed)
    return str(target)


def cli_output(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.mark.parametrize("how", VARIANTS)
@pytest.mark.parametrize("name", ["add_one", "hidden_file_reads", "control_flow", "stateful"])
def test_merged_messages_read_as_the_original(zoo: Zoo, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str],
                                              name: str, how: str) -> None:
    path = variant(zoo, name, VARIANTS[how], tmp_path)
    original = smrt.inspect(zoo.path(name), ops=True, functions=True)
    changed = smrt.inspect(path, ops=True, functions=True)
    assert changed.meta_graphs == original.meta_graphs
    (meta,) = changed.meta_graphs
    assert meta.ops
    assert meta.reachable_ops
    assert meta.object_graph is not None
    assert meta.object_graph.loadable
    for argv in (["scan", "--strict"], ["show", "--all"], ["show", "--tag_set", "serve",
                                                          "--list_ops"]):
        assert cli_output(capsys, argv[0], "--dir", path, *argv[1:]) == \
            cli_output(capsys, argv[0], "--dir", zoo.path(name), *argv[1:]), argv


@pytest.mark.parametrize("how", VARIANTS)
def test_tensorflow_loads_the_merged_messages_unchanged(zoo: Zoo, tmp_path: Path,
                                                        how: str) -> None:
    """TensorFlow merges the occurrences as protobuf requires: the model runs as before."""
    for name in ("add_one", "hidden_file_reads"):
        path = variant(zoo, name, VARIANTS[how], tmp_path / name)
        with smrt.load(path) as model:
            for case in zoo.cases(name):
                outputs = model.signatures[case.signature](**case.inputs)
                for key, expected in case.outputs.items():
                    assert_same(outputs[key], expected, f"{name} {how} {key}")


def test_the_empty_graph_def_attack_is_flagged(zoo: Zoo, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = variant(zoo, "hidden_file_reads", append_empty_graph_def, tmp_path)
    code, out = cli_output(capsys, "scan", "--dir", path)
    assert code == 1
    assert "{'ReadFile'}" in out
    with pytest.raises(smrt.OpPolicyError, match="ReadFile"):
        smrt.load(path, op_policy="default")


# --- the functions listing stays linear in the file's size ----------------------------------


def aliased_functions_pb(children: int, listed: int, values: int, name: bytes = b"g") -> bytes:
    """A SavedModel whose root has `children` function children, all the same node, which lists
    one concrete function (`name`; "g" is defined) `listed` times, whose input signature is a
    tuple of `values` Nones: listing the functions naively costs children x listed x values."""
    root = b"".join(field(1, varint(1 << 3) + varint(1)) for _ in range(children))
    function = field(6, b"".join(field(1, name) for _ in range(listed)))  # SavedFunction
    signature = field(52, b"".join(field(1, field(1, b"")) for _ in range(values)))  # tuple
    concrete = field(2, field(1, b"g") + field(2, field(3, signature)))
    object_graph = field(1, root) + field(1, function) + concrete
    meta = field(1, field(4, b"serve")) + field(7, object_graph)
    return field(META, meta)


def write_model(root: Path, pb: bytes) -> str:
    root.mkdir()
    (root / "saved_model.pb").write_bytes(pb)
    return str(root)


def test_small_aliasing_is_listed(tmp_path: Path) -> None:
    path = write_model(tmp_path / "m", aliased_functions_pb(3, 2, 10))
    graph = smrt.inspect(path, functions=True).meta_graph().object_graph
    assert graph is not None
    assert len(graph.functions) == 3
    assert all([c.name for c in f.concrete_functions] == ["g", "g"] for f in graph.functions)
    assert not graph.loadable  # "g" is not in the (absent) function library


BLOW_UP_CHECK = """
import resource, sys, time
import smrt
vm = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmSize:"))) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + 256 * 2**20, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    smrt.inspect(sys.argv[1], ops=True, functions=True)
except smrt.errors.ResourceExhaustedError as e:
    print("refused:", e)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"grown_kb={grown} seconds={time.perf_counter() - start:.3f}")
"""


def test_aliased_functions_do_not_balloon(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """~6 KB that once asked for 500 x 500 x 500 values: refused at once, in bounded memory
    (the child process may not grow its address space by more than 256 MB)."""
    pb = aliased_functions_pb(500, 500, 500)
    assert len(pb) < 7000
    path = write_model(tmp_path / "m", pb)
    result = subprocess.run([sys.executable, "-c", BLOW_UP_CHECK, path], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    refused, usage = result.stdout.strip().split("\n")
    assert refused.startswith("refused: '"), refused
    assert "too large to list" in refused
    assert f"values from {len(pb)} bytes (root children that alias one function" in refused
    grown_kb = int(usage.split()[0].split("=")[1])
    assert grown_kb < 64 * 1024, usage
    assert float(usage.split("=")[-1]) < 5, usage
    # Signatures and ops do not expand: still readable; the CLI says why it stops, in one line.
    assert smrt.inspect(path, ops=True).meta_graph().signatures == {}
    assert main(["show", "--dir", path, "--all"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smrt show: error: ")
    assert "too large to list" in err
    assert err.count("\n") == 1


def test_aliased_missing_functions_count_too(tmp_path: Path) -> None:
    """Listed names that are not there still cost a walk per alias: they are charged too."""
    path = write_model(tmp_path / "m", aliased_functions_pb(2000, 2000, 1, name=b"missing"))
    with pytest.raises(smrt.errors.ResourceExhaustedError, match="too large to list"):
        smrt.inspect(path, functions=True)
    path = write_model(tmp_path / "small", aliased_functions_pb(3, 3, 1, name=b"missing"))
    graph = smrt.inspect(path, functions=True).meta_graph().object_graph
    assert graph is not None
    assert not graph.loadable
