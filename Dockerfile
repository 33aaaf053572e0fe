# zbot on an NVIDIA GPU. Build: docker build -t zbot .   Run: docker compose up -d (see README, "Deploy with Docker").
# The base image brings Python and the CUDA build of torch, inside pyproject's range (torch>=2.9,<2.15),
# so pip keeps it and installs only the rest.
FROM pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MODELSCOPE_CACHE=/models \
    HF_HOME=/models/huggingface \
    ZBOT_COMPILE_CACHE=/models/torch-compile \
    ZBOT_DATABASE=/data/zbot.sqlite3 \
    ZBOT_HTTP_HOST=0.0.0.0 \
    ZBOT_HTTP_PORT=8080

WORKDIR /app

# The same install step CI exercises (pip install -e .). The dependencies go in a layer of their own,
# installed against an empty package, so that a change to the code doesn't download them again.
COPY pyproject.toml README.md LICENSE ./
RUN mkdir zbot && touch zbot/__init__.py \
    && pip install -e . \
    && useradd --create-home --uid 10001 --user-group zbot \
    && mkdir -p /models /data \
    && chown 10001:10001 /models /data

COPY zbot ./zbot

# Not root. Named volumes take these folders' owner (10001); a host folder needs `chown 10001` first.
USER 10001:10001
VOLUME ["/models", "/data"]
EXPOSE 8080

# Healthy once the model is loaded and Discord is connected (urlopen raises on 503: exit 1); the first
# start downloads ~20 GB of weights. python, not curl: the base image has no curl.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15m --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ZBOT_HTTP_PORT', '8080'), timeout=5)"]

CMD ["zbot", "run"]
