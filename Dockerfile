# zbot on an NVIDIA GPU. Build: docker build -t zbot .   Run: see README ("Deploy with Docker").
FROM pytorch/pytorch:2.9.1-cuda12.8-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MODELSCOPE_CACHE=/models \
    ZBOT_DATABASE=/data/zbot.sqlite3

WORKDIR /app
# The same install step CI exercises (pip install -e .), on the CUDA torch the base image brings.
COPY pyproject.toml README.md ./
COPY zbot ./zbot
COPY migrations ./migrations
RUN pip install -e . \
    && useradd --create-home --uid 1000 zbot \
    && mkdir -p /models /data \
    && chown zbot:zbot /models /data

USER zbot
VOLUME ["/models", "/data"]
CMD ["zbot", "run"]
