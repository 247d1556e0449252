"""`python -m bot [run|migrate|check]`: start the bot, apply migrations, or check the setup."""

from __future__ import annotations

import argparse
import asyncio
import sys

from bot.config import Settings, SettingsError, load_settings
from bot.logs import secrets_of, setup_logging


def main(argv: list[str] | None = None) -> int:
    """Parse the command, load settings (one clear line on error), run it; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "migrate", "check"),
        help="run the bot (default), apply database migrations, or check the configuration",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, secrets=secrets_of(settings))
    if args.command == "migrate":
        return asyncio.run(_migrate(settings))
    if args.command == "check":
        from bot.check import run_checks

        return asyncio.run(run_checks(settings))
    return _run(settings)


async def _migrate(settings: Settings) -> int:
    from bot.app import build_database
    from storage.errors import DatabaseError

    db = build_database(settings)
    try:
        async with db:
            applied = await db.migrate()
    except DatabaseError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return 1
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (up to date)"
    print(f"database {db.description}: applied {names}")
    return 0


def _run(settings: Settings) -> int:
    from bot.app import run_bot

    return run_bot(settings)


if __name__ == "__main__":
    sys.exit(main())
