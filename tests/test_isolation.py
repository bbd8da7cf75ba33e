"""smrt never imports TensorFlow's Python package, and inspect() never loads libtensorflow."""

from __future__ import annotations

from .conftest import Zoo


def test_import_load_call_without_tensorflow_module(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import sys, numpy as np, smrt
model = smrt.load({zoo.path("add_one")!r})
y = model(np.ones((1, 2), np.float32))["y"]
assert (y == 2).all()
print(sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow.")))
""")
    assert out.strip() == "[]"


def test_inspect_does_not_load_libtensorflow(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import smrt
info = smrt.inspect({zoo.path("keras_mobilenet")!r})
assert "serving_default" in info.meta_graph().signatures
maps = open("/proc/self/maps").read()
print(smrt.runtime_info().loaded, "libtensorflow" in maps)
""")
    assert out.split() == ["False", "False"]  # found, not loaded


def test_reuses_library_of_imported_tensorflow(zoo: Zoo, run_python) -> None:
    # Two copies of TensorFlow's op registry in one process abort; smrt must share TF's.
    out = run_python(f"""
import numpy as np
import tensorflow as tf
import smrt
model = smrt.load({zoo.path("add_one")!r})
assert (model(np.ones((1, 2), np.float32))["y"] == 2).all()
tf_model = tf.saved_model.load({zoo.path("add_one")!r})
assert (tf_model.signatures["serving_default"](x=tf.ones((1, 2)))["y"].numpy() == 2).all()
print(smrt.runtime_info().source)
""")
    assert out.strip() == "imported tensorflow"


def test_tensorflow_imported_after_smrt_shares_the_library(zoo: Zoo, run_python) -> None:
    out = run_python(f"""
import numpy as np, smrt
model = smrt.load({zoo.path("add_one")!r})
import tensorflow as tf
tf_model = tf.saved_model.load({zoo.path("add_one")!r})
assert (tf_model.signatures["serving_default"](x=tf.ones((1, 2)))["y"].numpy() == 2).all()
assert (model(np.ones((1, 2), np.float32))["y"] == 2).all()
maps = {{line.split()[-1] for line in open("/proc/self/maps") if "libtensorflow_cc" in line}}
print(len(maps))
""")
    assert out.strip() == "1"


def test_serving_configuration_imports_without_the_serve_extra(run_python) -> None:
    # aiohttp and orjson blocked: smrt.serving's configuration and the CLI still import; only
    # the server itself needs the extra, and `smrt serve` says how to get it.
    out = run_python("""
import sys
sys.modules["aiohttp"] = sys.modules["orjson"] = None
import smrt.serving, smrt.cli.serve
from smrt.serving import ServerOptions, ModelConfig
print(ServerOptions().max_request_bytes == 64 << 20, ModelConfig.__name__)
try:
    smrt.serving.ModelServer
except ImportError:
    print("server needs aiohttp")
from smrt.cli import main
print(main(["serve", "--model_base_path", "/nonexistent"]))
""")
    assert out.split("\n")[:3] == ["True ModelConfig", "server needs aiohttp", "1"]
