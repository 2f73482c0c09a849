"""powerfs, the filesystem the power-loss tests run lifeboat on, catches a missing
sync: what was written and not synced is gone after a cut, a name whose directory
was not synced is gone (or back, for a removal or a rename), and what was synced
survives, byte for byte."""

import os
import socket

import pytest

from powerfs import PowerFs

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="needs /dev/fuse")


@pytest.fixture
def fs(tmp_path):
    mounted = PowerFs(tmp_path / "mnt")
    yield mounted
    mounted.close()


def sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(path, data, sync=False, mode="wb"):
    with open(path, mode) as f:
        f.write(data)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def test_a_write_without_sync_is_gone_after_a_cut(fs):
    root = fs.mountpoint
    write(root / "file", b"synced", sync=True)
    sync_dir(root)
    write(root / "file", b" and then more", mode="ab")
    write(root / "never-synced", b"data")
    sync_dir(root)
    assert (root / "file").read_bytes() == b"synced and then more", "visible before the cut"
    fs.cut()
    assert (root / "file").read_bytes() == b"synced"
    assert (root / "never-synced").read_bytes() == b"", "its name was synced, its data never"
    assert fs.stats()["dropped_bytes"] == len(b" and then more") + len(b"data")


def test_fdatasync_and_a_rewrite_in_place_and_a_truncation(fs):
    root = fs.mountpoint
    sync_dir(root)
    fd = os.open(root / "log", os.O_CREAT | os.O_RDWR, 0o600)
    sync_dir(root)
    os.pwrite(fd, b"A" * 100, 0)
    os.fdatasync(fd)
    os.pwrite(fd, b"B" * 10, 50)
    os.pwrite(fd, b"C" * 10, 200)  # past the end: a hole before it
    os.fdatasync(fd)
    os.ftruncate(fd, 60)
    os.pwrite(fd, b"D", 0)
    os.close(fd)
    assert len((root / "log").read_bytes()) == 60
    fs.cut()
    assert (root / "log").read_bytes() == b"A" * 50 + b"B" * 10 + b"A" * 40 + bytes(100) + b"C" * 10


def test_a_name_is_durable_only_once_its_directory_is_synced(fs):
    root = fs.mountpoint
    os.mkdir(root / "d")
    sync_dir(root)
    write(root / "d" / "synced-file-unsynced-name", b"x", sync=True)
    write(root / "d" / "kept", b"kept", sync=True)
    sync_dir(root / "d")
    write(root / "d" / "late", b"late", sync=True)
    os.rename(root / "d" / "kept", root / "d" / "renamed")
    os.mkdir(root / "new-dir")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "d" / "admin.sock"))
    server.close()
    assert sorted(os.listdir(root / "d")) == ["admin.sock", "late", "renamed", "synced-file-unsynced-name"]
    fs.cut()
    assert sorted(os.listdir(root / "d")) == ["kept", "synced-file-unsynced-name"]
    assert (root / "d" / "kept").read_bytes() == b"kept"
    assert not (root / "new-dir").exists()


def test_a_removal_without_a_directory_sync_comes_back(fs):
    root = fs.mountpoint
    write(root / "old", b"old", sync=True)
    sync_dir(root)
    os.unlink(root / "old")
    write(root / "tmp", b"new", sync=True)
    os.rename(root / "tmp", root / "target")
    assert sorted(os.listdir(root)) == ["target"]
    fs.cut()
    assert sorted(os.listdir(root)) == ["old"]
    assert (root / "old").read_bytes() == b"old"
    # Synced, the same steps stay.
    os.unlink(root / "old")
    write(root / "tmp", b"new", sync=True)
    os.rename(root / "tmp", root / "target")
    sync_dir(root)
    fs.cut()
    assert sorted(os.listdir(root)) == ["target"]
    assert (root / "target").read_bytes() == b"new"


def test_an_open_file_that_was_unlinked_keeps_working_until_closed(fs):
    root = fs.mountpoint
    with open(root / "f", "w+b") as f:
        os.unlink(root / "f")
        f.write(b"still here")
        f.flush()
        f.seek(0)
        assert f.read() == b"still here"
        os.fsync(f.fileno())
    assert os.listdir(root) == []
