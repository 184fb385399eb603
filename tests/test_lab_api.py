"""The lab's API for its panels (``/drivelab/api/...``): the doctor, the drive, secrets and jobs,
on a real ``drivelab lab``, with real jobs, a real kernel, and the drive on a real S3 server.

Two labs serve the module: one on a local drive (auth, the doctor, secrets, jobs), one on a drive
kept on ``rclone serve s3`` behind a slow link (flush, unmount, mount). Each ends with a test
that stops it.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import random
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from _guards import skip_or_fail
from _waiting import wait_until
from rclone_servers import LatencyProxy, S3Server
from test_lab import LabProcess, start_cli_lab, stop

from drivelab import drive, jobs
from drivelab.workspace import Workspace, init_workspace

TICKER = """\
import time
for i in range(100000):
    print(f"tick {i} é✓", flush=True)
    time.sleep(0.05)
"""
"""A job that prints lines (with characters of two and three bytes) until it is stopped."""


class Reply:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    @property
    def doc(self) -> Any:
        return json.loads(self.body)


def api(
    lab: LabProcess, method: str, path: str, body: Any = None, *, data: bytes | None = None, token: str | None = "",
    opener: urllib.request.OpenerDirector | None = None, headers: dict[str, str] | None = None, timeout: float = 120,
) -> Reply:
    """``method`` on ``drivelab/api/<path>`` (a ``/path``: the server's own): with the lab's token unless ``token``
    (None: none), or through ``opener`` (a cookie session)."""
    sent = dict(headers or {})
    if token is not None and opener is None:
        sent["Authorization"] = f"token {token or lab.token}"
    if body is not None:
        data = json.dumps(body).encode()
    if data is not None:
        sent["Content-Type"] = "application/json"
    url = lab.base + (path[1:] if path.startswith("/") else "drivelab/api/" + path)
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    opener = opener or urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=timeout) as reply:
            return Reply(reply.status, reply.headers, reply.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


def answered(reply: Reply, status: int = 200) -> dict[str, Any]:
    """The reply's JSON document, once its status and headers are as every answer's must be."""
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"] == "application/json" and reply.headers["Cache-Control"] == "no-store"
    assert b"Traceback" not in reply.body
    return reply.doc


def refused(reply: Reply, status: int, words: str) -> dict[str, Any]:
    doc = answered(reply, status)
    assert set(doc) == {"error", "hint"} and words in doc["error"], doc
    return doc


def server_log(lab: LabProcess) -> str:
    return (lab.workspace / ".drivelab" / "logs" / "lab.log").read_text(errors="replace")


def stopped_cleanly(lab: LabProcess) -> str:
    """Stop the lab as Ctrl+C does; its output, once it exited 0."""
    code = stop(lab)
    assert lab.reader is not None
    lab.reader.join(30)
    out = lab.output()
    assert code == 0 and "Traceback" not in out, out
    return out


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabProcess]:
    """A lab on a local drive, with a script to run as a job."""
    base = tmp_path_factory.mktemp("lab-api")
    ws = init_workspace(base / "ws").workspace
    (ws.colab / "ticker.py").write_text(TICKER)
    running = start_cli_lab(ws.root, base / "jupyter")
    yield running
    stop(running)
    for job in jobs.list_jobs(ws):
        if job.active:
            jobs.stop_job(ws, job.run)


# --- auth -------------------------------------------------------------------------------------------

NEW_ENDPOINTS = [
    ("GET", "doctor"), ("POST", "drive/mount"), ("POST", "drive/flush"), ("POST", "drive/unmount"),
    ("GET", "secrets"), ("POST", "secrets"), ("DELETE", "secrets/API_KEY"),
    ("GET", "jobs"), ("POST", "jobs"), ("GET", "jobs/tick/log"), ("POST", "jobs/tick/stop"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path"), NEW_ENDPOINTS, ids=[f"{m} {p}" for m, p in NEW_ENDPOINTS])
def test_every_endpoint_refuses_a_request_without_the_token(lab, method, path):
    body = {"name": "API_KEY", "value": "v"} if method == "POST" else None
    for token in (None, "not-the-token"):
        reply = api(lab, method, path, body, token=token)
        refused(reply, 403, "")
    assert not (lab.workspace / ".drivelab" / "secrets.json").exists()  # nothing was done


def cookie_session(lab: LabProcess) -> tuple[urllib.request.OpenerDirector, str]:
    """A browser's session: the lab's login cookie (from opening the lab's URL once) and its XSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPCookieProcessor(jar))
    with opener.open(lab.base + f"lab?token={lab.token}", timeout=30) as reply:
        assert reply.status == 200
    xsrf = next(c.value for c in jar if c.name == "_xsrf")
    return opener, xsrf


def test_post_and_delete_with_the_cookie_need_the_xsrf_header(lab):
    session, xsrf = cookie_session(lab)
    assert answered(api(lab, "GET", "secrets", opener=session))["kind"] == "secrets.list"  # the cookie logs in
    body = {"name": "COOKIE_KEY", "value": secrets.token_hex(8)}
    refused(api(lab, "POST", "secrets", body, opener=session), 403, "'_xsrf' argument missing from POST")
    assert answered(api(lab, "POST", "secrets", body, opener=session, headers={"X-XSRFToken": xsrf}))["name"] == "COOKIE_KEY"
    assert api(lab, "DELETE", "secrets/COOKIE_KEY", opener=session).status == 403
    assert answered(api(lab, "DELETE", "secrets/COOKIE_KEY", opener=session, headers={"X-XSRFToken": xsrf}))["kind"] == "secret.removed"
    assert api(lab, "POST", "jobs/tick/stop", opener=session).status == 403
    # With the token in the Authorization header, no XSRF token is asked for.
    assert answered(api(lab, "POST", "drive/flush"))["kind"] == "drive.flush"


# --- doctor -----------------------------------------------------------------------------------------


def test_doctor_answers_what_drivelab_doctor_json_prints(lab):
    doc = answered(api(lab, "GET", "doctor"))
    assert set(doc) == {"kind", "version", "ok", "machine", "report"}
    assert doc["kind"] == "doctor" and doc["version"] == 1
    assert doc["ok"] is all(check["ok"] for check in doc["report"]["checks"])
    assert doc["report"]["checks"] and set(doc["report"]["checks"][0]) == {"name", "ok", "detail", "fix"}
    assert doc["report"]["python"] == sys.executable  # the server's Python, the lab's
    runtime = answered(api(lab, "GET", "runtime"))
    assert set(doc["machine"]) == set(runtime) - {"kind", "version"}
    assert doc["machine"]["system"]["cpu_model"] == runtime["system"]["cpu_model"]


def test_runtime_panel_answers_the_rows_drivelab_runtime_prints(lab):
    from drivelab.runtime import info

    doc = answered(api(lab, "GET", "runtime/panel"))
    assert doc["kind"] == "runtime.panel" and doc["version"] == 1
    rows = [(row["label"], row["kind"]) for row in doc["rows"]]
    assert rows == [(row.label, row.kind) for row in info(lab.workspace).rows]
    assert dict(rows)["Python"] == "fact" and "PyTorch" in dict(rows)


# --- secrets ----------------------------------------------------------------------------------------


def kernel_prints(lab: LabProcess, code: str) -> str:
    """What ``code`` prints in a new kernel of the lab (the workspace's Colab kernel)."""
    from jupyter_client import BlockingKernelClient

    reply = api(lab, "POST", "/api/kernels", {"name": "python3"})
    assert reply.status == 201, reply.body
    kernel = reply.doc["id"]
    try:
        connection = lab.workspace.parent / "jupyter" / "runtime" / f"kernel-{kernel}.json"
        wait_until("the kernel's connection file", connection.is_file, within=60)
        client = BlockingKernelClient(connection_file=str(connection))
        client.load_connection_file()
        client.start_channels(hb=False)  # no heartbeat: a client of its own would read a late first beat as a dead kernel
        try:
            client.wait_for_ready(timeout=60)
            out: list[str] = []

            def collect(msg: dict[str, Any]) -> None:
                if msg["msg_type"] == "stream":
                    out.append(msg["content"]["text"])
                elif msg["msg_type"] == "error":
                    out.append("\n".join(msg["content"]["traceback"]))

            client.execute_interactive(code, timeout=60, output_hook=collect)
            return "".join(out)
        finally:
            client.stop_channels()
    finally:
        api(lab, "DELETE", f"/api/kernels/{kernel}")


def test_secrets_round_trip_and_the_value_is_never_shown(lab):
    value = "s3cr3t-" + secrets.token_hex(16)
    replies = [api(lab, "POST", "secrets", {"name": "API_KEY", "value": value})]
    assert answered(replies[-1]) == {"kind": "secret", "version": 1, "name": "API_KEY", "source": "stored", "env": None}
    replies.append(api(lab, "GET", "secrets"))
    assert answered(replies[-1]) == {"kind": "secrets.list", "version": 1, "secrets": [{"name": "API_KEY", "source": "stored", "env": None}]}

    # What the workspace's kernels get from Colab's userdata.
    digest = hashlib.sha256(value.encode()).hexdigest()
    printed = kernel_prints(lab, "import hashlib\nfrom google.colab import userdata\nprint(hashlib.sha256(userdata.get('API_KEY').encode()).hexdigest())")
    assert printed.strip() == digest, printed

    # Bad requests: the library's words, 400, and never the value, even one sent in a body that is not JSON.
    replies.append(api(lab, "POST", "secrets", {"name": "1BAD", "value": value}))
    refused(replies[-1], 400, "not a usable secret name: '1BAD'")
    for body in ({"name": "OTHER"}, {"name": "OTHER", "value": 42}, {"name": "OTHER", "value": ""}):
        replies.append(api(lab, "POST", "secrets", body))
        refused(replies[-1], 400, "the secret OTHER needs a value")
    for data in (b'{"name": "OTHER", "value": "' + value.encode() + b'"', b"", b'["OTHER"]', b"\xff"):
        replies.append(api(lab, "POST", "secrets", data=data))
        refused(replies[-1], 400, "the request's body is not a JSON object")
    replies.append(api(lab, "DELETE", "secrets/1BAD"))
    refused(replies[-1], 400, "not a usable secret name")
    assert [s["name"] for s in answered(api(lab, "GET", "secrets"))["secrets"]] == ["API_KEY"]

    replies.append(api(lab, "DELETE", "secrets/API_KEY"))
    assert answered(replies[-1]) == {"kind": "secret.removed", "version": 1, "name": "API_KEY"}
    assert answered(api(lab, "GET", "secrets"))["secrets"] == []
    replies.append(api(lab, "DELETE", "secrets/API_KEY"))
    refused(replies[-1], 404, "no secret named 'API_KEY'")

    for reply in replies:
        assert value.encode() not in reply.body
    assert value not in server_log(lab)
    assert value not in lab.output()


# --- jobs -------------------------------------------------------------------------------------------


def log_lines(text: str) -> list[int]:
    """The tick numbers of ``text``'s whole lines, each checked whole."""
    lines = text.splitlines(keepends=True)
    ticks = []
    for line in lines:
        if line.startswith("tick "):
            assert line.endswith(" é✓\n"), line
            ticks.append(int(line.split()[1]))
    return ticks


def test_a_job_starts_its_log_follows_by_offsets_and_it_stops(lab):
    ws = Workspace(lab.workspace)
    doc = answered(api(lab, "POST", "jobs", {"path": "drive/colab/ticker.py", "run": "tick"}), 201)
    # As `drivelab run --detach --json` prints it: the job's status, whose own kind (python or notebook) wins over "run".
    assert doc == {**doc, "kind": "python", "version": 1, "run": "tick"} and doc["state"] in ("starting", "running")
    assert doc["detached"] is True and doc["spec"]["script"] == str(ws.colab / "ticker.py")
    listed = answered(api(lab, "GET", "jobs"))
    assert listed["kind"] == "jobs.list" and listed["version"] == 1
    assert [(j["run"], j["state"]) for j in listed["jobs"]] == [("tick", "running")]
    assert set(listed["jobs"][0]) == set(jobs.job_status(ws, "tick").to_dict())

    first = wait_until("the job's first lines", lambda: (d := answered(api(lab, "GET", "jobs/tick/log")))["text"].count("\n") >= 3 and d, within=30)
    assert first["kind"] == "jobs.log" and first["version"] == 1 and first["run"] == "tick"
    assert first["state"] == "running" and first["active"] is True
    seen = log_lines(first["text"])
    offset = first["offset"]
    assert seen[:1] == [0] and offset == len(first["text"].encode())
    for _ in range(3):
        more = wait_until(
            "new lines of the job's log", lambda offset=offset: (d := answered(api(lab, "GET", f"jobs/tick/log?offset={offset}")))["text"].count("\n") >= 1 and d, within=30
        )  # fmt: skip
        ticks = log_lines(more["text"])
        assert ticks and ticks[0] == seen[-1] + 1, (seen[-3:], more["text"][:200])  # only what is new, nothing missed
        seen += ticks
        offset = more["offset"]
    again = answered(api(lab, "GET", f"jobs/tick/log?offset={offset + 10**9}"))  # a log that shrank (started again): from 0
    assert (ws.runs / "tick" / "log").read_bytes().startswith(again["text"].encode()) and log_lines(again["text"])[0] == 0

    stopped = answered(api(lab, "POST", "jobs/tick/stop"))
    assert stopped["kind"] == "python" and stopped["run"] == "tick" and stopped["state"] == "stopped"  # as `drivelab jobs stop --json`
    end = answered(api(lab, "GET", f"jobs/tick/log?offset={offset}"))
    assert end["state"] == "stopped" and end["active"] is False
    log = (ws.runs / "tick" / "log").read_bytes()
    assert end["offset"] == len(log)
    # Read in parts too small for a line, the log comes back whole: no character is cut.
    parts, at = [], 0
    while at < len(log):
        part = jobs.read_log_part(ws, "tick", at, limit=5)
        assert part.offset > at or part.offset == len(log)
        parts.append(part.text)
        at = part.offset
    assert "".join(parts) == log.decode()
    assert jobs.read_log_part(ws, "tick", 1 + log.index("é".encode())).text.startswith("✓")  # an offset inside a character

    # A long log: without an offset, its last 64 KiB from a line's start; from an offset, 256 KiB at most.
    with open(ws.runs / "tick" / "log", "ab") as fh:
        fh.write(b"".join(b"padding %06d \xc3\xa9\n" % i for i in range(30000)))
    log = (ws.runs / "tick" / "log").read_bytes()
    end = answered(api(lab, "GET", "jobs/tick/log"))
    assert end["offset"] == len(log) and len(end["text"].encode()) <= 64 * 1024
    assert log[len(log) - len(end["text"].encode()) - 1] == ord("\n") and end["text"].endswith("padding 029999 é\n")
    start = answered(api(lab, "GET", "jobs/tick/log?offset=0"))
    assert start["offset"] == len(start["text"].encode()) > 255 * 1024 and log.startswith(start["text"].encode())


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"path": "../outside.py"}, "is outside the workspace"),
        ({"path": "/etc/hostname"}, "is outside the workspace"),
        ({"path": "drive/colab/notes.txt"}, "is neither a .py script nor a .ipynb notebook"),
        ({"path": "drive/colab/missing.py"}, "no such file: drive/colab/missing.py"),
        ({"path": ""}, "no file to run"),
        ({"run": "x"}, "no file to run"),
        ({"path": "drive/colab/ticker.py", "run": "no spaces"}, "not a usable run name: 'no spaces'"),
        ({"path": "drive/colab/ticker.py", "run": 7}, "not a usable run name: 7"),
        (["drive/colab/ticker.py"], "the request's body is not a JSON object"),
    ],
    ids=["parent", "absolute", "not-a-script", "missing", "empty", "no-path", "bad-run", "run-not-text", "not-an-object"],
)
def test_a_job_request_for_a_file_that_cannot_run_is_refused(lab, body, words):
    (lab.workspace.parent / "outside.py").write_text("print('outside')\n")
    (lab.workspace / "drive" / "colab" / "notes.txt").write_text("notes\n")
    refused(api(lab, "POST", "jobs", body), 400, words)
    assert not any(j.run == "x" or j.state == "running" for j in jobs.list_jobs(Workspace(lab.workspace)))


def test_an_unknown_run_is_404(lab):
    refused(api(lab, "GET", "jobs/nosuchrun/log"), 404, "no job named 'nosuchrun'")
    refused(api(lab, "POST", "jobs/nosuchrun/stop"), 404, "no job named 'nosuchrun'")
    refused(api(lab, "GET", "jobs/no%20such/log"), 404, "not a usable run name")
    refused(api(lab, "GET", "jobs/tick/log?offset=-1"), 400, "not a byte offset")


def test_a_job_started_from_the_lab_outlives_it(lab):
    """Stopping the lab leaves a job started from its panel running, as `drivelab run --detach` would."""
    ws = Workspace(lab.workspace)
    doc = answered(api(lab, "POST", "jobs", {"path": "drive/colab/ticker.py", "run": "outlives"}), 201)
    stopped_cleanly(lab)
    status = jobs.job_status(ws, "outlives")
    assert status.state == "running" and psutil.pid_exists(doc["supervisor_pid"]), status
    assert jobs.stop_job(ws, "outlives").state == "stopped"


# --- the drive on S3 --------------------------------------------------------------------------------

SLOW_LINK = 0.2
"""Seconds added to each request to the S3 server: a flush of a few files takes seconds, as on a real cloud drive."""


@pytest.fixture(scope="module")
def s3_lab(tmp_path_factory: pytest.TempPathFactory, s3: S3Server) -> Iterator[tuple[LabProcess, Path]]:
    """A lab whose drive is an S3 bucket behind a slow link; and the bucket's folder on the server."""
    ok, why = drive.fuse_available()
    if not ok:
        skip_or_fail(f"no FUSE here: {why}")
    base = tmp_path_factory.mktemp("lab-api-s3")
    ws = init_workspace(base / "ws").workspace
    (ws.colab / "ticker.py").write_text(TICKER)
    proxy = LatencyProxy(s3.port, SLOW_LINK)
    bucket = f"api{random.randrange(10**8)}"
    drive.connect(ws, "box", "s3", {**s3.options(), "endpoint": proxy.url}, root=bucket)
    drive.attach(ws, "box", local_files="copy", timeout=60)
    drive.detach(ws, timeout=60)
    running = start_cli_lab(ws.root, base / "jupyter")
    yield running, s3.backing / bucket
    stop(running)
    for job in jobs.list_jobs(ws):
        if job.active:
            jobs.stop_job(ws, job.run)
    state = drive.status(ws)
    if state.watchdog_pid:
        drive.detach(ws, timeout=60, force=True)
    proxy.close()


def test_flush_returns_once_all_landed_and_the_drive_answers_meanwhile(s3_lab):
    lab, bucket = s3_lab
    ws = Workspace(lab.workspace)
    assert os.path.ismount(ws.drive)
    written = {f"runs/flushed/f{i}.bin": os.urandom(256 * 1024) for i in range(16)}
    (ws.drive / "runs" / "flushed").mkdir(parents=True)
    for name, data in written.items():
        (ws.drive / name).write_bytes(data)

    flushed: list[Reply] = []
    flushing = threading.Thread(target=lambda: flushed.append(api(lab, "POST", "drive/flush")))
    flushing.start()
    meanwhile = []
    while flushing.is_alive():
        started = time.monotonic()
        doc = answered(api(lab, "GET", "drive", timeout=10))
        if flushing.is_alive():
            meanwhile.append((time.monotonic() - started, doc["pending_uploads"]))
        time.sleep(0.1)
    flushing.join()
    doc = answered(flushed[0])
    assert doc["kind"] == "drive.flush" and doc["version"] == 1 and doc["mode"] == "mount"
    assert set(doc) == {"kind", "version", "files", "bytes", "seconds", "mode", "names", "conflicts"}
    assert doc["files"] == len(written) and doc["bytes"] == sum(map(len, written.values())), doc
    # The server went on answering while the flush waited: the status bar saw the uploads pending.
    assert len(meanwhile) >= 3 and max(took for took, _ in meanwhile) < 2.0, meanwhile
    assert any(pending for _, pending in meanwhile), meanwhile
    assert answered(api(lab, "GET", "drive"))["pending_uploads"] == 0
    for name, data in written.items():
        assert (bucket / name).read_bytes() == data


def test_unmount_and_mount_from_the_lab(s3_lab):
    lab, bucket = s3_lab
    ws = Workspace(lab.workspace)
    (ws.drive / "colab" / "before-unmount.txt").write_text("written before the unmount")
    doc = answered(api(lab, "POST", "drive/unmount"))
    assert doc["kind"] == "drive.unmount" and doc["version"] == 1 and doc["detached"] is True and doc["forced"] is False
    assert doc["pending"] == 0 and doc["users"] == []
    assert not os.path.ismount(ws.drive)
    assert answered(api(lab, "GET", "drive"))["live"] is False
    assert (bucket / "colab" / "before-unmount.txt").read_text() == "written before the unmount"
    assert answered(api(lab, "POST", "drive/unmount"))["detached"] is True  # again: nothing to do

    doc = answered(api(lab, "POST", "drive/mount"))
    assert doc["kind"] == "drive" and doc["version"] == 1 and doc["live"] is True and doc["remote"] == "box"
    assert set(doc) == set(answered(api(lab, "GET", "drive")))
    assert os.path.ismount(ws.drive)
    assert (ws.drive / "colab" / "before-unmount.txt").read_text() == "written before the unmount"


def test_unmount_is_refused_while_a_job_uses_the_drive(s3_lab):
    lab, _ = s3_lab
    ws = Workspace(lab.workspace)
    answered(api(lab, "POST", "jobs", {"path": "drive/colab/ticker.py", "run": "holds"}), 201)
    wait_until("the job uses the drive", lambda: "job holds" in [u["what"] for u in drive.users(ws)], within=30)
    doc = refused(api(lab, "POST", "drive/unmount"), 409, "the drive is in use by job holds (pid ")
    assert "lab" not in doc["error"] and "drivelab jobs stop" in doc["hint"]
    assert os.path.ismount(ws.drive)
    assert answered(api(lab, "POST", "jobs/holds/stop"))["state"] == "stopped"
    assert answered(api(lab, "POST", "drive/unmount"))["detached"] is True
    assert not os.path.ismount(ws.drive)
    assert answered(api(lab, "POST", "drive/mount"))["live"] is True


def test_stopping_the_lab_after_its_panel_mounted_the_drive_detaches_it(s3_lab):
    lab, bucket = s3_lab
    ws = Workspace(lab.workspace)
    state = drive.status(ws)
    assert state.live and os.path.ismount(ws.drive)
    (ws.drive / "colab" / "last.txt").write_text("written just before the lab stopped")
    out = stopped_cleanly(lab)
    assert "JupyterLab stopped. Drive flushed" in out and "detached" in out, out
    assert not os.path.ismount(ws.drive) and not drive.status(ws).live
    assert not psutil.pid_exists(state.watchdog_pid) or psutil.Process(state.watchdog_pid).status() == psutil.STATUS_ZOMBIE
    assert (bucket / "colab" / "last.txt").read_text() == "written just before the lab stopped"
