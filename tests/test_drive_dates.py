"""Dates on a remote drive: what ``os.stat`` and the lab's file browser (Jupyter's contents API) show.

A bucket (S3, GCS, B2, Azure, Swift; Dropbox too) keeps a date for each file,
none for a folder: a folder there is only the common prefix of its files'
names. rclone shows such a folder with its ``--default-time``, 2000-01-01 out
of the box, so the lab's file browser said "26y ago" for every folder. The
drive mounts with ``--default-time 0s``: such a folder shows the time its
rclone started (the drive was attached, or remounted). Files always show their
own dates. In sync mode ``drive/`` is a local folder: its folders have the
local dates of the folders rclone made there.

Real parts only: ``rclone serve s3`` on loopback over objects made beforehand
with known dates, a real FUSE mount, Jupyter's own contents manager.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from drivelab import drive
from drivelab.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rclone_servers import S3Server  # noqa: E402
from test_drive import SERVER_LISTING_CACHE, bucket_name, connect_s3, needs_fuse, ws  # noqa: E402,F401

DAY = 86400.0
YEAR_2000 = 946684800.0
"""rclone's own ``--default-time``, 2000-01-01T00:00:00Z: what a folder on a bucket showed before."""
CLOCK_SLACK = 1.0
"""Seconds a date may fall outside the window it was taken in: the clocks are the same, their readings are not atomic."""

# The bucket's files, made on the server's side with these ages (days): folders hold only these, so none has a date of its own.
FILES = {
    "top.txt": 3.0,
    "dataset/mnist/train.gz": 40.0,
    "dataset/mnist/test.gz": 30.0,
    "dataset/deep/er/still.txt": 20.0,
    "runs/exp1/metrics.json": 2.0,
}


def make_files(backing: Path, now: float) -> dict[str, float]:
    """The files of ``FILES`` in the bucket's folder, with their dates; returns path -> date."""
    dates = {}
    for rel, age in FILES.items():
        path = backing / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rel)
        dates[rel] = now - age * DAY
        os.utime(path, (dates[rel], dates[rel]))
    time.sleep(SERVER_LISTING_CACHE)
    return dates


def folders_of(paths: list[str]) -> list[str]:
    return sorted({str(Path(rel).parents[i]) for rel in paths for i in range(len(Path(rel).parents) - 1)})


def jupyter_dates(ws: Workspace, folder: str) -> dict[str, float]:
    """name -> last_modified (seconds) of what the lab's file browser lists in ``folder`` (Jupyter's own contents manager)."""
    from jupyter_server.services.contents.largefilemanager import LargeFileManager

    manager = LargeFileManager(root_dir=str(ws.root))
    return {item["name"]: item["last_modified"].timestamp() for item in manager.get(folder)["content"]}


def assert_file_dates(root: Path, dates: dict[str, float]) -> None:
    for rel, date in dates.items():
        shown = os.stat(root / rel).st_mtime
        assert abs(shown - date) < 0.01, f"{rel}: shows {time.ctime(shown)}, its date is {time.ctime(date)}"


def assert_within(path: Path, start: float, end: float, what: str) -> None:
    shown = os.stat(path).st_mtime
    assert shown > YEAR_2000 + DAY, f"{what}: shows rclone's made-up {time.ctime(shown)}"
    assert start - CLOCK_SLACK <= shown <= end + CLOCK_SLACK, f"{what}: shows {time.ctime(shown)}, not within {time.ctime(start)} .. {time.ctime(end)}"


def attach_over_dated_files(ws: Workspace, s3: S3Server, **options: str) -> tuple[Path, dict[str, float], float, float]:
    """Attach a bucket holding ``FILES``: (its folder on the server, path -> date, time before, time after attaching).

    Checks that every file shows its date and every folder a time within the attach.
    """
    backing = connect_s3(ws, s3, bucket_name())
    dates = make_files(backing, time.time())
    before = time.time()
    drive.attach(ws, "box", local_files="set-aside", **options)
    after = time.time()
    assert_file_dates(ws.drive, dates)
    for rel in folders_of(list(dates)):
        assert_within(ws.drive / rel, before, after, rel)
    return backing, dates, before, after


@needs_fuse
def test_mount_shows_files_dates_and_a_folders_attach_time(ws: Workspace, s3: S3Server) -> None:
    # No date of its own on the bucket: the time the drive was attached, never the year 2000.
    _, dates, before, attached = attach_over_dated_files(ws, s3, dir_cache_time="1s")
    # One time for them all, that stays: rclone's start, not the time each is looked at.
    undated = {os.stat(ws.drive / rel).st_mtime for rel in folders_of(list(dates))}
    assert len(undated) == 1
    # The lab's file browser lists what the mount shows.
    listed = jupyter_dates(ws, "drive")
    assert abs(listed["top.txt"] - dates["top.txt"]) < 0.01
    assert before - CLOCK_SLACK <= listed["dataset"] <= attached + CLOCK_SLACK and before - CLOCK_SLACK <= listed["runs"] <= attached + CLOCK_SLACK
    assert jupyter_dates(ws, "drive/dataset/mnist") == pytest.approx({"train.gz": dates["dataset/mnist/train.gz"], "test.gz": dates["dataset/mnist/test.gz"]}, abs=0.01)

    # A file written through the mount: its own date; once uploaded and the folder listed again, no folder shows the year 2000.
    (ws.drive / "runs" / "exp2").mkdir()
    (ws.drive / "runs" / "exp2" / "loss.txt").write_text("0.1")
    written = os.stat(ws.drive / "runs" / "exp2" / "loss.txt").st_mtime
    assert attached - CLOCK_SLACK <= written <= time.time() + CLOCK_SLACK
    drive.flush(ws)
    time.sleep(2.5)  # twice the dir cache time: rclone lists the folders again
    assert abs(os.stat(ws.drive / "runs" / "exp2" / "loss.txt").st_mtime - written) < 0.01
    assert_file_dates(ws.drive, dates)
    for rel in [*folders_of(list(dates)), "runs/exp2"]:
        assert_within(ws.drive / rel, before, time.time(), rel)
    assert os.stat(ws.drive / "dataset").st_mtime in undated, "a folder nobody changed keeps the attach time"


def test_sync_shows_files_dates_and_folders_local_dates(ws: Workspace, s3: S3Server) -> None:
    # A local folder that rclone made when it pulled the remote: the time it made it.
    backing, dates, before, _ = attach_over_dated_files(ws, s3, mode="sync")

    # A file added remotely to a folder drive/ has already, and a later sync: both keep true dates.
    (backing / "dataset" / "mnist" / "labels.gz").write_text("labels")
    dates["dataset/mnist/labels.gz"] = time.time() - 5 * DAY
    os.utime(backing / "dataset" / "mnist" / "labels.gz", (dates["dataset/mnist/labels.gz"],) * 2)
    time.sleep(SERVER_LISTING_CACHE)
    drive.flush(ws)
    assert_file_dates(ws.drive, dates)
    for rel in folders_of(list(dates)):
        assert_within(ws.drive / rel, before, time.time(), rel)
    assert abs(jupyter_dates(ws, "drive/dataset/mnist")["labels.gz"] - dates["dataset/mnist/labels.gz"]) < 0.01
