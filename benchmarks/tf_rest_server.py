"""The baseline for ``smrt serve``: a FastAPI app on uvicorn calling TensorFlow's Python API.

    python benchmarks/tf_rest_server.py --model_name m --model_dir DIR --port 8502

What a Python team writes to serve a SavedModel without TF Serving: the same URL and JSON
as TF Serving's predict (row format, one input, one output), ``tf.saved_model.load``, the
signature run in the thread pool so requests overlap, NumPy for the JSON conversions.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool


def make_app(name: str, model_dir: str) -> FastAPI:
    loaded = tf.saved_model.load(model_dir)
    app = FastAPI()

    @app.post(f"/v1/models/{name}:predict")
    async def predict(request: Request) -> JSONResponse:
        payload = await request.json()
        signature = loaded.signatures[payload.get("signature_name", "serving_default")]
        (key, spec), = signature.structured_input_signature[1].items()
        x = tf.constant(np.asarray(payload["instances"], dtype=spec.dtype.as_numpy_dtype))
        outputs = await run_in_threadpool(signature, **{key: x})
        (output,) = outputs.values()
        return JSONResponse({"predictions": output.numpy().tolist()})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = make_app(args.model_name, args.model_dir)
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")


if __name__ == "__main__":
    main()
