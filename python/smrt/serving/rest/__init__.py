"""TF Serving's REST API (needs aiohttp): :mod:`.app` routes and runs requests,
:mod:`.tensor_json` and :mod:`.replies` turn JSON into tensors and results into JSON,
:mod:`.bodies` reads compressed bodies within bounds."""
