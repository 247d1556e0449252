"""Refresh the vendored copy of Discord's OpenAPI description that the fake Discord checks
every request against.

    python -m tests.fakes.refresh_discord_spec                 # newest commit on GitHub (main)
    python -m tests.fakes.refresh_discord_spec --ref <sha>     # a given commit, branch or tag
    python -m tests.fakes.refresh_discord_spec --git-dir DIR   # from a local clone or mirror

It writes ``tests/fakes/discord_api_spec/openapi.json`` (``specs/openapi.json`` of
https://github.com/discord/discord-api-spec, byte for byte), the repository's ``LICENSE`` (MIT)
and ``source.json`` (the commit it came from). Run the test suite afterwards: a newer spec may
refuse a request the bot sends, which is then a bug to fix (or, if Discord accepts the form
and the spec lags, an allowance in ``tests/fakes/discord_validation.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

REPOSITORY = "discord/discord-api-spec"
SPEC_PATH = "specs/openapi.json"
HERE = Path(__file__).resolve().parent / "discord_api_spec"


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "nanobanana-bot spec refresh"})
    with urllib.request.urlopen(request, timeout=60) as response:
        data: bytes = response.read()
        return data


def from_github(ref: str) -> tuple[bytes, bytes, str, str]:
    """(spec, licence, commit sha, commit date) of ``ref`` on GitHub."""
    meta = json.loads(_get(f"https://api.github.com/repos/{REPOSITORY}/commits/{ref}"))
    sha, date = meta["sha"], meta["commit"]["committer"]["date"]
    raw = f"https://raw.githubusercontent.com/{REPOSITORY}/{sha}"
    return _get(f"{raw}/{SPEC_PATH}"), _get(f"{raw}/LICENSE"), sha, date


def from_git(git_dir: Path, ref: str) -> tuple[bytes, bytes, str, str]:
    """The same from a local clone or bare mirror of the repository."""

    def git(*args: str) -> bytes:
        return subprocess.run(
            ["git", "--git-dir", str(git_dir), *args], check=True, capture_output=True
        ).stdout

    sha = git("rev-parse", f"{ref}^{{commit}}").decode().strip()
    date = git("show", "-s", "--format=%cI", sha).decode().strip()
    return git("show", f"{sha}:{SPEC_PATH}"), git("show", f"{sha}:LICENSE"), sha, date


def write(spec: bytes, licence: bytes, sha: str, date: str, target: Path = HERE) -> None:
    document = json.loads(spec)
    if not str(document.get("openapi", "")).startswith("3.") or "paths" not in document:
        raise SystemExit("that is not an OpenAPI 3 document; nothing written")
    target.mkdir(parents=True, exist_ok=True)
    source = {
        "repository": f"https://github.com/{REPOSITORY}",
        "path": SPEC_PATH,
        "commit": sha,
        "committed_at": date,
        "refreshed_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "api_version": document.get("info", {}).get("version"),
        "license": "MIT (see LICENSE)",
    }
    for name, data in (
        ("openapi.json", spec),
        ("LICENSE", licence),
        ("source.json", (json.dumps(source, indent=2) + "\n").encode()),
    ):
        tmp = target / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(target / name)
    print(f"discord-api-spec {sha[:12]} ({date}): {len(document['paths'])} paths -> {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="main", help="commit, branch or tag (default: main)")
    parser.add_argument("--git-dir", type=Path, help="read from this clone instead of GitHub")
    args = parser.parse_args(argv)
    if args.git_dir is not None:
        ref = "HEAD" if args.ref == "main" else args.ref
        write(*from_git(args.git_dir, ref))
    else:
        write(*from_github(args.ref))
    return 0


if __name__ == "__main__":
    sys.exit(main())
