"""Object stores: local folder and S3 (moto over real HTTP), same behaviour for both."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from storage.objects import (
    InvalidKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    image_key,
    slugify,
    thumbnail_key,
)


@pytest.fixture
async def local_store(tmp_path: Path) -> AsyncIterator[LocalObjectStore]:
    store = LocalObjectStore(tmp_path / "objects")
    await store.open()
    yield store


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    name = "local_store" if request.param == "local" else "s3_store"
    value: ObjectStore = request.getfixturevalue(name)
    return value


async def test_put_get_list_delete(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    await store.put("images/u1/1-a.png", b"aaa", "image/png")
    await store.put("images/u1/2-b.png", b"bbb", "image/png")
    await store.put("images/u2/3-c.png", b"ccc", "image/png")
    assert await store.get("images/u1/2-b.png") == b"bbb"
    assert await store.list("images/u1/") == ["images/u1/1-a.png", "images/u1/2-b.png"]
    assert len(await store.list()) == 3
    assert await store.exists("images/u1/1-a.png")
    await store.delete("images/u1/1-a.png")
    await store.delete("images/u1/1-a.png")  # deleting twice is fine
    assert not await store.exists("images/u1/1-a.png")
    with pytest.raises(ObjectNotFound):
        await store.get("images/u1/1-a.png")


async def test_overwrite_replaces_bytes(store: ObjectStore) -> None:
    await store.put("images/u/k.png", b"one", "image/png")
    await store.put("images/u/k.png", b"two", "image/png")
    assert await store.get("images/u/k.png") == b"two"


@pytest.mark.parametrize(
    "key",
    ["../etc/passwd", "images/../../x", "/abs/path", "images\\u\\x.png", "", "a//b", "a/./b",
     "images/.tmp-x", "a\x00b"],
)  # fmt: skip
async def test_unsafe_keys_are_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x", "image/png")
    with pytest.raises(InvalidKey):
        await store.get(key)


async def test_local_writes_are_atomic_and_leave_no_temp_files(
    local_store: LocalObjectStore,
) -> None:
    await local_store.put("images/u/a.png", b"x" * 100_000, "image/png")
    files = [p.name for p in local_store.root.rglob("*") if p.is_file()]
    assert files == ["a.png"]


async def test_local_has_no_urls(local_store: LocalObjectStore) -> None:
    assert local_store.public_url("images/u/a.png") is None
    with pytest.raises(StorageError, match="cannot sign"):
        await local_store.signed_url("images/u/a.png")


async def test_local_exists_on_names_the_file_system_cannot_hold(
    local_store: LocalObjectStore,
) -> None:
    """A 300-character file name is within the key limit but not the file system's: no such
    object can exist, so the answer is a clean False, not a raw OSError."""
    key = f"images/u/{'a' * 300}.png"
    assert await local_store.exists(key) is False
    assert await local_store.exists(f"images/{'b' * 300}/x.png") is False
    with pytest.raises(StorageError):
        await local_store.put(key, b"x", "image/png")


async def test_local_write_failure_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    store = LocalObjectStore(blocker)
    with pytest.raises(StorageError):
        await store.put("images/u/a.png", b"x", "image/png")


async def test_s3_public_and_signed_urls(s3_store: S3ObjectStore) -> None:
    await s3_store.put("images/u/a b.png", b"\x89PNG-bytes", "image/png")
    assert s3_store.public_url("images/u/a b.png") == "https://cdn.example.test/images/u/a%20b.png"
    url = await s3_store.signed_url("images/u/a b.png", expires_in=60)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        assert await response.read() == b"\x89PNG-bytes"
    with pytest.raises(StorageError):
        await s3_store.signed_url("images/u/a b.png", expires_in=0)


async def test_s3_errors_are_typed(moto_server: str) -> None:
    missing_bucket = S3ObjectStore(
        bucket="does-not-exist", endpoint_url=moto_server, access_key_id="k",
        secret_access_key="s", region="us-east-1",
    )  # fmt: skip
    await missing_bucket.open()
    try:
        with pytest.raises(StorageError) as info:
            await missing_bucket.put("images/u/a.png", b"x", "image/png")
        assert "s" not in str(info.value).split()  # no secret in the message
    finally:
        await missing_bucket.close()
    unreachable = S3ObjectStore(
        bucket="b", endpoint_url="http://127.0.0.1:9", access_key_id="k",
        secret_access_key="s", max_attempts=1, connect_timeout=1,
    )  # fmt: skip
    await unreachable.open()
    try:
        with pytest.raises(StorageError, match="unreachable"):
            await unreachable.get("images/u/a.png")
    finally:
        await unreachable.close()


def test_r2_endpoint_from_account_id() -> None:
    store = S3ObjectStore.for_r2(
        account_id="abc123", bucket="b", access_key_id="k", secret_access_key="s"
    )
    assert store.endpoint_url == "https://abc123.r2.cloudflarestorage.com"


def test_key_scheme_and_slugs() -> None:
    key = image_key("user-1", "Sunset över Landscape!!", "PNG", epoch_ms=1735689200000)
    assert re.fullmatch(r"images/user-1/1735689200000-sunset-over-landscape-[0-9a-f]{6}\.png", key)
    assert thumbnail_key(key).startswith("thumbnails/user-1/1735689200000-sunset")
    assert thumbnail_key(key).endswith(".webp")
    assert slugify("../../etc") == "etc"
    assert slugify("🍌🍌") == "image"
    assert len(slugify("x" * 500)) <= 48
