"""Object storage for image bytes: Cloudflare R2 / any S3 API, or a local folder.

Keys follow the seed: `images/{user_id}/{epoch_ms}-{slug}.{ext}`, thumbnails under
`thumbnails/`. Discord attachment URLs expire, so we always copy the bytes here.
Every failure surfaces as `StorageError` (or its `ObjectNotFound`), never a raw botocore one.
"""

from __future__ import annotations

import asyncio
import builtins
import errno
import os
import re
import tempfile
import time
import unicodedata
import uuid
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote

import aioboto3
import aiohttp
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")
_TEMP_PREFIX = ".tmp-"


class StorageError(Exception):
    """Object storage failed; the message is safe to log (no credentials)."""


class ObjectNotFound(StorageError):
    """The key does not exist."""


class InvalidKey(StorageError, ValueError):
    """A key that could escape its folder or is otherwise unusable."""


@runtime_checkable
class ObjectStore(Protocol):
    """What the bot needs from object storage (DESIGN section 7)."""

    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[str]: ...

    def public_url(self, key: str) -> str | None: ...

    async def signed_url(self, key: str, expires_in: int = 3600) -> str: ...

    async def close(self) -> None: ...


@runtime_checkable
class DatedStore(Protocol):
    """A store that can tell when an object was written (both of ours can; the age of an
    object no row points to decides whether `fsck --repair` may delete it)."""

    async def modified(self, key: str) -> datetime: ...


def slugify(text: str, *, max_length: int = 48, fallback: str = "image") -> str:
    """A lowercase ASCII slug: safe in keys, URLs and file names on every OS."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")[:max_length].strip("-")
    return slug or fallback


def image_key(user_id: str, name: str, extension: str, *, epoch_ms: int | None = None) -> str:
    """`images/{user_id}/{epoch_ms}-{slug}-{rand}.{ext}`: the seed's scheme, plus a short
    random part so two images in one millisecond never collide."""
    stamp = epoch_ms if epoch_ms is not None else int(time.time() * 1000)
    ext = slugify(extension.lstrip("."), max_length=8, fallback="bin")
    suffix = uuid.uuid4().hex[:6]
    return validate_key(f"images/{slugify(user_id)}/{stamp}-{slugify(name)}-{suffix}.{ext}")


def thumbnail_key(key: str, extension: str = "webp") -> str:
    """The thumbnail's key for an image key: same path under `thumbnails/`, new extension."""
    path = PurePosixPath(key)
    parts = path.parts[1:] if path.parts and path.parts[0] == "images" else path.parts
    stem = PurePosixPath(*parts).with_suffix(f".{extension}")
    return validate_key(f"thumbnails/{stem}")


def validate_key(key: str) -> str:
    """Refuse keys that are empty, absolute, contain `..`, backslashes, NULs or empty parts."""
    if not key or len(key) > 1024:
        raise InvalidKey("object keys are 1 to 1024 characters")
    if "\\" in key or "\x00" in key or key.startswith("/"):
        raise InvalidKey(f"unsafe object key: {key!r}")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise InvalidKey(f"unsafe object key: {key!r}")
    if any(part.startswith(_TEMP_PREFIX) for part in parts):
        raise InvalidKey(f"reserved object key: {key!r}")
    return key


class LocalObjectStore:
    """Objects as files under one folder: the embedded default for a single host.

    Writes are atomic (temp file in the same folder, fsync, rename), so a crash never leaves
    a half-written image under its real key.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    async def open(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    def path_for(self, key: str) -> Path:
        """The file for a key, refusing anything that would resolve outside the root."""
        validate_key(key)
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise InvalidKey(f"unsafe object key: {key!r}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as error:
            raise StorageError(f"could not write {key}: {error.strerror or error}") from error

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key}") from None
        except OSError as error:
            raise StorageError(f"could not read {key}: {error.strerror or error}") from error

    async def delete(self, key: str) -> None:
        """Delete a key; deleting a missing key is not an error (as in S3)."""
        path = self.path_for(key)
        try:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        except OSError as error:
            raise StorageError(f"could not delete {key}: {error.strerror or error}") from error

    async def modified(self, key: str) -> datetime:
        """When the object was last written (ObjectNotFound if there is none)."""
        path = self.path_for(key)
        try:
            stat = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            raise ObjectNotFound(f"no object {key}") from None
        except OSError as error:
            raise StorageError(f"could not read {key}: {error.strerror or error}") from error
        return datetime.fromtimestamp(stat.st_mtime, UTC)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists, self.path_for(key))

    @staticmethod
    def _exists(path: Path) -> bool:
        try:
            return path.is_file()
        except OSError as error:
            # A name the file system can't hold (too long) can't be stored either: no object.
            if error.errno in (errno.ENAMETOOLONG, errno.EINVAL):
                return False
            raise StorageError(f"could not check {path.name[:80]}: {error.strerror}") from error

    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with `prefix`, sorted."""
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> builtins.list[str]:
        keys = []
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(_TEMP_PREFIX):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def public_url(self, key: str) -> str | None:
        """Local files have no public URL; the bot sends bytes to Discord instead."""
        self.path_for(key)
        return None

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        raise StorageError(
            "the local storage backend cannot sign URLs; use STORAGE_BACKEND=s3 for links"
        )


class S3ObjectStore:
    """Objects in Cloudflare R2 or any S3-compatible service, through aioboto3.

    One client is kept open for the store's lifetime (`open()` / `close()`).
    """

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key_id: str,
        secret_access_key: str,
        region: str = "auto",
        public_base_url: str | None = None,
        max_pool_connections: int = 20,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self._config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            # R2 rejects the newer default CRC checksums on some operations.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=max_pool_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        self._stack: AsyncExitStack | None = None
        self._client: S3Client | None = None

    @classmethod
    def for_r2(
        cls, *, account_id: str, bucket: str, access_key_id: str, secret_access_key: str,
        public_base_url: str | None = None,
    ) -> S3ObjectStore:  # fmt: skip
        """A store on Cloudflare R2's S3 endpoint for an account."""
        return cls(
            bucket=bucket,
            endpoint_url=f"https://{account_id}.r2.cloudflarestorage.com",
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            public_base_url=public_base_url,
        )

    async def open(self) -> None:
        if self._client is not None:
            return
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            self._session.client("s3", endpoint_url=self.endpoint_url, config=self._config)
        )
        self._stack, self._client = stack, client

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            raise StorageError("the object store is not open")
        return self._client

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        validate_key(key)
        async with _translate(key):
            await self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )

    async def get(self, key: str) -> bytes:
        validate_key(key)
        async with _translate(key):
            response = await self.client.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as body:
                return await body.read()

    async def delete(self, key: str) -> None:
        validate_key(key)
        async with _translate(key):
            await self.client.delete_object(Bucket=self.bucket, Key=key)

    async def modified(self, key: str) -> datetime:
        """When the object was last written (its LastModified; ObjectNotFound if none)."""
        validate_key(key)
        async with _translate(key):
            head = await self.client.head_object(Bucket=self.bucket, Key=key)
        stamp: datetime = head["LastModified"]
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        try:
            async with _translate(key):
                await self.client.head_object(Bucket=self.bucket, Key=key)
        except ObjectNotFound:
            return False
        return True

    async def list(self, prefix: str = "") -> list[str]:
        keys: list[str] = []
        async with _translate(prefix or "/"):
            paginator = self.client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []) if "Key" in item)
        return sorted(keys)

    def public_url(self, key: str) -> str | None:
        """`S3_PUBLIC_BASE_URL/key` (an R2 public bucket or custom domain), else None."""
        validate_key(key)
        if not self.public_base_url:
            return None
        return f"{self.public_base_url}/{quote(key)}"

    async def signed_url(self, key: str, expires_in: int = 3600) -> str:
        """A presigned GET URL, valid `expires_in` seconds (1 s to 7 days, as S3 allows)."""
        validate_key(key)
        if not 1 <= expires_in <= 7 * 24 * 3600:
            raise StorageError("signed URLs last between 1 second and 7 days")
        async with _translate(key):
            url: str = await self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=expires_in,
            )
        return url

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing (tests and first-time MinIO setups)."""
        try:
            async with _translate(self.bucket):
                await self.client.head_bucket(Bucket=self.bucket)
        except ObjectNotFound:
            async with _translate(self.bucket):
                await self.client.create_bucket(Bucket=self.bucket)


class _translate:
    """Turn botocore/aiohttp failures into StorageError without leaking credentials."""

    def __init__(self, key: str) -> None:
        self.key = key

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None or isinstance(exc, StorageError):
            return
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "unknown"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                raise StorageError(f"bucket not found while accessing {self.key}") from exc
            if code in {"NoSuchKey", "404", "NotFound"} or status == 404:
                raise ObjectNotFound(f"no object {self.key} ({code})") from exc
            raise StorageError(f"storage refused {self.key}: {code}") from exc
        if isinstance(exc, BotoCoreError | aiohttp.ClientError | asyncio.TimeoutError | OSError):
            raise StorageError(f"storage unreachable for {self.key}: {type(exc).__name__}") from exc
