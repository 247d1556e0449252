"""Settings: defaults, parsing, and the one-line error for missing or bad values."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import EconomyScope, Settings, SettingsError, StorageBackend, load_settings
from bot.services.models import load_models

ROOT = Path(__file__).resolve().parents[2]


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings(discord_token="t0ken")
    assert settings.generation_cost == 100 and settings.starter_coins == 300
    assert settings.upload_cost == 0 and settings.max_grant == 1_000_000
    assert settings.max_upload_bytes == 10 * 1024 * 1024
    assert settings.max_concurrent_generations == 4 and settings.max_jobs_per_user == 2
    assert settings.max_prompt_chars == 1000
    assert settings.storage_backend is StorageBackend.LOCAL
    assert settings.database_path == Path("data/bot.db")
    assert settings.nanobanana_model == "auto" and settings.nanobanana_model_profiles is None
    assert settings.nanobanana_thinking == {} and settings.nanobanana_models == []
    assert settings.economy_scope is EconomyScope.GUILD and settings.daily_coins == 50
    assert settings.allowed_guild_ids == [] and settings.docs_url is None


def test_tenancy_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ECONOMY_SCOPE", " Global ")
    monkeypatch.setenv("ALLOWED_GUILD_IDS", "111,222")
    monkeypatch.setenv("DAILY_COINS", "0")
    monkeypatch.setenv("DOCS_URL", "https://example.test/readme/")
    settings = load_settings(discord_token="t")
    assert settings.economy_scope is EconomyScope.GLOBAL
    assert settings.allowed_guild_ids == [111, 222] and settings.daily_coins == 0
    assert settings.docs_url == "https://example.test/readme"


def test_env_example_lists_every_setting() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert {name.upper() for name in Settings.model_fields} <= listed


def test_environment_and_id_lists(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", "abc")
    monkeypatch.setenv("DISCORD_GUILD_IDS", "1, 2 3")
    monkeypatch.setenv("ADMIN_USER_IDS", "42")
    monkeypatch.setenv("GENERATION_COST", "7")
    monkeypatch.setenv("NANOBANANA_BASE_URL", "http://127.0.0.1:9999/")
    settings = Settings()
    assert settings.discord_guild_ids == [1, 2, 3] and settings.admin_user_ids == [42]
    assert settings.generation_cost == 7
    assert settings.nanobanana_base_url == "http://127.0.0.1:9999"
    assert "abc" not in repr(settings)  # secrets are masked in reprs


def test_scale_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://bot:s3cret-pass@db:5432/bot")
    monkeypatch.setenv("SHARD_COUNT", "4")
    monkeypatch.setenv("SHARD_IDS", "2,3")
    settings = load_settings(discord_token="t")
    assert settings.postgres_url == "postgresql://bot:s3cret-pass@db:5432/bot"
    assert (settings.shard_count, settings.shard_ids) == (4, [2, 3])
    assert not settings.runs_shard_zero
    assert "s3cret-pass" not in repr(settings)
    from bot.logs import secrets_of

    assert "s3cret-pass" in secrets_of(settings)  # masked in every log line
    monkeypatch.setenv("SHARD_IDS", "")
    monkeypatch.setenv("DATABASE_URL", "")
    settings = load_settings(discord_token="t")
    assert settings.shard_ids is None and settings.runs_shard_zero
    assert settings.postgres_url is None


def test_dotenv_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-file\nSTARTER_COINS=5\n")
    settings = load_settings()
    assert settings.discord_token.get_secret_value() == "from-file"
    assert settings.starter_coins == 5


def test_r2_endpoint_is_derived(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        discord_token="t", storage_backend="s3", r2_account_id="acc", s3_bucket="b",
        s3_access_key_id="k", s3_secret_access_key="s",
    )  # fmt: skip
    assert settings.s3_endpoint == "https://acc.r2.cloudflarestorage.com"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"discord_token": "  "}, "DISCORD_TOKEN is invalid"),
        ({"discord_token": "t", "generation_cost": -1}, "GENERATION_COST is invalid"),
        ({"discord_token": "t", "max_grant": 0}, "MAX_GRANT is invalid"),
        ({"discord_token": "t", "storage_backend": "ftp"}, "STORAGE_BACKEND is invalid"),
        ({"discord_token": "t", "discord_guild_ids": "abc"}, "DISCORD_GUILD_IDS is invalid"),
        ({"discord_token": "t", "log_level": "LOUD"}, "LOG_LEVEL is invalid"),
        ({"discord_token": "t", "nanobanana_base_url": "ftp://x"}, "NANOBANANA_BASE_URL"),
        ({"discord_token": "t", "storage_backend": "s3"}, "S3_BUCKET"),
        ({"discord_token": "t", "economy_scope": "server"}, "ECONOMY_SCOPE is invalid"),
        ({"discord_token": "t", "allowed_guild_ids": "x,y"}, "ALLOWED_GUILD_IDS is invalid"),
        ({"discord_token": "t", "daily_coins": -1}, "DAILY_COINS is invalid"),
        ({"discord_token": "t", "docs_url": "readme.md"}, "DOCS_URL is invalid"),
        ({"discord_token": "t", "generation_costs": "gemini-2.5-flash-image"},
         "GENERATION_COSTS is invalid: 'gemini-2.5-flash-image' is not model=cost"),
        ({"discord_token": "t", "generation_costs": "gemini-2.5-flash-image=lots"},
         "GENERATION_COSTS is invalid: the cost of gemini-2.5-flash-image must be a whole"),
        ({"discord_token": "t", "generation_costs": "gemini-2.5-flash-image=-5"},
         "must not be negative"),
        ({"discord_token": "t", "max_balance": 2**63}, "MAX_BALANCE is invalid"),
        ({"discord_token": "t", "max_balance": 500}, "MAX_GRANT must not be more than MAX_BALANCE"),
        ({"discord_token": "t", "nanobanana_model": "gemini 3"}, "NANOBANANA_MODEL is invalid"),
        ({"discord_token": "t", "nanobanana_models": "auto"}, "`auto` is for NANOBANANA_MODEL"),
        ({"discord_token": "t", "nanobanana_thinking": "deep"},
         "NANOBANANA_THINKING is invalid: 'deep' is not a thinking level"),
        ({"discord_token": "t", "nanobanana_thinking": "gemini-3-pro-image=ultra"},
         "'ultra' is not a thinking level"),
        ({"discord_token": "t", "job_retry_seconds": 0}, "JOB_RETRY_SECONDS is invalid"),
        ({"discord_token": "t", "database_url": "mysql://x/y"}, "DATABASE_URL is invalid"),
        ({"discord_token": "t", "shard_ids": "0,1"}, "SHARD_IDS needs SHARD_COUNT"),
        ({"discord_token": "t", "shard_count": 2, "shard_ids": "1,2"},
         "SHARD_IDS [2] out of range: shards are 0 to 1"),
        ({"discord_token": "t", "shard_count": 2, "shard_ids": "1,1"}, "names a shard twice"),
        ({"discord_token": "t", "shard_count": 0}, "SHARD_COUNT is invalid"),
        ({"discord_token": "t", "shard_count": 2, "shard_ids": "x"}, "SHARD_IDS is invalid"),
        ({"discord_token": "t", "job_lease_seconds": 0}, "JOB_LEASE_SECONDS is invalid"),
    ],
)  # fmt: skip
def test_bad_settings_give_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as info:
        load_settings(**overrides)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_models_and_costs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NANOBANANA_MODEL", "models/gemini-nano-banana-2.1")
    monkeypatch.setenv("NANOBANANA_MODELS", "gemini-3-pro-image models/gemini-nano-banana-2.1")
    monkeypatch.setenv(
        "GENERATION_COSTS",
        "gemini-3-pro-image=150, gemini-3-pro-image:4K=300;gemini-nano-banana-2.1=90",
    )
    monkeypatch.setenv("NANOBANANA_THINKING", "high, gemini-3.1-flash-image=Minimal")
    settings = load_settings(discord_token="t")
    # The default model is always offered, and offered first; duplicates are dropped.
    assert settings.nanobanana_models == ["gemini-nano-banana-2.1", "gemini-3-pro-image"]
    assert settings.generation_costs == {
        "gemini-3-pro-image": 150,
        "gemini-3-pro-image:4K": 300,
        "gemini-nano-banana-2.1": 90,
    }
    assert settings.nanobanana_thinking == {"*": "high", "gemini-3.1-flash-image": "minimal"}
    # auto is the default, in any case, and an empty line means it too.
    monkeypatch.setenv("NANOBANANA_MODEL", " AUTO ")
    assert load_settings(discord_token="t").nanobanana_model == "auto"
    monkeypatch.setenv("NANOBANANA_MODEL", "")
    assert load_settings(discord_token="t").nanobanana_models == [
        "gemini-3-pro-image",
        "gemini-nano-banana-2.1",
    ]
    assert settings.max_balance == 10**12 and settings.job_retry_seconds == 60
    assert load_settings(discord_token="t").database_busy_timeout_ms == 2000


def _run_cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD", "GEMINI"))}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_without_token_prints_one_line(tmp_path: Path) -> None:
    result = _run_cli(["migrate"], {}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "configuration error: DISCORD_TOKEN is not set"
    assert "Traceback" not in result.stderr


def test_cli_with_bad_value_names_it(tmp_path: Path) -> None:
    result = _run_cli(["run"], {"DISCORD_TOKEN": "x", "MAX_JOBS_PER_USER": "lots"}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: MAX_JOBS_PER_USER is invalid")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_migrate_applies_once(tmp_path: Path) -> None:
    env = {"DISCORD_TOKEN": "x", "DATABASE_PATH": str(tmp_path / "db" / "bot.db")}
    first = _run_cli(["migrate"], env, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_initial, 0002_servers_are_tenants" in first.stdout
    second = _run_cli(["migrate"], env, tmp_path)
    assert "up to date" in second.stdout


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"generation_costs": "gemini-9-image=5"},
         "GENERATION_COSTS names gemini-9-image, which is neither a model of the lineup nor in "
         "NANOBANANA_MODEL/NANOBANANA_MODELS"),
        ({"generation_costs": "gemini-3-pro-image:8K=5"},
         "GENERATION_COSTS gives gemini-3-pro-image a size 8K, but its sizes are: 1K, 2K, 4K"),
        ({"generation_costs": "gemini-2.5-flash-image:1K=5"}, "its sizes are: none"),
        ({"image_prices_usd": "gemini-2.5-flash-image:4K=0.1"},
         "IMAGE_PRICES_USD gives gemini-2.5-flash-image a size 4K, but its sizes are: none"),
        ({"token_prices_usd": "gemini-9-image:input=1"}, "TOKEN_PRICES_USD names gemini-9-image"),
        ({"nanobanana_thinking": "gemini-3-pro-image=high"},
         "NANOBANANA_THINKING: gemini-3-pro-image takes no thinking level, not high"),
        ({"nanobanana_thinking": "gemini-3.1-flash-lite-image=medium"},
         "takes levels minimal, high, not medium"),
        ({"nanobanana_thinking": "gemini-9-image=high"},
         "NANOBANANA_THINKING names gemini-9-image"),
    ],
)  # fmt: skip
def test_model_settings_are_checked_against_the_lineup_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overrides: dict[str, object], expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(discord_token="t", **overrides)
    with pytest.raises(SettingsError) as info:
        load_models(settings)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_model_settings_may_name_models_of_the_lineup_or_of_the_owners_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    profiles = tmp_path / "models.toml"
    profiles.write_text('[[model]]\nid = "proxy-image"\nfamily = "pro"\n', encoding="utf-8")
    settings = load_settings(
        discord_token="t",
        nanobanana_model_profiles=str(profiles),
        generation_costs="gemini-3-pro-image-preview=150,proxy-image:2K=90",
        nanobanana_thinking="high",
    )
    lineup, models = load_models(settings)
    assert lineup.profile("proxy-image").origin == "owner" and lineup.owner_file == str(profiles)
    assert models.auto and models.thinking == {"*": "high"}
    profiles.write_text("[[model]]\nid = 'proxy-image'\nsizes = '4K'\n", encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        load_models(settings)
    assert str(info.value) == (
        f"NANOBANANA_MODEL_PROFILES is invalid: {profiles}: model 1 (proxy-image): sizes must "
        "be a list"
    )
