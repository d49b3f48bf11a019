"""Compare-and-swap on one object of object storage: write or delete it only if it is still the version
(ETag) the caller last saw, or only if it is absent.

S3 does this in one request (If-Match / If-None-Match on PutObject and DeleteObject), so two processes
racing for the same lease or the same catalog version cannot both win. A filesystem without
conditional requests gets compare-then-write, the best it offers, with a window between the two.
"""

from __future__ import annotations

import hashlib


class ConditionFailed(RuntimeError):
    """The object is not (or no longer) at the version the caller expected."""


def _is_s3(fs) -> bool:
    return hasattr(fs, "call_s3") and hasattr(fs, "split_path")


def etag_of(fs, key: str) -> str | None:
    """The object's current version tag, or None if it does not exist."""
    fs.invalidate_cache(key)
    try:
        info = fs.info(key)
    except FileNotFoundError:
        return None
    return str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("size")).strip('"')


def put_if(fs, key: str, data: bytes, expected: str | None) -> str:
    """Write `data` to `key` if it is at version `expected` (None: if it does not exist); returns the new
    version. ConditionFailed if it is not."""
    if not _is_s3(fs):
        if etag_of(fs, key) != expected:
            raise ConditionFailed(key)
        fs.pipe_file(key, data)
        return etag_of(fs, key) or ""
    bucket, name, _ = fs.split_path(key)
    condition = {"IfMatch": expected} if expected else {"IfNoneMatch": "*"}
    try:
        out = fs.call_s3("put_object", Bucket=bucket, Key=name, Body=data, **condition)
    except OSError:
        now = etag_of(fs, key)
        if now == hashlib.md5(data).hexdigest():  # written, but the reply was lost and the retry refused
            return now
        if now != expected:
            raise ConditionFailed(key) from None
        raise
    finally:
        fs.invalidate_cache(key)
    return str(out["ETag"]).strip('"')


def delete_if(fs, key: str, expected: str) -> bool:
    """Delete `key` if it is at version `expected`; False if it is gone or at another version."""
    if etag_of(fs, key) != expected:
        return False
    if not _is_s3(fs):
        fs.rm_file(key)
        return True
    bucket, name, _ = fs.split_path(key)
    try:
        fs.call_s3("delete_object", Bucket=bucket, Key=name, IfMatch=expected)
    except OSError:
        if etag_of(fs, key) != expected:
            return False
        # A store that takes no conditional delete: the check above is the best it offers.
        fs.rm_file(key)
    finally:
        fs.invalidate_cache(key)
    return True
