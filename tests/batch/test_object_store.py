"""A batch wholly in object storage (S3 on loopback: moto's server): scenes read from the
bucket, the model read from it once and shipped to the workers as bytes, maps and the manifest
written to it. The maps are `predict`'s, byte for byte; each object appears whole, with its
digest; a rerun skips what is there and current, and redoes what is gone."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bandfusion.batch import object_lock
from bandfusion.batch.object_lock import LOCK_NAME, holding
from bandfusion.batch.run import run_batch
from bandfusion.batch.shipped_model import load_shipped, read_model
from bandfusion.batch.store import DIGEST_KEY, stored_digest
from bandfusion.errors import ModelFileError, OutputError
from bandfusion.models.checkpoint import METADATA_FILE, WEIGHTS_FILE
from bandfusion.progress import Step
from distributed import Client

from tests.conftest import S3_BUCKET
from tests.fuzzing import run_cli
from tests.helpers import no_cluster, predict_sha256, stack_chip

ROOT = f"s3://{S3_BUCKET}"


@pytest.fixture
def workers_env(s3_env: Any, client: Client) -> Iterator[Any]:
    """The loopback store's AWS environment in the workers too (they started before it)."""
    names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL")

    def swap(env: dict[str, str | None]) -> dict[str, str | None]:
        before = {name: os.environ.get(name) for name in env}
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        return before

    befores = client.run(swap, {name: os.environ[name] for name in names})
    yield s3_env
    for worker, before in befores.items():
        client.run(swap, before, workers=[worker])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("stacks")
    return [stack_chip(chip, folder / f"{chip}.tif") for chip in ("adwp", "akny")]


def upload_model(s3: Any, model_dir: Path, prefix: str) -> str:
    for file in model_dir.iterdir():
        s3.upload_file(str(file), S3_BUCKET, f"{prefix}/{file.name}")
    return f"{ROOT}/{prefix}"


def test_a_batch_from_and_to_object_storage_is_predicts_byte_for_byte(
    tmp_path: Path, workers_env: Any, client: Client, model_dir: Path, scenes: list[Path]
):
    s3 = workers_env
    for scene in scenes:
        s3.upload_file(str(scene), S3_BUCKET, f"os/in/{scene.name}")
    model = upload_model(s3, model_dir, "os/model")
    urls = [f"{ROOT}/os/in/{scene.name}" for scene in scenes]
    expected = {s.name: predict_sha256([s], model_dir, tmp_path / s.name) for s in scenes}
    result = run_batch(urls, model, f"{ROOT}/os/maps", client)
    assert [r.status for r in result.records] == ["done", "done"], result.failed
    assert result.manifest == f"{ROOT}/os/maps/manifest.json"
    for name, digest in expected.items():
        body = s3.get_object(Bucket=S3_BUCKET, Key=f"os/maps/{name}")
        assert body["Metadata"][DIGEST_KEY] == digest
        (tmp_path / "got.tif").write_bytes(body["Body"].read())
        assert (
            predict_sha256 and (tmp_path / "got.tif").read_bytes() == (tmp_path / name).read_bytes()
        )
        assert stored_digest(f"{ROOT}/os/maps/{name}.aux.xml") is not None  # class names beside
    manifest = json.loads(
        s3.get_object(Bucket=S3_BUCKET, Key="os/maps/manifest.json")["Body"].read()
    )
    assert manifest["model"]["path"] == model
    assert {s["output"]: s["sha256"] for s in manifest["scenes"]} == expected
    assert [s["inputs"][0]["path"] for s in manifest["scenes"]] == urls
    names = [*expected, *(f"{name}.aux.xml" for name in expected), "manifest.json"]
    assert keys(s3, "os/maps/") == sorted(f"os/maps/{name}" for name in names)  # no lock left

    again = run_batch(urls, model, f"{ROOT}/os/maps", start_client=no_cluster)
    assert [r.status for r in again.records] == ["skipped", "skipped"]
    s3.delete_object(Bucket=S3_BUCKET, Key=f"os/maps/{scenes[0].name}")
    redone = run_batch(urls, model, f"{ROOT}/os/maps", client)
    assert [r.status for r in redone.records] == ["done", "skipped"]
    assert stored_digest(f"{ROOT}/os/maps/{scenes[0].name}") == expected[scenes[0].name]


def test_an_object_not_recorded_is_never_replaced(
    workers_env: Any, model_dir: Path, scenes: list[Path]
):
    s3 = workers_env
    s3.upload_file(str(scenes[0]), S3_BUCKET, "stray/in/a.tif")
    s3.put_object(Bucket=S3_BUCKET, Key="stray/maps/a.tif", Body=b"someone else's")
    code, err = run_cli(["batch", f"{ROOT}/stray/in/a.tif", "-m", str(model_dir), "--out-dir",
                         f"{ROOT}/stray/maps", "-q"])  # fmt: skip
    assert code == 2 and "stray/maps/a.tif: exists" in err, err
    assert (
        s3.get_object(Bucket=S3_BUCKET, Key="stray/maps/a.tif")["Body"].read() == b"someone else's"
    )


def keys(s3: Any, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=S3_BUCKET, Prefix=prefix).get("Contents", [])
    return sorted(item["Key"] for item in listing)


def test_a_second_batch_into_one_prefix_is_refused_in_one_line(
    s3_env: Any, model_dir: Path, scenes: list[Path]
):
    """The CLI case of docs/hostile-inputs.md: the first batch holds PREFIX/.bandfusion.lock
    (here this test process, alive on this host); the second writes nothing."""
    with holding(f"{ROOT}/second/maps"):
        code, err = run_cli(["batch", str(scenes[0]), "-m", str(model_dir), "--out-dir",
                             f"{ROOT}/second/maps", "-q"])  # fmt: skip
        assert keys(s3_env, "second/") == [f"second/maps/{LOCK_NAME}"]
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0].startswith(
        f"bandfusion: error: {ROOT}/second/maps: another bandfusion batch"
        f" is writing into it (it holds {ROOT}/second/maps/{LOCK_NAME}: "
    )
    assert lines[0].endswith("; wait for it to end or choose another output prefix")
    assert keys(s3_env, "second/") == []


def test_a_run_whose_lock_is_taken_over_ends_with_one_line(
    workers_env: Any, client: Client, model_dir: Path, scenes: list[Path],
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    """Another run takes the lock (its lease looked stale to it): this one's next manifest
    save is refused, and the other run's lock is left alone."""
    s3 = workers_env
    monkeypatch.setattr(object_lock, "LEASE_S", 0.6)
    key = f"taken/maps/{LOCK_NAME}"
    theirs = json.dumps({"holder": "elsewhere:4242", "token": "theirs", "expires": 1e10})

    def take_over(step: Step) -> None:
        if step.note.startswith("cluster"):  # the run holds the lock and has saved once
            s3.put_object(Bucket=S3_BUCKET, Key=key, Body=theirs.encode())
            time.sleep(1)  # renewals, every LEASE_S / 3, find it taken

    with pytest.raises(OutputError) as lost:
        run_batch([str(s) for s in scenes], model_dir, f"{ROOT}/taken/maps", client,
                  progress=take_over)  # fmt: skip
    assert str(lost.value).startswith(f"{ROOT}/taken/maps: another bandfusion batch took over")
    assert "\n" not in str(lost.value)
    assert s3.get_object(Bucket=S3_BUCKET, Key=key)["Body"].read() == theirs.encode()


def test_shipped_model_bytes_are_checked_against_the_digest(model_dir: Path):
    ref, files, model = read_model(model_dir)
    assert load_shipped(ref, files).meta == model.meta
    with pytest.raises(ModelFileError, match="do not match the batch's digest"):
        load_shipped(ref, (files[0], files[1] + b"\0"))


def test_a_model_missing_from_the_bucket_is_one_line_naming_it(s3_env: Any):
    with pytest.raises(ModelFileError, match=f"^{ROOT}/nowhere: cannot read model"):
        read_model(f"{ROOT}/nowhere")


def test_a_model_served_over_https_ships_the_same_bytes(model_dir: Path, http_server: Any):
    """A model directory published on a web server (`-m https://…/model`) is read as the local
    one: the same digest, the same loaded model; a missing one is one line naming its URL."""
    for file in (METADATA_FILE, WEIGHTS_FILE):
        http_server.publish(f"/models/water/{file}", model_dir / file)
    local_ref, local_files, local_model = read_model(model_dir)
    ref, files, model = read_model(f"{http_server.url}/models/water/")
    assert (ref.path, ref.sha256) == (f"{http_server.url}/models/water", local_ref.sha256)
    assert files == local_files and model.meta == local_model.meta
    with pytest.raises(ModelFileError, match=rf"^{http_server.url}/models/nowhere: cannot read"):
        read_model(f"{http_server.url}/models/nowhere")
