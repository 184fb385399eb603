"""drivelab.workspace: init (idempotent, keeps user edits, refreshes stale seeds) and find."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import pytest

from drivelab.errors import WorkspaceError
from drivelab.workspace import WORKSPACE_ENV, Workspace, find_workspace, init_workspace

MAIN = "drive/colab/main.py"
NOTEBOOK = "drive/colab/getting-started.ipynb"
CONFIG = ".drivelab/config.json"


def seed_bytes() -> bytes:
    """The main.py this drivelab version ships."""
    return resources.files("drivelab").joinpath("_seed", "colab", "main.py").read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_seeds(root: Path) -> dict:
    return json.loads((root / ".drivelab" / "seeds.json").read_text())


@pytest.fixture(autouse=True)
def _no_workspace_env(monkeypatch):
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)


# -- init ---------------------------------------------------------------------------


def test_init_creates_the_tree_config_and_main_script(tmp_path):
    root = tmp_path / "lab"
    result = init_workspace(root)

    ws = result.workspace
    assert ws.root == root.resolve()
    for d in ("drive/colab", "drive/dataset", "drive/runs", ".drivelab"):
        assert (root / d).is_dir(), d
    assert (root / MAIN).read_bytes() == seed_bytes()
    config = json.loads((root / CONFIG).read_text())
    assert config["version"] == 1
    assert config["drive"] == {"type": "local"}
    assert sorted(result.created) == sorted([MAIN, NOTEBOOK, CONFIG])
    assert result.updated == [] and result.kept == []
    assert ws.exists()
    assert ws.main_script == root.resolve() / MAIN
    assert ws.run_dir("r1") == root.resolve() / "drive" / "runs" / "r1"
    # seeds.json records what init placed, so a later init can tell user edits apart.
    assert set(read_seeds(root)) == {MAIN, NOTEBOOK}
    assert read_seeds(root)[MAIN] == sha256(seed_bytes())
    assert not list(root.rglob("*.incomplete"))


def test_init_resolves_a_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = init_workspace("rel/lab")
    assert result.workspace.root == (tmp_path / "rel" / "lab").resolve()
    assert result.workspace.root.is_absolute()
    assert (tmp_path / "rel" / "lab" / MAIN).is_file()


def test_init_completes_an_existing_non_empty_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = init_workspace(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert MAIN in result.created
    assert Workspace(tmp_path.resolve()).exists()


def test_init_twice_creates_nothing_and_keeps_files(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / "drive" / "dataset" / "data.bin").write_bytes(b"\x00\x01")
    (tmp_path / "drive" / "runs" / "r1").mkdir()
    main_stat = (tmp_path / MAIN).stat()
    config_before = (tmp_path / CONFIG).read_bytes()

    again = init_workspace(tmp_path)

    assert again.created == [] and again.updated == [] and again.kept == []
    assert (tmp_path / MAIN).read_bytes() == seed_bytes()
    assert (tmp_path / MAIN).stat().st_mtime_ns == main_stat.st_mtime_ns  # not rewritten
    assert (tmp_path / CONFIG).read_bytes() == config_before
    assert (tmp_path / "drive" / "dataset" / "data.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "drive" / "runs" / "r1").is_dir()


def test_init_restores_a_deleted_main_script(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / MAIN).unlink()
    result = init_workspace(tmp_path)
    assert result.created == [MAIN]
    assert (tmp_path / MAIN).read_bytes() == seed_bytes()


def test_init_keeps_a_config_the_user_changed(tmp_path):
    init_workspace(tmp_path)
    custom = json.dumps({"version": 1, "drive": {"type": "rclone", "remote": "gdrive:"}})
    (tmp_path / CONFIG).write_text(custom)
    result = init_workspace(tmp_path)
    assert CONFIG not in result.created
    assert (tmp_path / CONFIG).read_text() == custom


def test_edited_main_script_is_kept_and_force_replaces_it(tmp_path):
    init_workspace(tmp_path)
    edited = b"# my own experiment\nprint('hello')\n"
    (tmp_path / MAIN).write_bytes(edited)

    kept = init_workspace(tmp_path)
    assert kept.kept == [MAIN]
    assert kept.created == [] and kept.updated == []
    assert (tmp_path / MAIN).read_bytes() == edited

    # Still the user's after another plain init: the edit is not forgotten.
    assert init_workspace(tmp_path).kept == [MAIN]
    assert (tmp_path / MAIN).read_bytes() == edited

    forced = init_workspace(tmp_path, force=True)
    assert forced.updated == [MAIN]
    assert forced.kept == [] and forced.created == []
    assert (tmp_path / MAIN).read_bytes() == seed_bytes()
    assert read_seeds(tmp_path)[MAIN] == sha256(seed_bytes())

    # Once replaced, the workspace is back to a clean, idempotent state.
    clean = init_workspace(tmp_path)
    assert clean.created == [] and clean.updated == [] and clean.kept == []


def test_unedited_seed_from_an_older_version_is_refreshed(tmp_path):
    init_workspace(tmp_path)
    # As if an older drivelab had placed a different main.py and recorded it.
    old = b"# main.py as drivelab 0.0.1 shipped it\n"
    (tmp_path / MAIN).write_bytes(old)
    (tmp_path / ".drivelab" / "seeds.json").write_text(json.dumps({MAIN: sha256(old)}))

    result = init_workspace(tmp_path)

    assert result.updated == [MAIN]
    assert result.kept == [] and result.created == []
    assert (tmp_path / MAIN).read_bytes() == seed_bytes()
    assert read_seeds(tmp_path)[MAIN] == sha256(seed_bytes())


@pytest.mark.parametrize("seeds_text", [None, "{not json", json.dumps({MAIN: "0" * 64})])
def test_main_script_is_kept_when_its_origin_is_unknown(tmp_path, seeds_text):
    """No record (or a broken or different one) of what init placed: assume the user edited it."""
    init_workspace(tmp_path)
    mine = b"print('mine')\n"
    (tmp_path / MAIN).write_bytes(mine)
    seeds = tmp_path / ".drivelab" / "seeds.json"
    if seeds_text is None:
        seeds.unlink()
    else:
        seeds.write_text(seeds_text)

    result = init_workspace(tmp_path)

    assert result.kept == [MAIN]
    assert (tmp_path / MAIN).read_bytes() == mine


def test_seeds_file_that_is_not_an_object_is_ignored(tmp_path):
    init_workspace(tmp_path)
    (tmp_path / ".drivelab" / "seeds.json").write_text("[]\n")
    result = init_workspace(tmp_path)
    assert result.created == [] and result.kept == []
    assert read_seeds(tmp_path)[MAIN] == sha256(seed_bytes())


def test_init_on_a_file_raises_workspace_error(tmp_path):
    target = tmp_path / "afile"
    target.write_text("keep me")
    with pytest.raises(WorkspaceError) as info:
        init_workspace(target)
    assert str(target) in info.value.message
    assert "not a directory" in info.value.message
    assert info.value.hint
    assert target.read_text() == "keep me"


def test_init_below_a_file_raises_workspace_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(WorkspaceError) as info:
        init_workspace(blocker / "lab")
    assert str(blocker / "lab") in info.value.message
    assert info.value.hint
    assert isinstance(info.value.__cause__, OSError)  # the cause is chained


# -- find ---------------------------------------------------------------------------


def test_find_workspace_walks_up_from_inside(tmp_path):
    root = init_workspace(tmp_path / "lab").workspace.root
    deep = root / "drive" / "runs" / "r1" / "sub"
    deep.mkdir(parents=True)
    for start in (root, root / "drive" / "colab", root / "drive" / "colab" / "main.py", deep):
        assert find_workspace(start) == Workspace(root), start
    assert find_workspace(str(root / "drive" / "colab")).root == root


def test_find_workspace_defaults_to_the_cwd(tmp_path, monkeypatch):
    root = init_workspace(tmp_path / "lab").workspace.root
    monkeypatch.chdir(root / "drive" / "colab")
    assert find_workspace().root == root


def test_find_workspace_reads_the_env_var_when_called(tmp_path, monkeypatch):
    root = init_workspace(tmp_path / "lab").workspace.root
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(WORKSPACE_ENV, str(root))
    assert find_workspace().root == root
    # An explicit start wins over the environment.
    other = init_workspace(tmp_path / "other").workspace.root
    assert find_workspace(other).root == other


def test_find_workspace_without_one_raises_with_a_hint(tmp_path, monkeypatch):
    empty = tmp_path / "nothing" / "here"
    empty.mkdir(parents=True)
    # A .drivelab folder alone (no config.json) does not make a workspace.
    (tmp_path / "nothing" / ".drivelab").mkdir()
    with pytest.raises(WorkspaceError) as info:
        find_workspace(empty)
    err = info.value
    assert str(empty.resolve()) in err.message
    assert "no drivelab workspace" in err.message
    assert err.hint and "drivelab init" in err.hint
    assert WORKSPACE_ENV in err.hint

    monkeypatch.chdir(empty)
    with pytest.raises(WorkspaceError):
        find_workspace()


def test_something_in_the_way_of_main_script_is_a_clear_error(tmp_path):
    (tmp_path / "drive" / "colab" / "main.py").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match="in the way") as info:
        init_workspace(tmp_path)
    assert info.value.hint
