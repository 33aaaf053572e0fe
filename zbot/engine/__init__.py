"""The engine: the only place that imports torch and diffusers (the pipeline, compiling, the safety
checker, the tiny test model, Ray's render workers). It sees only the core's plain types and config."""
