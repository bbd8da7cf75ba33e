"""What serving is whatever the protocol: the model registry and version holds
(:mod:`.registry`, :mod:`.versions`), configuration (:mod:`.config`), batching, warmup, metrics,
errors and their status codes, and running a request on a signature (:mod:`.inference`).
Nothing here knows HTTP or gRPC (aiohttp and grpcio are not imported)."""
