"""The core: zbot's use cases over plain values (jobs, limits, the store, the executor, the service).

It knows nothing of Discord, HTTP or torch; tests/test_layers.py holds it to that."""
