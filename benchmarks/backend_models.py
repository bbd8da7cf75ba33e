"""Builds run_backends.py's models: SavedModels of Keras' MobileNet (alpha 1.0) and ResNet50,
with random weights (``weights=None``: nothing is downloaded), each next to its ONNX
conversion by tf2onnx (``<dir>.onnx``) for ONNX Runtime.

    python benchmarks/backend_models.py OUTDIR [NAME ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODELS = {"mobilenet": "MobileNet", "resnet50": "ResNet50"}
INPUT_SHAPE = (224, 224, 3)
OPSET = 17


def build(outdir: Path, name: str) -> None:
    import keras

    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, MODELS[name])(weights=None, input_shape=INPUT_SHAPE)
    path = outdir / name
    model.export(str(path), verbose=False)
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(path),
                    "--output", f"{path}.onnx", "--opset", str(OPSET)],
                   check=True, capture_output=True)
    (outdir / f"{name}.done").touch()


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    for name in argv[1:] or list(MODELS):
        build(outdir, name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
