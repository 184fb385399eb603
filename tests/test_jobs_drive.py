"""A job and a remote drive: `drivelab run` attaches the drive for the job, says so, and detaches it
again once the job has ended, unless it was attached before (then it is left as it was found)."""

from __future__ import annotations

import os
import sys

import pytest
from test_drive import leave_no_mount
from test_jobs import describe, drivelab

from drivelab import drive
from drivelab.workspace import init_workspace

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="FUSE mounts of the drive are tested on Linux")

WRITES = "from pathlib import Path\nPath('drive/out.txt').write_text('written by the job')\nprint('wrote', flush=True)\n"


@pytest.fixture
def s3_workspace(tmp_path, s3):
    ws = init_workspace(tmp_path / "ws").workspace
    bucket = f"job{os.getpid()}-{tmp_path.name[-12:]}".lower().replace("_", "-")
    drive.connect(ws, "box", "s3", s3.options(), root=bucket)
    drive.attach(ws, "box", local_files="copy", timeout=60)  # the workspace's drive from now on
    assert drive.detach(ws, timeout=60).detached
    (ws.root / "job.py").write_text(WRITES)
    yield ws, s3.backing / bucket
    leave_no_mount(ws)


def test_a_job_detaches_the_drive_it_attached_after_its_files_landed(s3_workspace):
    ws, bucket = s3_workspace
    assert not os.path.ismount(ws.drive)
    proc = drivelab("run", "--run", "j", "job.py", cwd=ws.root)
    assert proc.returncode == 0, describe(proc)
    assert "drive attached for the job: box:" in proc.stderr and "drive detached (attached for the job)" in proc.stderr, describe(proc)
    assert not os.path.ismount(ws.drive) and not drive.is_attached(ws)
    assert (bucket / "out.txt").read_text() == "written by the job"
    assert (bucket / "runs" / "j" / "status.json").is_file()


def test_a_job_leaves_a_drive_attached_before_it_attached(s3_workspace):
    ws, bucket = s3_workspace
    drive.attach(ws, timeout=60)
    proc = drivelab("run", "--run", "k", "job.py", cwd=ws.root)
    assert proc.returncode == 0, describe(proc)
    assert "attached for the job" not in proc.stderr and "drive detached" not in proc.stderr, describe(proc)
    assert os.path.ismount(ws.drive) and drive.status(ws).live
    assert (ws.drive / "out.txt").read_text() == "written by the job"
