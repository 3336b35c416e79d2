"""The lock on an object-storage output prefix (bandfusion.batch.object_lock), against moto's
server on loopback: one holder at a time; a stale lock (lease run out, or its holder a dead
process of this host) taken over; a live one on another host refused in one line; the lease
renewed while held; a lock taken over while held refused at the next check; nothing left after
release; a store ignoring conditional writes a warning and no lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from bandfusion.batch import object_lock
from bandfusion.batch.object_lock import LOCK_NAME, holding
from bandfusion.errors import BandfusionWarning, OutputError

from tests.batch.faultproxy import fault_proxy
from tests.conftest import S3_BUCKET
from tests.helpers import wait_for

ROOT = f"s3://{S3_BUCKET}"


def lock_key(prefix: str) -> str:
    return f"{prefix}/{LOCK_NAME}"


def put_lock(s3: Any, prefix: str, holder: str, expires: float) -> None:
    """A lock object as another run would have left it."""
    doc = {"holder": holder, "token": "theirs", "expires": expires}
    s3.put_object(Bucket=S3_BUCKET, Key=lock_key(prefix), Body=json.dumps(doc).encode())


def read_lock(s3: Any, prefix: str) -> dict[str, Any] | None:
    try:
        body = s3.get_object(Bucket=S3_BUCKET, Key=lock_key(prefix))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    return dict(json.loads(body))


def refusal(prefix: str) -> str:
    """The one line with which a run wanting the lock on `prefix` is refused."""
    with pytest.raises(OutputError) as refused, holding(f"{ROOT}/{prefix}"):
        pass
    return str(refused.value)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_prefix_is_refused_in_one_line_and_release_leaves_no_lock(s3_env: Any):
    with holding(f"{ROOT}/held") as lock:
        assert lock is not None
        doc = read_lock(s3_env, "held")
        assert doc is not None
        assert doc["holder"] == f"{socket.gethostname()}:{os.getpid()}" == lock.holder
        with pytest.raises(OutputError) as refused, holding(f"{ROOT}/held"):
            pass
    message = str(refused.value)
    assert message.startswith(f"{ROOT}/held: another bandfusion batch is writing into it (it"
                              f" holds {ROOT}/held/{LOCK_NAME}: {lock.holder}, until ")  # fmt: skip
    assert message.endswith(" UTC); wait for it to end or choose another output prefix")
    assert "\n" not in message
    assert read_lock(s3_env, "held") is None


def test_the_lock_is_released_when_the_run_fails(s3_env: Any):
    with pytest.raises(KeyboardInterrupt), holding(f"{ROOT}/failing"):
        raise KeyboardInterrupt
    assert read_lock(s3_env, "failing") is None


def test_an_expired_lease_is_taken_over(s3_env: Any):
    put_lock(s3_env, "expired", "elsewhere:4242", time.time() - 1)
    with holding(f"{ROOT}/expired") as lock:
        assert lock is not None
        assert read_lock(s3_env, "expired") == {
            "holder": lock.holder, "token": lock.token, "expires": lock.expires
        }  # fmt: skip
    assert read_lock(s3_env, "expired") is None


def test_a_dead_holder_on_this_host_is_taken_over_at_once(s3_env: Any):
    put_lock(s3_env, "dead", f"{socket.gethostname()}:{dead_pid()}", time.time() + 3600)
    with holding(f"{ROOT}/dead") as lock:
        assert lock is not None
        assert read_lock(s3_env, "dead")["token"] == lock.token  # type: ignore[index]


def test_a_live_holder_on_another_host_is_refused(s3_env: Any):
    expires = time.time() + 3600
    put_lock(s3_env, "live", "elsewhere:4242", expires)
    until = time.strftime("%H:%M:%S UTC", time.gmtime(expires))
    assert f"it holds {ROOT}/live/{LOCK_NAME}: elsewhere:4242, until {until});" in refusal("live")
    assert read_lock(s3_env, "live")["token"] == "theirs"  # type: ignore[index]


def test_renewals_keep_a_long_runs_lock(s3_env: Any, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(object_lock, "LEASE_S", 0.6)
    with holding(f"{ROOT}/long") as lock:
        assert lock is not None
        first = lock.expires
        time.sleep(2)  # over three leases
        assert lock.expires > first and lock.expires > time.time()
        assert read_lock(s3_env, "long")["expires"] == lock.expires  # type: ignore[index]
        assert "another bandfusion batch is writing into it" in refusal("long")
        lock.check()
    assert read_lock(s3_env, "long") is None


def test_a_lock_taken_over_while_held_is_refused_at_the_next_check(
    s3_env: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(object_lock, "LEASE_S", 0.6)
    with holding(f"{ROOT}/stolen") as lock:
        assert lock is not None
        put_lock(s3_env, "stolen", "elsewhere:4242", time.time() + 3600)
        wait_for(lambda: bool(lock.lost), "the renewal to find the lock taken", timeout=10)
        with pytest.raises(OutputError) as lost:
            lock.check()
    assert str(lost.value) == (
        f"{ROOT}/stolen: another bandfusion batch took over {ROOT}/stolen/{LOCK_NAME} (now held"
        " by elsewhere:4242) while this one was writing into it; stopped without saving the"
        " manifest"
    )
    assert read_lock(s3_env, "stolen")["token"] == "theirs"  # type: ignore[index]


def test_a_store_ignoring_conditional_writes_is_a_warning_and_no_lock(
    s3_store: tuple[str, Any], s3_env: Any, monkeypatch: pytest.MonkeyPatch
):
    endpoint, s3 = s3_store
    with fault_proxy(endpoint) as proxy:
        proxy.ignored = {"if-none-match", "if-match"}
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        warns = pytest.warns(BandfusionWarning, match="does not support conditional writes")
        with warns as seen, holding(f"{ROOT}/plain") as lock:
            assert lock is None
        assert len(seen) == 1
        assert str(seen[0].message).startswith(f"{ROOT}/plain: the store does not support")
    assert read_lock(s3, "plain") is None
