# zbot on an NVIDIA GPU. Build: docker build -t zbot .   Run: docker compose up -d (see README, "Deploy with Docker").
# Python's slim image, a C compiler, and torch from PyTorch's own index. Not the pytorch/pytorch runtime
# image: it has no C compiler, and torch.compile's Triton kernels build a small C launcher at first use
# (pytorch/pytorch#116696). Its torch (2.9.1) was also not the one the README's figures were measured with.
FROM python:3.11-slim-bookworm

# The torch the README's figures and the saved image blocks (which need 2.11 or later) were measured with:
# 2.11.0+cu130. CUDA 13.0 needs an NVIDIA driver 580 or later; with an older one (570+), build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 -t zbot .
ARG TORCH_VERSION=2.11.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cu130

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CC=gcc \
    MODELSCOPE_CACHE=/models \
    HF_HOME=/models/huggingface \
    ZBOT_COMPILE_CACHE=/models/torch-compile \
    ZBOT_DATABASE=/data/zbot.sqlite3 \
    ZBOT_HTTP_HOST=0.0.0.0 \
    ZBOT_HTTP_PORT=8080

# gcc and the C library's headers for Triton (this image already has Python's headers); nothing else.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# torch first, in a layer of its own (~3 GB with its CUDA libraries), then pinned by a constraint so that
# installing zbot's other dependencies can't swap it for another build from the default index.
RUN pip install --index-url "$TORCH_INDEX" "torch==$TORCH_VERSION" \
    && echo "torch==$TORCH_VERSION" > /etc/zbot-torch-constraint.txt
ENV PIP_CONSTRAINT=/etc/zbot-torch-constraint.txt

# The same install step CI exercises (pip install -e .). The dependencies go in a layer of their own,
# installed against an empty package, so that a change to the code doesn't download them again.
COPY pyproject.toml README.md LICENSE ./
# pyproject.toml lists each layer's package and maps migrations/ into the wheel: all must exist (empty) here.
RUN for package in zbot zbot/core zbot/engine zbot/bot zbot/bot/cogs zbot/http zbot/cli; do \
        mkdir -p "$package" && touch "$package/__init__.py"; done \
    && mkdir migrations \
    && pip install -e . \
    && useradd --create-home --uid 10001 --user-group zbot \
    && mkdir -p /models /data /backups \
    && chown 10001:10001 /models /data /backups

COPY migrations ./migrations
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
