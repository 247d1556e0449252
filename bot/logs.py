"""Logging set-up: discord.py's colourful handler style, or one JSON object a line
(`LOG_FORMAT=json`, with the interaction and job ids of bot.logcontext), and secrets kept out
of records either way."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import discord

from bot.config import Settings
from bot.logcontext import log_context

# Anything shaped like a Discord bot token or a Google API key is masked in every record,
# in case a library logs a URL or header we did not expect.
_SECRET_PATTERNS = (
    re.compile(r"[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,38}"),
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    # The bot's own API tokens (bot.services.tokens).
    re.compile(r"nbt_[A-Za-z0-9_-]{20,}"),
)


class RedactSecrets(logging.Filter):
    """Mask token- and key-shaped strings in log messages, exception text and tracebacks."""

    _formatter = logging.Formatter()

    def __init__(self, extra_secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra = tuple(s for s in extra_secrets if s and len(s) >= 6)

    def redact(self, text: str) -> str:
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub("[redacted]", text)
        for secret in self.extra:
            text = text.replace(secret, "[redacted]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        # An exception's text (its message, its traceback, the frames' source lines) can carry
        # a secret too, e.g. a URL with a key. Formatters use `exc_text` when it is set, so the
        # redacted rendering is what every handler prints.
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """The configured secrets, to mask wherever they might show up in a log line."""
    candidates = (
        settings.discord_token,
        settings.gemini_api_key,
        settings.s3_secret_access_key,
        settings.discord_client_secret,
        settings.web_session_secret,
        settings.metrics_token,
    )
    found = [s.get_secret_value() for s in candidates if s is not None]
    url = settings.postgres_url
    if url:
        password = urlsplit(url).password
        found += [password] if password else []
    return tuple(found)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the ids of the
    log context (interaction_id, command, job_id...) and the exception, if any. Secrets are
    masked before it runs (RedactSecrets filters the record on the handler)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **log_context(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def setup_logging(
    level: str = "INFO", *, secrets: tuple[str, ...] = (), log_format: str = "text"
) -> None:
    """Root logging at `level`, in discord.py's style or as JSON lines (`log_format`), with
    secret redaction on every handler."""
    formatter = JsonFormatter() if log_format == "json" else discord.utils.MISSING
    discord.utils.setup_logging(
        level=getattr(logging, level.upper(), logging.INFO), root=True, formatter=formatter
    )
    redactor = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
