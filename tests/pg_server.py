"""A throwaway PostgreSQL server for the test suite, the reliability runs and the benchmarks.

    server = PostgresServer.start()         # initdb + pg_ctl start in a fresh temp folder
    url = server.create_database("t1")      # postgresql://postgres@/t1?host=<socket dir>...
    server.stop()                           # and the folder is gone

The server listens on a unix socket inside its own folder only (no TCP port, nothing shared
with other test runs on the machine), with durability off (fsync, synchronous commit): it lives
for one test session. PostgreSQL refuses to run as root, so when the tests run as root (CI
here does) the cluster is made and started as the `postgres` user (PG_USER), in a folder that
user owns. The binaries are found in PG_BIN_DIR, /usr/lib/postgresql/<version>/bin, or PATH.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

INSTALL_HINT = (
    "PostgreSQL server binaries not found: install them (Debian/Ubuntu: "
    "apt-get install postgresql-15; or set PG_BIN_DIR to the folder holding initdb)"
)
PORT = 5432


class PostgresUnavailable(RuntimeError):
    """No server binaries here (or no unprivileged user to run them as root)."""


def find_bin_dir() -> Path | None:
    """The folder holding initdb and pg_ctl (newest version first), or None."""
    configured = os.environ.get("PG_BIN_DIR")
    if configured:
        return Path(configured) if (Path(configured) / "initdb").exists() else None
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    """A running throwaway cluster; `stop()` ends it and removes its folder."""

    bin_dir: Path
    folder: Path
    run_as: str | None

    @property
    def socket_dir(self) -> str:
        return str(self.folder)

    def url(self, database: str = "postgres") -> str:
        """A DATABASE_URL for `database` on this server (over its unix socket)."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}&port={PORT}"

    @classmethod
    def start(cls, *, durable: bool = False) -> PostgresServer:
        """Start a new cluster. Tests run with durability off (fsync, synchronous commit);
        `durable` keeps PostgreSQL's defaults (the benchmarks measure what an owner gets)."""
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(INSTALL_HINT)
        run_as = None
        if os.geteuid() == 0:
            run_as = os.environ.get("PG_USER", "postgres")
            try:
                pwd.getpwnam(run_as)
            except KeyError:
                raise PostgresUnavailable(
                    f"PostgreSQL refuses to run as root and there is no user {run_as!r} to run "
                    "it as (set PG_USER to an unprivileged user)"
                ) from None
        folder = Path(tempfile.mkdtemp(prefix="nb-pg-"))
        server = cls(bin_dir, folder, run_as)
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        try:
            server._run(
                "initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust",
                "--no-locale", "-E", "UTF8", "--no-sync",
            )  # fmt: skip
            options = f"-k {folder} -c listen_addresses='' -p {PORT} -c max_connections=300"
            if durable:
                options += " -c shared_buffers=256MB"
            else:
                options += (
                    " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                    " -c shared_buffers=64MB"
                )
            server._run(
                "pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "server.log"),
                "-o", options, "-w", "-t", "60", "start",
            )  # fmt: skip
        except BaseException:
            server.stop()
            raise
        return server

    def _run(self, tool: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bin_dir / tool), *args],
            user=self.run_as,
            cwd=str(self.folder),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr}\n{tail}")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if (self.folder / "data" / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    @property
    def version(self) -> str:
        return self.bin_dir.parent.name

    # Databases ---------------------------------------------------------------------------

    async def admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url("postgres"))

    async def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create `name` (a copy of `template` when given); its URL."""
        conn = await self.admin()
        try:
            clause = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
        finally:
            await conn.close()
        return self.url(name)

    async def drop_database(self, name: str) -> None:
        conn = await self.admin()
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
