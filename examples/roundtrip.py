"""A real SavedModel round trip: export models with TensorFlow, run them with smrt.

1. In a child process, TensorFlow builds a Keras MobileNet (random weights: nothing is
   downloaded), exports it with ``model.export`` (Keras 3's SavedModel export; a Keras 3
   model written by ``tf.saved_model.save`` does not restore its variables in any C API or
   C++ loader, TF Serving's included), and records its own prediction for one image. It also
   saves the TensorFlow SavedModel guide's ``module_with_multiple_signatures``.
2. This process, which never imports TensorFlow, inspects the SavedModels, loads them with
   smrt, runs the same inputs and checks that the answers agree.

Usage: ``python examples/roundtrip.py [WORKDIR]`` (default: /tmp/smrt-example, which the
README's other commands use: ``WORKDIR/mobilenet/1`` and
``WORKDIR/module_with_multiple_signatures``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

import smrt

EXPORT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    export_dir, image_file, module_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.MobileNet(weights=None, alpha=0.5)
    images = np.random.default_rng(0).uniform(-1, 1, (5, 224, 224, 3)).astype(np.float32)
    # Random weights squash the activations to ~0; one batch of BatchNorm statistics
    # (momentum 0) gives the untrained model answers that differ by class.
    norms = [l for l in model.layers if isinstance(l, tf.keras.layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0
    model(images[1:], training=True)
    image = images[:1]
    model.export(export_dir, verbose=False)
    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    (expected,) = served(tf.constant(image)).values()
    np.savez(image_file, image=image, expected=expected.numpy())

    # The guide's custom module, saved with two signatures (as in its "multiple signatures").
    class CustomModule(tf.Module):
        def __init__(self):
            super().__init__()
            self.v = tf.Variable(1.0)

        @tf.function
        def __call__(self, x):
            return x * self.v

        @tf.function(input_signature=[tf.TensorSpec([], tf.float32)])
        def mutate(self, new_v):
            self.v.assign(new_v)

    module = CustomModule()
    call = module.__call__.get_concrete_function(tf.TensorSpec(None, tf.float32))
    tf.saved_model.save(module, module_dir + ".tmp", signatures=call)
    imported = tf.saved_model.load(module_dir + ".tmp")

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
    def parse_string(string_input):
        return imported(tf.strings.to_number(string_input))

    tf.saved_model.save(imported, module_dir, signatures={
        "serving_default": parse_string, "from_float": imported.signatures["serving_default"]})
""")


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/smrt-example")
    export_dir, reference = work / "mobilenet" / "1", work / "reference.npz"
    module_dir = work / "module_with_multiple_signatures"
    print(f"1. exporting MobileNet and the guide's module with TensorFlow to {work} ...",
          flush=True)
    for old in (export_dir, module_dir, Path(f"{module_dir}.tmp")):
        if old.exists():
            shutil.rmtree(old)
    export = subprocess.run([sys.executable, "-c", EXPORT, str(export_dir), str(reference),
                             str(module_dir)], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if export.returncode != 0:  # TensorFlow's start-up chatter is shown only with its error
        sys.exit(f"exporting with TensorFlow failed:\n{export.stderr}")

    print("2. running them with smrt")
    sig_info = smrt.inspect(export_dir).meta_graph(["serve"]).signatures["serving_default"]
    for kind, specs in (("input", sig_info.inputs), ("output", sig_info.outputs)):
        for key, spec in specs.items():
            print(f"   {kind} {key!r}: {spec.dtype} {spec.shape} ({spec.tensor_name})")

    start = time.perf_counter()
    model = smrt.load(export_dir)
    loaded = time.perf_counter()
    data = np.load(reference)
    image = smrt.aligned(data["image"])  # 64-byte aligned: fed to TensorFlow without a copy
    (got,) = model(image).values()
    done = time.perf_counter()
    print(f"   load {1e3 * (loaded - start):.0f} ms, first call {1e3 * (done - loaded):.0f} ms "
          f"({smrt.runtime_info()})")

    np.testing.assert_allclose(got, data["expected"], rtol=1e-4, atol=1e-6)
    top5 = np.argsort(got[0])[::-1][:5]
    assert (top5 == np.argsort(data["expected"][0])[::-1][:5]).all()
    print(f"   top-5 classes {top5.tolist()} match TensorFlow's")

    with smrt.load(module_dir) as module:
        from_string = module.signatures["serving_default"](string_input="3.")
        from_float = module.signatures["from_float"](x=np.float32(3.0))
    assert from_string["output_0"] == from_float["output_0"] == 3.0
    print(f"   {module_dir.name}: serving_default('3.') = from_float(3.) = 3.0; round trip OK")
    assert "tensorflow" not in sys.modules


if __name__ == "__main__":
    main()
