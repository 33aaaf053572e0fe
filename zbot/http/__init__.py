"""The HTTP front end (aiohttp): /v1/images, /healthz, /metrics, the OpenAPI document."""
