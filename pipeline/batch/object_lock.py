"""One batch at a time per object-storage prefix: a leased lock object, `PREFIX/.bandfusion.lock`.

Object storage has no flock, but S3 (and MinIO, Ceph, moto) take conditional writes: a PUT with
`If-None-Match: *` creates an object only where there is none, one with `If-Match: ETAG` replaces
only that version, and either answers 412 Precondition Failed otherwise. The lock is a small JSON
object, {holder: "host:pid", token, expires}: created with If-None-Match; renewed by its holder
every `LEASE_S` / 3 with If-Match on the ETag it last wrote; deleted at the end. A lock that is
stale (its lease has run out, or its holder is a process of this host that is gone, as after a
SIGKILL and a rerun on the same machine) is taken over with If-Match on the ETag read, so that of
two runs taking it over one wins and the other is refused. A holder whose renewal is answered 412
lost the lock to another run: its next manifest save is refused (`ObjectLock.check`), so two
runs never write one manifest unawares.

A store without conditional writes (501 Not Implemented, or a second If-None-Match PUT onto the
lock accepted) cannot hold the lock: the run goes on without one, as before locks, with one
warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from bandfusion.batch.store import DIGEST_KEY
from bandfusion.errors import BandfusionWarning, OutputError, first_line
from bandfusion.io.s3 import not_found, s3_client, split_url

LOCK_NAME = ".bandfusion.lock"
"""The object (under an output prefix) or file (in an output folder) a running batch holds."""
LEASE_S = 120.0
"""How long a lock object stays valid after its holder last renewed it. Renewals come every
third of it, so two may fail in a row (a store throttling or briefly unreachable, each request
retried for up to about a minute) before the lease runs out; and a client killed on another host,
which cannot be seen to be gone, keeps its prefix from a new run for at most this long."""
_PRECONDITION = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}
"""Answers to a conditional PUT that say another writer got there first."""
_UNSUPPORTED = {"501", "NotImplemented"}
"""Answers of a store that does not implement conditional writes."""
_JOIN_S = 5.0
"""How long a release waits for a renewal in flight (it fails on the deleted object anyway)."""


@dataclass(frozen=True)
class _Holder:
    """A lock object's contents, with the ETag it was read or written with."""

    holder: str
    token: str
    expires: float
    etag: str

    def stale(self, now: float) -> bool:
        """Whether the lock may be taken over: its lease has run out, or its holder is a
        process of this host that no longer runs."""
        if self.expires < now:
            return True
        host, _, pid = self.holder.rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not _alive(int(pid))

    def until(self) -> str:
        return time.strftime("%H:%M:%S UTC", time.gmtime(self.expires))


class LockUnsupported(Exception):
    """The store answered in a way that shows it does not honour conditional writes."""


class ObjectLock:
    """The lock on an output prefix, once acquired: renewed in a daemon thread until released."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.url = f"{root}/{LOCK_NAME}"
        self.bucket, self.key = split_url(self.url)
        self.client = s3_client()
        self.token = uuid.uuid4().hex
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.etag = ""
        self.expires = 0.0
        self.lost = ""
        """Why the lock is no longer this run's (one line), once a renewal found it taken."""
        self._stop = threading.Event()
        self._renewing: threading.Thread | None = None
        self._mutex = threading.Lock()  # one renewal at a time: each needs the last one's ETag

    def acquire(self) -> None:
        """Create the lock object, or take over a stale one; OutputError while another run
        holds it, LockUnsupported where the store ignores the conditions."""
        if self._put(IfNoneMatch="*"):
            if self._put(IfNoneMatch="*"):  # a store that honours the header refuses this
                raise LockUnsupported("a second If-None-Match PUT onto the lock was accepted")
        else:
            current = self._read()
            if current is not None and not current.stale(time.time()):
                raise self._held_by(current)
            if current is None:  # released in between: create it
                taken = self._put(IfNoneMatch="*")
            else:
                taken = self._put(IfMatch=current.etag)
            if not taken:
                raise self._held_by(self._read())
        self._renewing = threading.Thread(target=self._renew, name="bandfusion-lock", daemon=True)
        self._renewing.start()

    def check(self) -> None:
        """OutputError when the lock is no longer this run's: another run took it over, or its
        lease ran out while renewals failed and renewing it now fails too."""
        if not self.lost and time.time() > self.expires - LEASE_S / 3:
            self._renew_once()
        if self.lost:
            raise OutputError(self.lost)

    def release(self) -> None:
        """Stop renewing and delete the lock object if it is still this run's. A failure is not
        the run's: the lease runs out on its own."""
        self._stop.set()
        if self._renewing is not None:  # a renewal still in flight fails on the deleted object
            self._renewing.join(timeout=_JOIN_S)
        with suppress(Exception):  # the store is gone: the lease runs out
            current = self._read()
            if current is not None and current.token == self.token:
                self.client.delete_object(Bucket=self.bucket, Key=self.key)

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_S / 3) and not self.lost:
            self._renew_once()

    def _renew_once(self) -> None:
        with self._mutex:
            if not self.lost:
                self._try_renewal()

    def _try_renewal(self) -> None:
        try:
            if not self._put(IfMatch=self.etag):
                current = self._read()
                now = f"now held by {current.holder}" if current else "now released"
                self.lost = (
                    f"{self.root}: another bandfusion batch took over {self.url} ({now}) while"
                    " this one was writing into it; stopped without saving the manifest"
                )
        except LockUnsupported:
            self._stop.set()  # the store stopped honouring conditions: nothing to renew
        except Exception as exc:  # the store unreachable: the next renewal tries again
            if time.time() > self.expires:
                self.lost = (
                    f"{self.root}: the lease of {self.url} ran out while renewing it failed"
                    f" ({first_line(exc, typed=True)}); stopped without saving the manifest"
                )

    def _put(self, **condition: str) -> bool:
        """Write this run's lock object under `condition`; False when the store refused it as
        unmet (another writer; or, for If-Match, the object is gone), LockUnsupported when the
        store does not do conditions."""
        expires = time.time() + LEASE_S
        body = json.dumps({"holder": self.holder, "token": self.token, "expires": expires}).encode()
        digest = {DIGEST_KEY: hashlib.sha256(body).hexdigest()}  # as every object a batch puts
        try:
            answer = self.client.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json",
                Metadata=digest, **condition,
            )  # fmt: skip
        except Exception as exc:  # botocore's ClientError carries the store's answer
            codes = _codes(exc)
            if codes & _PRECONDITION or not_found(exc):
                return False
            if codes & _UNSUPPORTED:
                raise LockUnsupported(first_line(exc, typed=True)) from exc
            raise
        self.etag, self.expires = answer["ETag"], expires
        return True

    def _read(self) -> _Holder | None:
        """The lock object as it is now; None when there is none. One that is not a lock's
        JSON holds no lease (stale)."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if not_found(exc):
                return None
            raise
        try:
            doc = json.loads(answer["Body"].read())
            return _Holder(str(doc["holder"]), str(doc["token"]), float(doc["expires"]),
                           answer["ETag"])  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return _Holder("?", "", 0.0, answer["ETag"])

    def _held_by(self, current: _Holder | None) -> OutputError:
        held = f"{current.holder}, until {current.until()}" if current else "taken just now"
        return OutputError(
            f"{self.root}: another bandfusion batch is writing into it (it holds {self.url}:"
            f" {held}); wait for it to end or choose another output prefix"
        )


@contextmanager
def holding(root: str) -> Iterator[ObjectLock | None]:
    """Hold the lock on the prefix `root` while the body runs (OutputError if another run holds
    it); None, with a warning, where the store cannot hold one. Released on any exit."""
    lock = ObjectLock(root)
    try:
        lock.acquire()
    except LockUnsupported as exc:
        lock.release()
        warnings.warn(
            BandfusionWarning(
                f"{root}: the store does not support conditional writes ({exc}); running"
                " without a lock: run one batch per output prefix"
            ),
            stacklevel=3,
        )
        yield None
        return
    except OutputError:
        raise
    except Exception as exc:  # botocore's failures, once its retries are spent
        raise OutputError(f"{lock.url}: cannot lock ({first_line(exc, typed=True)})") from exc
    try:
        yield lock
    finally:
        lock.release()


def _codes(exc: Exception) -> set[str]:
    """The error code and HTTP status of botocore's `exc`, as strings."""
    response: dict[str, Any] = getattr(exc, "response", None) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return {str(response.get("Error", {}).get("Code")), str(status)}


def _alive(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
