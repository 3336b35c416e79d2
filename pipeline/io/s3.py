"""Objects in S3 and S3-compatible stores through boto3, configured as GDAL is: by the standard
AWS environment (`AWS_ENDPOINT_URL`, or `AWS_S3_ENDPOINT` for compatibles; `AWS_MAX_ATTEMPTS` /
`AWS_RETRY_MODE` for retries).

GDAL reads the pixels; this asks what GDAL cannot be asked through rasterio: whether an object
is there (a HEAD request) and the bytes of a small one (a product's metadata file), and it
carries a batch's uploads (`bandfusion.batch.store`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

S3 = "s3://"
_RETRY_DEFAULTS = {"retries": {"max_attempts": 5, "mode": "standard"}}
"""Unless AWS_MAX_ATTEMPTS / AWS_RETRY_MODE say otherwise: throttling, 5xx answers and
dropped connections are retried with growing, jittered delays before a request fails."""

_ENVIRONMENT = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_PROFILE",
    "AWS_ACCESS_KEY_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE",
)  # fmt: skip
"""The variables a client depends on: one changed (a test, a notebook) means a new client."""


def split_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` as (bucket, key)."""
    bucket, _, key = url[len(S3) :].partition("/")
    return bucket, key


def s3_client() -> Any:
    """A boto3 S3 client from the standard AWS environment, one per process and environment
    (clients are thread safe); `AWS_S3_ENDPOINT`, GDAL's form, counts as the endpoint when no
    AWS_ENDPOINT_URL is set."""
    return _client(tuple(os.environ.get(name) for name in _ENVIRONMENT))


@functools.cache
def _client(environment: tuple[str | None, ...]) -> Any:
    import boto3
    from botocore.config import Config

    endpoint = None
    if not (os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3")):
        host = os.environ.get("AWS_S3_ENDPOINT")
        scheme = "http" if os.environ.get("AWS_HTTPS", "YES").upper() == "NO" else "https"
        endpoint = host if not host or "://" in host else f"{scheme}://{host}"
    retries = {} if os.environ.get("AWS_MAX_ATTEMPTS") else _RETRY_DEFAULTS
    config = Config(connect_timeout=10, read_timeout=60, **retries)
    return boto3.client("s3", endpoint_url=endpoint, config=config)


def not_found(exc: Exception) -> bool:
    """Whether botocore's `exc` is the store saying there is no such object."""
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")


def head(url: str) -> dict[str, Any] | None:
    """The object's HEAD answer, None when there is none; other failures raise."""
    bucket, key = split_url(url)
    try:
        answer: dict[str, Any] = s3_client().head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore's ClientError: a 404 is an answer
        if not_found(exc):
            return None
        raise
    return answer


def get_range(url: str, start: int, end: int) -> bytes:
    """Bytes `start`..`end` (inclusive) of the object; botocore's failures raise."""
    bucket, key = split_url(url)
    answer = s3_client().get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}")
    return bytes(answer["Body"].read())
