"""Pieces the benchmarks share: percentiles and an S3 store on moto."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from moto.server import ThreadedMotoServer

from storage.objects import S3ObjectStore


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@asynccontextmanager
async def moto_s3_store(bucket: str = "nanobanana-bench") -> AsyncIterator[S3ObjectStore]:
    """An open S3ObjectStore with its bucket, on moto's threaded server on 127.0.0.1 (same
    process and GIL as the benchmark, so S3 figures include moto's own work)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        store = S3ObjectStore(
            bucket=bucket,
            endpoint_url=f"http://{host}:{port}",
            access_key_id="bench-key",
            secret_access_key="bench-secret",
            region="us-east-1",
        )
        await store.open()
        try:
            await store.ensure_bucket()
            yield store
        finally:
            await store.close()
    finally:
        server.stop()
