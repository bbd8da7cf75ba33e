"""A real SavedModel round trip: export MobileNet with TensorFlow, serve it with smrt.

1. In a child process, TensorFlow builds a Keras MobileNet (random weights: nothing is
   downloaded), exports it with ``model.export`` (Keras 3's SavedModel export; a Keras 3
   model written by ``tf.saved_model.save`` does not restore its variables in any C API or
   C++ loader, TF Serving's included), and records its own prediction for one image.
2. This process, which never imports TensorFlow, inspects the SavedModel, loads it with smrt,
   runs the same image and checks that the answers agree.

Usage: ``python examples/roundtrip.py [WORKDIR]`` (default: a fresh temporary directory).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

import smrt

EXPORT = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    export_dir, image_file = sys.argv[1], sys.argv[2]
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
""")


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="smrt-roundtrip-"))
    export_dir, reference = work / "mobilenet" / "1", work / "reference.npz"
    print(f"1. exporting MobileNet with TensorFlow to {export_dir} ...", flush=True)
    subprocess.run([sys.executable, "-c", EXPORT, str(export_dir), str(reference)], check=True,
                   stderr=subprocess.DEVNULL)

    print("2. serving it with smrt")
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
    print(f"   top-5 classes {top5.tolist()} match TensorFlow's; round trip OK")
    assert "tensorflow" not in sys.modules


if __name__ == "__main__":
    main()
