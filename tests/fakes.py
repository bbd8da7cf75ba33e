"""Stand-ins for smrt objects in tests that need no TensorFlow model."""

from __future__ import annotations

import numpy as np

from smrt.saved_model import TensorSpec
from smrt.serving.core.errors import BadRequestError


class FakeSignature:
    """Stands in for smrt.Signature: y = 2 * x, counting calls."""

    def __init__(self, batch_outputs: bool = True) -> None:
        self.inputs = {"x": TensorSpec("x", "float32", (None, 2), "x:0")}
        self.outputs = {"y": TensorSpec("y", "float32", (None, 2), "y:0")}
        self.calls: list[int] = []
        self.timeouts: list[float | None] = []
        self.fetches: list[list[str] | None] = []
        self.batch_outputs = batch_outputs
        self.key = "serving_default"

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        x = inputs["x"]
        if np.any(x < 0):
            raise BadRequestError("negative")
        self.calls.append(len(x))
        if not self.batch_outputs:
            return {"y": x.sum().reshape(1)}  # one value whatever the batch
        return {"y": 2 * x}

    def run(self, inputs: dict[str, np.ndarray], timeout: float | None = None,
            fetch: list[str] | None = None) -> dict[str, np.ndarray]:
        self.timeouts.append(timeout)
        self.fetches.append(fetch)
        return self(**inputs)
