"""TF Serving's gRPC API for ``smrt serve`` (needs grpcio): :mod:`.server` serves it,
:mod:`.messages` builds its replies."""
