"""The HTTP and WebSocket face of omniroute: the JSON API, and `omniroute serve`.

Importing this package costs nothing: Starlette and uvicorn are imported by the modules
that need them (`omniroute.web.asgi`, `omniroute.web.serve`), so `omniroute check` and the
router never pay for them.
"""
