# nanobanana-bot: one image for every process of a deployment (SHARD_IDS tells each its shards).
#   docker build -t nanobanana-bot .
#   docker run --env-file .env -v nanobanana-data:/data nanobanana-bot
# See compose.yaml for PostgreSQL and two bot processes, and docs/operations.md.
#
# Everything the bot writes lives in /data (the volume), whatever .env says: the code runs
# from /app, and /app/data is /data, so the relative paths of .env.example (data/bot.db,
# data/objects) and the defaults land there, as do absolute /data/... paths.
# tests/test_image.py assembles this image without Docker and runs the bot in it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
COPY web ./web
COPY migrations ./migrations
# Editable: the code (and migrations/ beside it) runs from /app, owned by root, read-only to
# the bot's user; only /data is the bot's.
RUN pip install -e . \
    && useradd --system --uid 10001 --user-group --home-dir /data --shell /usr/sbin/nologin nanobanana \
    && mkdir -p /data/objects \
    && chown -R nanobanana:nanobanana /data \
    && ln -s /data /app/data

USER nanobanana
VOLUME ["/data"]

# Light: one query that finds this container's bot process with a live lease in the database
# (its heartbeat runs). `python -m bot check` is the thorough one, for people.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-m", "bot", "health"]

# SIGTERM drains: no new jobs, running ones finish within 30 s, the rest are refunded.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "run"]
