"""drivelab.data against loopback mirrors: fetch, verify, fall back, resume."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from mirror_server import DEFAULT_DIRECTORY, closed_port_url

from drivelab.data import (
    DEFAULT_MNIST_MIRRORS,
    MNIST_MIRROR_ENV,
    AttemptFailed,
    BytesReceived,
    FileDone,
    FileInvalid,
    FileStarted,
    get_dataset,
    get_mnist,
    known_datasets,
    mnist_raw_dir,
    resolve_mirrors,
)
from drivelab.errors import DataError, DownloadError, MirrorError, UnknownDatasetError

MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
LABELS = "t10k-labels-idx1-ubyte"  # the smallest file: most tests fetch only this one
TRAIN_LABELS = "train-labels-idx1-ubyte"


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch):
    monkeypatch.delenv(MNIST_MIRROR_ENV, raising=False)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def leftovers(raw: Path) -> list[str]:
    return sorted(p.name for p in raw.glob("*.incomplete*")) if raw.exists() else []


def gz_size(name: str) -> int:
    return (DEFAULT_DIRECTORY / f"{name}.gz").stat().st_size


def test_fetches_all_four_then_finds_them_present(tmp_path, make_mirror):
    server = make_mirror()
    events = []
    result = get_dataset("MNIST", tmp_path, mirrors=[server.url], progress=events.append)

    raw = mnist_raw_dir(tmp_path)
    assert result.raw_dir == raw == tmp_path / "MNIST" / "raw"
    assert {f.name: f.status for f in result.files} == dict.fromkeys(MD5, "downloaded")
    for name, digest in MD5.items():
        assert md5(raw / name) == digest
        assert next(f for f in result.files if f.name == name).bytes_downloaded == gz_size(name)
    assert sorted(p.name for p in raw.iterdir()) == sorted(MD5)  # no temporaries left
    json.dumps(result.to_dict())

    # The progress stream adds up: one start and one done per file, bytes = the .gz size.
    for name in MD5:
        mine = [e for e in events if e.name == name]
        assert isinstance(mine[0], FileStarted) and mine[0].total_bytes == gz_size(name)
        assert sum(e.n for e in mine if isinstance(e, BytesReceived)) == gz_size(name)
        assert mine[-1] == FileDone(name, "downloaded", f"{server.url}{name}.gz")

    server.clear_requests()
    again = get_mnist(tmp_path, mirrors=[server.url])
    assert [f.status for f in again.files] == ["present"] * 4
    assert all(f.source is None and f.bytes_downloaded == 0 for f in again.files)
    assert server.requests == []


def test_corrupted_file_is_rejected_and_next_mirror_used(tmp_path, make_mirror, mnist_mirror):
    bad = make_mirror(corrupt={f"{LABELS}.gz"})
    events = []
    result = get_mnist(tmp_path, mirrors=[bad.url, mnist_mirror.url], files=[LABELS], progress=events.append)

    (file,) = result.files
    assert file.status == "downloaded"
    assert file.source == f"{mnist_mirror.url}{LABELS}.gz"
    (attempt,) = file.failed_attempts
    assert attempt.source == f"{bad.url}{LABELS}.gz"
    assert "MD5" in attempt.reason and "does not match" in attempt.reason
    assert md5(result.raw_dir / LABELS) == MD5[LABELS]
    assert any(isinstance(e, AttemptFailed) and e.source == attempt.source for e in events)
    assert leftovers(result.raw_dir) == []


def test_not_gzip_is_rejected(tmp_path, make_mirror, mnist_mirror):
    bad = make_mirror(garbage={f"{LABELS}.gz"})
    result = get_mnist(tmp_path, mirrors=[bad.url, mnist_mirror.url], files=[LABELS])
    assert result.files[0].failed_attempts[0].reason == "not a gzip file"
    assert md5(result.raw_dir / LABELS) == MD5[LABELS]


def test_all_mirrors_bad_raises_with_every_attempt(tmp_path, make_mirror):
    missing = make_mirror(missing={f"{LABELS}.gz"})
    corrupt = make_mirror(corrupt={f"{LABELS}.gz"})
    refused = closed_port_url()

    with pytest.raises(DownloadError) as info:
        get_mnist(tmp_path, mirrors=[missing.url, corrupt.url, refused], files=[LABELS])

    err = info.value
    assert err.filename == LABELS
    sources = [source for source, _ in err.attempts]
    assert sources == [f"{m}{LABELS}.gz" for m in (missing.url, corrupt.url, refused)]
    reasons = [reason for _, reason in err.attempts]
    assert reasons[0] == "HTTP 404 Not Found"
    assert "MD5" in reasons[1]
    assert reasons[2] == "connection refused"
    for source in sources:
        assert source in str(err)
    assert MNIST_MIRROR_ENV in err.hint
    raw = mnist_raw_dir(tmp_path)
    assert not (raw / LABELS).exists()
    assert not (raw / f"{LABELS}.incomplete").exists()
    assert leftovers(raw) == []


def test_unreachable_mirror_reason(tmp_path):
    with pytest.raises(DownloadError) as info:
        get_mnist(tmp_path, mirrors=[closed_port_url()], files=[LABELS])
    assert info.value.attempts[0][1] == "connection refused"


def test_interrupted_download_resumes_with_range(tmp_path, make_mirror):
    cut = 10_000
    name = f"{TRAIN_LABELS}.gz"
    server = make_mirror(drop_after={name: cut})
    raw = mnist_raw_dir(tmp_path)

    with pytest.raises(DownloadError) as info:
        get_mnist(tmp_path, mirrors=[server.url], files=[TRAIN_LABELS])
    assert "connection lost" in info.value.attempts[0][1]
    assert (raw / f"{name}.incomplete").stat().st_size == cut
    assert not (raw / TRAIN_LABELS).exists()

    events = []
    result = get_mnist(tmp_path, mirrors=[server.url], files=[TRAIN_LABELS], progress=events.append)

    first, second = server.requests_for(name)
    assert first.range is None
    assert second.range == f"bytes={cut}-"
    assert second.if_range  # the ETag from the first reply
    assert second.status == 206
    assert second.bytes_sent == gz_size(TRAIN_LABELS) - cut  # only the rest, not the whole file
    (file,) = result.files
    assert file.status == "resumed"
    assert file.bytes_downloaded == gz_size(TRAIN_LABELS) - cut
    assert FileStarted(TRAIN_LABELS, f"{server.url}{name}", gz_size(TRAIN_LABELS), resumed_from=cut) in events
    assert md5(raw / TRAIN_LABELS) == MD5[TRAIN_LABELS]
    assert leftovers(raw) == []


def test_full_reply_to_a_range_request_starts_over(tmp_path, make_mirror):
    name = f"{TRAIN_LABELS}.gz"
    server = make_mirror(drop_after={name: 10_000}, honor_range=False)
    with pytest.raises(DownloadError):
        get_mnist(tmp_path, mirrors=[server.url], files=[TRAIN_LABELS])
    result = get_mnist(tmp_path, mirrors=[server.url], files=[TRAIN_LABELS])

    assert server.requests_for(name)[-1].range == "bytes=10000-"
    assert server.requests_for(name)[-1].status == 200
    assert result.files[0].status == "downloaded"
    assert md5(result.raw_dir / TRAIN_LABELS) == MD5[TRAIN_LABELS]


def test_changed_file_is_not_spliced(tmp_path, make_mirror):
    # A partial whose validator no longer matches: If-Range makes the server send it whole.
    server = make_mirror()
    raw = mnist_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    name = f"{LABELS}.gz"
    (raw / f"{name}.incomplete").write_bytes(b"\x1f\x8b stale bytes from an older file")
    sidecar = {"url": f"{server.url}{name}", "etag": '"stale"', "last_modified": None}
    (raw / f"{name}.incomplete.json").write_text(json.dumps(sidecar))

    result = get_mnist(tmp_path, mirrors=[server.url], files=[LABELS])

    (request,) = server.requests_for(name)
    assert request.if_range == '"stale"' and request.status == 200
    assert result.files[0].status == "downloaded"
    assert md5(raw / LABELS) == MD5[LABELS]


def test_partial_from_another_url_is_not_resumed(tmp_path, make_mirror):
    server = make_mirror()
    raw = mnist_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    name = f"{LABELS}.gz"
    (raw / f"{name}.incomplete").write_bytes((DEFAULT_DIRECTORY / name).read_bytes()[:1000])
    (raw / f"{name}.incomplete.json").write_text(json.dumps({"url": "http://elsewhere.invalid/" + name}))

    result = get_mnist(tmp_path, mirrors=[server.url], files=[LABELS])

    assert server.requests_for(name)[0].range is None
    assert result.files[0].status == "downloaded"
    assert md5(raw / LABELS) == MD5[LABELS]


def test_complete_partial_gets_416_and_starts_over(tmp_path, make_mirror):
    # Killed after the last byte but before unpacking: Range asks past the end.
    server = make_mirror()
    raw = mnist_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    name = f"{LABELS}.gz"
    (raw / f"{name}.incomplete").write_bytes((DEFAULT_DIRECTORY / name).read_bytes())
    (raw / f"{name}.incomplete.json").write_text(json.dumps({"url": f"{server.url}{name}"}))

    result = get_mnist(tmp_path, mirrors=[server.url], files=[LABELS])

    assert [r.status for r in server.requests_for(name)] == [416, 200]
    assert md5(raw / LABELS) == MD5[LABELS]
    assert result.files[0].status == "downloaded"


def test_wrong_file_in_place_is_replaced(tmp_path, mnist_mirror):
    raw = mnist_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    (raw / LABELS).write_bytes(b"not mnist")
    result = get_mnist(tmp_path, mirrors=[mnist_mirror.url], files=[LABELS])
    assert result.files[0].status == "downloaded"
    assert md5(raw / LABELS) == MD5[LABELS]


@pytest.mark.parametrize("trailing_slash", [True, False])
def test_file_mirror(tmp_path, trailing_slash):
    url = DEFAULT_DIRECTORY.as_uri() + ("/" if trailing_slash else "")
    events = []
    result = get_mnist(tmp_path, mirrors=[url], files=[LABELS, TRAIN_LABELS], progress=events.append)
    assert [f.status for f in result.files] == ["downloaded", "downloaded"]
    assert result.files[0].source == DEFAULT_DIRECTORY.as_uri() + f"/{TRAIN_LABELS}.gz"
    for name in (LABELS, TRAIN_LABELS):
        assert md5(result.raw_dir / name) == MD5[name]
        received = sum(e.n for e in events if isinstance(e, BytesReceived) and e.name == name)
        assert received == gz_size(name)
    assert leftovers(result.raw_dir) == []


def test_missing_file_mirror_reason(tmp_path):
    with pytest.raises(DownloadError) as info:
        get_mnist(tmp_path, mirrors=[(tmp_path / "nowhere").as_uri()], files=[LABELS])
    assert info.value.attempts[0][1].startswith("no such file")


def test_env_mirror_override(tmp_path, monkeypatch, mnist_mirror):
    refused = closed_port_url()
    monkeypatch.setenv(MNIST_MIRROR_ENV, f" {refused.rstrip('/')} ,\n{mnist_mirror.url} ")
    assert resolve_mirrors(None) == [refused, mnist_mirror.url]

    result = get_mnist(tmp_path, files=[LABELS])
    assert result.files[0].source == f"{mnist_mirror.url}{LABELS}.gz"
    assert result.files[0].failed_attempts[0].reason == "connection refused"

    # An explicit list wins over the environment.
    assert resolve_mirrors(["file:///srv/mnist"]) == ["file:///srv/mnist/"]


def test_default_mirrors(monkeypatch):
    assert resolve_mirrors(None) == list(DEFAULT_MNIST_MIRRORS)
    monkeypatch.setenv(MNIST_MIRROR_ENV, "   ")
    assert resolve_mirrors([]) == list(DEFAULT_MNIST_MIRRORS)


def test_bad_mirror_url_is_refused_early():
    with pytest.raises(DataError, match="not an http"):
        resolve_mirrors(["ftp://example.org/mnist"])


@pytest.mark.parametrize(
    ("mirror", "problem"),
    [
        ("notaurl", "not an http://, https:// or file:// URL"),
        ("ftp://example.org/mnist/", "not an http://, https:// or file:// URL"),
        ("http://", "no host"),
        ("https:///mnist/", "no host"),
        ("http://host:99999/mnist/", "port"),
        ("https://exa mple.org/mnist/", "space"),
        ("https://example.org/mnist/?key=1", "query"),
        ("https://example.org/mnist/#top", "fragment"),
        ("file://", "no folder"),
        ("file://otherhost/srv/mnist/", "another machine"),
    ],
)
def test_malformed_mirrors_are_refused(mirror, problem):
    with pytest.raises(MirrorError) as info:
        resolve_mirrors(["http://127.0.0.1:8000/", mirror])
    err = info.value
    assert repr(mirror) in err.message and problem in err.message
    assert "http://, https:// or file://" in err.message + (err.hint or "")
    assert err.exit_code == 2


def test_mirror_from_the_environment_is_named_as_such(monkeypatch):
    monkeypatch.setenv(MNIST_MIRROR_ENV, "http://127.0.0.1:8000/ http:///x")
    with pytest.raises(MirrorError, match=MNIST_MIRROR_ENV):
        resolve_mirrors(None)


def test_folder_given_as_a_path_gets_its_file_url_as_hint(tmp_path):
    with pytest.raises(MirrorError) as info:
        resolve_mirrors([str(tmp_path)])
    assert tmp_path.as_uri() + "/" in info.value.hint


def test_mirrors_are_checked_before_present_files(tmp_path):
    get_mnist(tmp_path, mirrors=[DEFAULT_DIRECTORY.as_uri()], files=[LABELS])
    with pytest.raises(MirrorError):
        get_mnist(tmp_path, mirrors=["http://"], files=[LABELS])


def test_corrupt_file_in_place_is_reported_then_replaced(tmp_path, mnist_mirror):
    raw = mnist_raw_dir(tmp_path)
    raw.mkdir(parents=True)
    (raw / LABELS).write_bytes(b"bit rot")
    events = []
    result = get_mnist(tmp_path, mirrors=[mnist_mirror.url], files=[LABELS], progress=events.append)

    invalid = FileInvalid(LABELS, raw / LABELS, MD5[LABELS], hashlib.md5(b"bit rot").hexdigest(), 10008, 7)
    assert events[0] == invalid  # said first, before any transfer
    assert isinstance(events[1], FileStarted)
    assert events[-1] == FileDone(LABELS, "downloaded", f"{mnist_mirror.url}{LABELS}.gz")
    (file,) = result.files
    assert file.replaced == invalid
    assert file.to_dict()["replaced"] == {"path": str(raw / LABELS), "expected_md5": MD5[LABELS],
                                          "actual_md5": invalid.actual_md5, "expected_size": 10008, "size": 7}  # fmt: skip
    assert md5(raw / LABELS) == MD5[LABELS]


def test_present_file_is_not_reported_as_replaced(tmp_path):
    get_mnist(tmp_path, mirrors=[DEFAULT_DIRECTORY.as_uri()], files=[LABELS])
    events = []
    result = get_mnist(tmp_path, mirrors=[DEFAULT_DIRECTORY.as_uri()], files=[LABELS], progress=events.append)
    assert events == [FileDone(LABELS, "present", None)]
    assert result.files[0].replaced is None and result.files[0].to_dict()["replaced"] is None


def test_failed_attempts_count_the_mirrors_left(tmp_path, make_mirror):
    missing = make_mirror(missing={f"{LABELS}.gz"})
    corrupt = make_mirror(corrupt={f"{LABELS}.gz"})
    events = []
    with pytest.raises(DownloadError):
        get_mnist(tmp_path, mirrors=[missing.url, corrupt.url, closed_port_url()], files=[LABELS], progress=events.append)
    assert [e.mirrors_left for e in events if isinstance(e, AttemptFailed)] == [2, 1, 0]


def test_unknown_dataset(tmp_path):
    assert known_datasets() == ["mnist"]
    with pytest.raises(UnknownDatasetError) as info:
        get_dataset("imagenet", tmp_path)
    assert "imagenet" in str(info.value)
    assert "mnist" in info.value.hint


def test_unknown_mnist_file(tmp_path):
    with pytest.raises(DataError, match="no file named"):
        get_mnist(tmp_path, files=["train-images"])


def test_unwritable_dataset_root(tmp_path, mnist_mirror):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataError) as info:
        get_mnist(blocker, mirrors=[mnist_mirror.url], files=[LABELS])
    assert not isinstance(info.value, DownloadError)
    assert info.value.hint
