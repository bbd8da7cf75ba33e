"""``smrt serve``: TensorFlow Serving's REST API for SavedModels, on smrt's runtime.

Clients written for TF Serving keep working::

    requests.post("http://localhost:8501/v1/models/mobilenet:predict",
                  json={"instances": x.tolist()})

Start it with ``smrt serve --model_name NAME --model_base_path BASE`` (BASE holds numbered
version directories) or from Python with :class:`ModelServer`. Needs the ``serve`` extra
(``pip install smrt[serve]``: aiohttp and orjson).
"""

from __future__ import annotations

from .config import BatchingOptions, ModelConfig, VersionPolicy
from .server import ModelServer, ServerOptions

__all__ = ["BatchingOptions", "ModelConfig", "ModelServer", "ServerOptions", "VersionPolicy"]
