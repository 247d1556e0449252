# nanobanana-bot: one image for every process of a deployment (SHARD_IDS tells each its shards).
#   docker build -t nanobanana-bot .
#   docker run --env-file .env -v nanobanana-data:/data nanobanana-bot
# See compose.yaml for PostgreSQL and two bot processes, and README "Running at scale".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DATABASE_PATH=/data/bot.db \
    LOCAL_STORAGE_DIR=/data/objects

WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
COPY storage ./storage
COPY migrations ./migrations
# Editable: the code (and migrations/ beside it) runs from /app, owned by root, read-only to
# the bot's user.
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin nanobanana \
    && mkdir -p /data/objects \
    && chown -R nanobanana:nanobanana /data

USER nanobanana
VOLUME ["/data"]

# Light: one query that finds this container's bot process with a live lease in the database
# (its heartbeat runs). `python -m bot check` is the thorough one, for people.
HEALTHCHECK --interval=30s --timeout=10s --start-period=90s --retries=3 \
    CMD ["python", "-m", "bot", "health"]

# SIGTERM drains: no new jobs, running ones finish within 30 s, the rest are refunded.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot", "run"]
