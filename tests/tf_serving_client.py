"""The official TF Serving client (tensorflow-serving-api, on TensorFlow's protos) in its own
process, for the gRPC tests: TensorFlow is never imported into the test process (nor into the
server). :class:`Client` sends snippets of client code; each runs with ``grpc``, ``tf``,
``np``, the ``apis`` modules and ``target`` (the server's ``host:port``) in scope, and sends
back the JSON of what it assigns to ``result``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

_WORKER = r'''
import json, sys, traceback
import grpc, numpy as np, tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
    get_model_status_pb2, inference_pb2, model_pb2, model_service_pb2_grpc, predict_pb2,
    prediction_service_pb2_grpc, regression_pb2)
print("ready", flush=True)
for line in sys.stdin:
    scope = dict(globals(), **json.loads(line)["scope"])
    try:
        exec(json.loads(line)["code"], scope)
        reply = {"result": scope.get("result")}
    except grpc.RpcError as e:
        reply = {"rpc_error": [e.code().name, e.details()]}
    except Exception:
        reply = {"error": traceback.format_exc()}
    print(json.dumps(reply, default=str), flush=True)
'''


class RpcError(Exception):
    """The RPC failed: ``code`` (e.g. "NOT_FOUND") and ``details`` as the client saw them."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code, self.details = code, details


class Client:
    def __init__(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def run(self, code: str, **scope: Any) -> Any:
        """Runs ``code`` in the client process; returns its ``result`` (as JSON), raises
        RpcError for a failed RPC."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps({"code": textwrap.dedent(code), "scope": scope})
                                 + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        if "rpc_error" in reply:
            raise RpcError(*reply["rpc_error"])
        if "error" in reply:
            raise AssertionError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(30)
