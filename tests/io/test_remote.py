"""Remote inputs (bandfusion.io.remote): scenes over https:// (a Range-capable server) and
s3:// (moto's S3-compatible server), both on loopback, read exactly as the local files; every
failure is one line naming the URL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from bandfusion.errors import SceneError
from bandfusion.io.gdal_settings import configure_remote, remote_options
from bandfusion.io.remote import fetch_json, gdal_path, is_remote
from bandfusion.io.remote_stac import TimeoutStacIO
from bandfusion.io.scene import open_scene
from rasterio.env import get_gdal_config

from tests.conftest import S3_BUCKET
from tests.helpers import REPO, chip_bands
from tests.servers import STALL_PATH, RangeServer

S2 = REPO / "data/sen1floods11_spain/Spain_7370579_S2Hand.tif"


def test_gdal_path_and_is_remote() -> None:
    assert gdal_path("https://h.example/a/b.tif") == "/vsicurl/https://h.example/a/b.tif"
    assert gdal_path("s3://bucket/a/b.tif") == "/vsis3/bucket/a/b.tif"
    assert gdal_path("data/x.tif") == "data/x.tif"
    assert (
        gdal_path("/vsizip//vsicurl/https://h/x.zip/b.jp2")
        == "/vsizip//vsicurl/https://h/x.zip/b.jp2"
    )
    assert is_remote("s3://b/k") and is_remote("http://h/k") and is_remote("/vsis3/b/k")
    assert is_remote("/vsizip//vsicurl/https://h/x.zip/b.jp2")
    assert not is_remote("data/x.tif") and not is_remote("/vsizip/local.zip/b.jp2")
    assert not is_remote(Path("s3-like/name.tif"))


def test_remote_options_follow_the_standard_environment() -> None:
    minio = remote_options({"AWS_ENDPOINT_URL": "http://minio.local:9000/"})
    assert minio["AWS_S3_ENDPOINT"] == "minio.local:9000"
    assert minio["AWS_HTTPS"] == "NO" and minio["AWS_VIRTUAL_HOSTING"] == "FALSE"
    assert minio["GDAL_HTTP_TIMEOUT"] and minio["GDAL_HTTP_MAX_RETRY"]
    # What the environment sets itself, GDAL reads there: never overridden.
    own = remote_options({"GDAL_HTTP_TIMEOUT": "5", "AWS_S3_ENDPOINT": "s3.example.com"})
    assert "GDAL_HTTP_TIMEOUT" not in own and "AWS_S3_ENDPOINT" not in own
    assert own["AWS_VIRTUAL_HOSTING"] == "FALSE" and "AWS_HTTPS" not in own
    assert "AWS_S3_ENDPOINT" not in remote_options({})


def test_remote_options_reach_every_thread_and_outlive_the_readers_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Set process-wide, not by a rasterio.Env a worker thread leaves when its chunk is read."""
    monkeypatch.setenv("GDAL_HTTP_CONNECTTIMEOUT", "7")
    configure_remote()
    seen: list[Any] = []
    thread = threading.Thread(target=lambda: seen.append(get_gdal_config("GDAL_HTTP_TIMEOUT")))
    thread.start()
    thread.join()
    assert seen == [int(remote_options()["GDAL_HTTP_TIMEOUT"])]
    assert get_gdal_config("GDAL_HTTP_CONNECTTIMEOUT") == 7  # from the environment


def _same_scene(remote: Any, local: Any) -> None:
    assert list(remote["band"].values) == list(local["band"].values)
    assert remote.attrs == local.attrs
    np.testing.assert_array_equal(remote.values, local.values)


def test_geotiff_over_http_reads_as_the_local_file(http_server: RangeServer) -> None:
    url = http_server.publish("/s2/Spain_S2Hand.tif", S2)
    scene = open_scene(url)
    assert set(scene["source"].values) == {url}
    _same_scene(scene, open_scene(S2))
    # No folder listing while remote files open, and only then: local side files (a map's
    # .aux.xml, the COG writer's .ovr chain) are still seen.
    assert get_gdal_config("GDAL_DISABLE_READDIR_ON_OPEN") is None


def test_band_files_over_http_read_as_the_local_files(http_server: RangeServer) -> None:
    urls = [http_server.publish(f"/adwp/{p.name}", p) for p in chip_bands("adwp")]
    _same_scene(open_scene(urls), open_scene(chip_bands("adwp")))


def test_geotiff_and_band_files_over_s3_read_as_the_local_files(s3_env: Any) -> None:
    s3_env.upload_file(str(S2), S3_BUCKET, "s2/scene.tif")
    _same_scene(open_scene(f"s3://{S3_BUCKET}/s2/scene.tif"), open_scene(S2))
    for path in chip_bands("akny"):
        s3_env.upload_file(str(path), S3_BUCKET, f"akny/{path.name}")
    urls = [f"s3://{S3_BUCKET}/akny/{p.name}" for p in chip_bands("akny")]
    _same_scene(open_scene(urls), open_scene(chip_bands("akny")))


def _one_line_naming(url: str, exc: pytest.ExceptionInfo[SceneError]) -> str:
    message = str(exc.value)
    assert message.startswith(f"{url}: ") and "\n" not in message
    return message


def test_missing_objects_are_one_line(http_server: RangeServer, s3_env: Any) -> None:
    for url in (f"{http_server.url}/no/such.tif", f"s3://{S3_BUCKET}/no/such.tif"):
        with pytest.raises(SceneError) as exc:
            open_scene(url)
        _one_line_naming(url, exc)
    assert "404" in str(exc.value) or "does not exist" in str(exc.value)


def test_a_refused_connection_is_one_line() -> None:
    with RangeServer() as closed:  # bound, then closed: nothing listens on its port
        url = f"{closed.url}/scene.tif"
    with pytest.raises(SceneError) as exc:
        open_scene(url)
    assert "connect" in _one_line_naming(url, exc).lower()


@pytest.mark.timeout(60)
def test_a_stalled_server_times_out_in_the_environments_time(
    http_server: RangeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_HTTP_TIMEOUT", "1")
    monkeypatch.setenv("GDAL_HTTP_MAX_RETRY", "0")
    url = f"{http_server.url}{STALL_PATH}scene.tif"
    start = time.monotonic()
    with pytest.raises(SceneError) as exc:
        open_scene(url)
    assert "timed out" in _one_line_naming(url, exc).lower()
    assert time.monotonic() - start < 20
    with pytest.raises(SceneError) as exc:
        fetch_json(f"{http_server.url}{STALL_PATH}item.json")
    assert "timed out" in str(exc.value)


def test_a_truncated_object_is_one_line(http_server: RangeServer) -> None:
    data = S2.read_bytes()
    url = http_server.publish("/cut/scene.tif", data[: len(data) // 2])
    with pytest.raises(SceneError) as exc:
        open_scene(url).values  # noqa: B018 (the read is the test)
    assert "truncated or corrupt" in _one_line_naming(url, exc)


def test_stac_json_over_http(http_server: RangeServer) -> None:
    item = pystac.Item("t1", None, None, pystac.utils.str_to_datetime("2022-10-05T11:54:11Z"), {})
    url = http_server.publish("/stac/item.json", json.dumps(item.to_dict()).encode())
    assert fetch_json(url)["id"] == "t1"
    assert pystac.Item.from_file(url, stac_io=TimeoutStacIO(timeout=5)).id == "t1"
    with pytest.raises(SceneError) as exc:
        fetch_json(f"{http_server.url}/stac/missing.json")
    assert (
        str(exc.value)
        == f"{http_server.url}/stac/missing.json: cannot fetch it (HTTP 404: Not Found)"
    )
