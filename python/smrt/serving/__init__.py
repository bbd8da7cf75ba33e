"""``smrt serve``: TensorFlow Serving's REST API for SavedModels, on smrt's runtime.

Clients written for TF Serving keep working::

    requests.post("http://localhost:8501/v1/models/mobilenet:predict",
                  json={"instances": x.tolist()})

Start it with ``smrt serve --model_name NAME --model_base_path BASE`` (BASE holds numbered
version directories) or from Python with :class:`ModelServer`. Needs the ``serve`` extra
(``pip install 'smrt-runtime[serve]'``, :func:`smrt.library.pip_install`: aiohttp and orjson).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.config import BatchingOptions, ModelConfig, ServerOptions, VersionPolicy

if TYPE_CHECKING:
    from .server import ModelServer


def __getattr__(name: str) -> Any:
    # The server needs aiohttp; everything else here (configuration, versions) does not.
    if name == "ModelServer":
        from .server import ModelServer

        return ModelServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BatchingOptions", "ModelConfig", "ModelServer", "ServerOptions", "VersionPolicy"]
