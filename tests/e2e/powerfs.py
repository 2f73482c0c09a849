"""powerfs: a small FUSE filesystem that can lose power.

It keeps everything in memory, in two layers: what the programs on it see now, and
what would survive a power cut. A power cut (`PowerFs.cut()`) throws the first layer
away, keeps only the second, and mounts the filesystem again, as a machine that
reboots would find its disk.

The durability rule is what POSIX and ext4 promise, and nothing more:

- A file's data and size are durable as of the last `fsync` or `fdatasync` of that
  file (through any of its descriptors). Every later `write` and truncation is
  pending. `close`, `sync_file_range` and the kernel's own writeback make nothing
  durable (FUSE does not even pass `sync_file_range` on; on ext4 it neither writes
  the size of a grown file nor flushes the disk's cache).
- A directory's entries are durable as of the last `fsync` of that directory: a
  name created, renamed in or out, or removed after it is pending. A `fsync` of a
  new file does not make its name durable (ext4's journal often does, in practice,
  but ext4 does not promise it; `fsync(2)` says to sync the directory). Each
  directory of a rename is its own: only syncing both makes the rename whole.
- After a cut, a file whose name survived but whose data was never synced is empty,
  a directory never synced is empty, and what no surviving name reaches is gone.
  Modes, owners and times are not modelled (they survive as they are).

Run as a program (`python powerfs.py MOUNTPOINT`) it mounts and then reads commands
on standard input, answering each on standard output: `arm N` (the power goes at
the N-th change from now, see `PowerCutFs.arm`; answers `armed`), `cut` (the power
goes, if it has not yet; unmount, drop the pending layer, mount again; answers
`ready`), `stats` (a JSON line of counters), `quit`. `PowerFs` runs it as a child process for the tests.
"""

import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Node:
    """One inode: a file (`data`), a directory (`entries`) or anything else (a socket)."""

    _next = 1

    def __init__(self, mode, uid=0, gid=0):
        self.ino = Node._next
        Node._next += 1
        self.mode = mode
        self.uid, self.gid = uid, gid
        now = time.time_ns()
        self.atime = self.mtime = self.ctime = now
        if stat.S_ISDIR(mode):
            self.entries = {}
            self.durable_entries = {}
        elif stat.S_ISREG(mode):
            self.data = bytearray()
            self.durable = b""
            # Byte ranges written since the last sync, and the shortest length the file
            # was truncated to since: what a sync copies into `durable`.
            self.dirty = []
            self.shortest = 0

    def is_dir(self):
        return stat.S_ISDIR(self.mode)

    def is_file(self):
        return stat.S_ISREG(self.mode)

    def touch(self):
        self.mtime = self.ctime = time.time_ns()

    # Files.
    def write(self, data, offset):
        end = offset + len(data)
        if offset > len(self.data):
            self.dirty.append((len(self.data), offset))
            self.data.extend(bytes(offset - len(self.data)))
        self.data[offset:end] = data
        self.dirty.append((offset, end))
        if len(self.dirty) > 256:
            self.dirty = merge(self.dirty)
        self.touch()

    def truncate(self, length):
        old = len(self.data)
        if length < old:
            del self.data[length:]
            self.shortest = min(self.shortest, length)
        elif length > old:
            self.data.extend(bytes(length - old))
            self.dirty.append((old, length))
        self.touch()

    def sync(self):
        """fsync/fdatasync: the file's data and size as they are now become durable."""
        durable = bytearray(self.durable[: min(self.shortest, len(self.durable))])
        if len(durable) < len(self.data):
            durable.extend(bytes(len(self.data) - len(durable)))
        else:
            del durable[len(self.data):]
        for start, end in merge(self.dirty):
            durable[start:end] = self.data[start:end]
        self.durable = bytes(durable)
        self.dirty = []
        self.shortest = len(self.data)

    def pending_bytes(self):
        return sum(e - s for s, e in merge(self.dirty)) + max(0, len(self.durable) - len(self.data))


def merge(ranges):
    out = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


class PowerCutFs:
    """The filesystem's state and operations (mfusepy's high-level, path-based API)."""

    use_ns = True

    def __init__(self):
        self.lock = threading.RLock()
        self.root = Node(stat.S_IFDIR | 0o755)
        self.handles = {}
        self.next_fh = 1
        self.armed = None  # changes left before the power goes (see arm)
        self.frozen_at = None  # the change the power went at
        self.dead = False  # the power went; nothing changes until the cut
        self.thaw = threading.Event()
        self.stats = {"fsyncs": 0, "dir_fsyncs": 0, "cuts": 0, "dropped_bytes": 0, "dropped_names": 0, "last_cut": {}}

    # Lookups.
    def _walk(self, path):
        node = self.root
        for part in [p for p in path.split("/") if p]:
            if not node.is_dir():
                raise oserror(errno.ENOTDIR)
            node = node.entries.get(part)
            if node is None:
                raise oserror(errno.ENOENT)
        return node

    def _parent(self, path):
        head, _, name = path.rstrip("/").rpartition("/")
        parent = self._walk(head or "/")
        if not parent.is_dir():
            raise oserror(errno.ENOTDIR)
        return parent, name

    def _node(self, path, fh=None):
        if fh is not None and fh in self.handles:
            return self.handles[fh]
        return self._walk(path)

    def _open(self, node):
        fh = self.next_fh
        self.next_fh += 1
        self.handles[fh] = node
        return fh

    # The moment of the cut.
    def arm(self, ops):
        """The power goes just before the `ops`-th change from now (a write, a sync, a
        name made or removed): that change and every later one never happen, and the
        programs using the filesystem hang in it until the cut."""
        with self.lock:
            self.armed, self.frozen_at = ops, None

    def _gate(self, op, path):
        with self.lock:
            if self.dead:
                raise oserror(errno.EIO)
            if self.armed is not None:
                self.armed -= 1
                if self.armed <= 0:
                    self.armed, self.frozen_at = None, f"{op} {path}"
                    self.thaw.clear()
            frozen = self.frozen_at is not None
        if frozen:
            self.thaw.wait()
            raise oserror(errno.EIO)

    def lose_power(self):
        """From now on nothing changes any more; a frozen change fails."""
        with self.lock:
            self.dead = True
            self.armed = None
        self.thaw.set()

    # The power cut.
    def power_cut(self):
        """Keeps only what was made durable (see the module doc)."""
        with self.lock:
            seen = set()
            last = self.stats["last_cut"] = {}

            def revert(node, path):
                if node.ino in seen:
                    return
                seen.add(node.ino)
                if node.is_file():
                    dropped = node.pending_bytes()
                    if dropped:
                        last[path] = dropped
                    self.stats["dropped_bytes"] += dropped
                    node.data = bytearray(node.durable)
                    node.dirty, node.shortest = [], len(node.durable)
                elif node.is_dir():
                    changed = set(node.entries.items()) ^ set(node.durable_entries.items())
                    if changed:
                        last[path + "/"] = sorted({name for name, _ in changed})
                    self.stats["dropped_names"] += len(changed)
                    node.entries = dict(node.durable_entries)
                    for name, child in node.entries.items():
                        revert(child, f"{path}/{name}")

            revert(self.root, "")
            self.handles.clear()
            self.stats["cuts"] += 1
            self.stats["frozen_at"] = self.frozen_at
            self.dead, self.frozen_at = False, None

    # Operations.
    def init(self, path):
        pass

    def destroy(self, path):
        pass

    def getattr(self, path, fh=None):
        with self.lock:
            node = self._node(path, fh)
            size = len(node.data) if node.is_file() else (4096 if node.is_dir() else 0)
            return {
                "st_ino": node.ino,
                "st_mode": node.mode,
                "st_nlink": 2 if node.is_dir() else 1,
                "st_uid": node.uid,
                "st_gid": node.gid,
                "st_size": size,
                "st_blocks": (size + 511) // 512,
                "st_blksize": 4096,
                "st_atime": node.atime,
                "st_mtime": node.mtime,
                "st_ctime": node.ctime,
            }

    def access(self, path, amode):
        with self.lock:
            self._walk(path)
            return 0

    def statfs(self, path):
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1 << 20, "f_bfree": 1 << 19, "f_bavail": 1 << 19, "f_files": 1 << 16, "f_ffree": 1 << 15, "f_namemax": 255}

    def readdir(self, path, fh):
        with self.lock:
            node = self._node(path, fh)
            # With use_ino the inode numbers are ours; a 0 would hide the entry.
            listed = [(".", node), ("..", node)] + list(node.entries.items())
            return [(name, {"st_mode": n.mode, "st_ino": n.ino}, 0) for name, n in listed]

    def opendir(self, path):
        with self.lock:
            node = self._walk(path)
            if not node.is_dir():
                raise oserror(errno.ENOTDIR)
            return self._open(node)

    def releasedir(self, path, fh):
        with self.lock:
            self.handles.pop(fh, None)
            return 0

    def fsyncdir(self, path, datasync, fh):
        self._gate("fsyncdir", path)
        with self.lock:
            node = self._node(path, fh)
            node.durable_entries = dict(node.entries)
            self.stats["dir_fsyncs"] += 1
            return 0

    def _make(self, path, mode):
        parent, name = self._parent(path)
        if name in parent.entries:
            raise oserror(errno.EEXIST)
        node = Node(mode)
        parent.entries[name] = node
        parent.touch()
        return node

    def mkdir(self, path, mode):
        self._gate("mkdir", path)
        with self.lock:
            self._make(path, stat.S_IFDIR | (mode & 0o7777))
            return 0

    def mknod(self, path, mode, dev):
        self._gate("mknod", path)
        with self.lock:
            self._make(path, mode)
            return 0

    def create(self, path, mode, fi=None):
        self._gate("create", path)
        with self.lock:
            node = self._make(path, stat.S_IFREG | (mode & 0o7777))
            return self._open(node)

    def open(self, path, flags):
        with self.lock:
            node = self._walk(path)
            if node.is_dir():
                raise oserror(errno.EISDIR)
            if flags & os.O_TRUNC and node.is_file():
                node.truncate(0)
            return self._open(node)

    def release(self, path, fh):
        with self.lock:
            self.handles.pop(fh, None)
            return 0

    def flush(self, path, fh):
        return 0

    def read(self, path, size, offset, fh):
        with self.lock:
            node = self._node(path, fh)
            return bytes(node.data[offset : offset + size])

    def write(self, path, data, offset, fh):
        self._gate("write", path)
        with self.lock:
            node = self._node(path, fh)
            node.write(data, offset)
            return len(data)

    def truncate(self, path, length, fh=None):
        self._gate("truncate", path)
        with self.lock:
            node = self._node(path, fh)
            if not node.is_file():
                raise oserror(errno.EINVAL)
            node.truncate(length)
            return 0

    def fsync(self, path, datasync, fh):
        self._gate("fsync", path)
        with self.lock:
            node = self._node(path, fh)
            if node.is_file():
                node.sync()
            self.stats["fsyncs"] += 1
            return 0

    def unlink(self, path):
        self._gate("unlink", path)
        with self.lock:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise oserror(errno.ENOENT)
            if node.is_dir():
                raise oserror(errno.EISDIR)
            del parent.entries[name]
            parent.touch()
            return 0

    def rmdir(self, path):
        self._gate("rmdir", path)
        with self.lock:
            parent, name = self._parent(path)
            node = parent.entries.get(name)
            if node is None:
                raise oserror(errno.ENOENT)
            if not node.is_dir():
                raise oserror(errno.ENOTDIR)
            if node.entries:
                raise oserror(errno.ENOTEMPTY)
            del parent.entries[name]
            parent.touch()
            return 0

    def rename(self, old, new):
        self._gate("rename", old)
        with self.lock:
            src, src_name = self._parent(old)
            dst, dst_name = self._parent(new)
            node = src.entries.get(src_name)
            if node is None:
                raise oserror(errno.ENOENT)
            target = dst.entries.get(dst_name)
            if target is not None and target.is_dir():
                if not node.is_dir():
                    raise oserror(errno.EISDIR)
                if target.entries:
                    raise oserror(errno.ENOTEMPTY)
            del src.entries[src_name]
            dst.entries[dst_name] = node
            src.touch()
            dst.touch()
            return 0

    def chmod(self, path, mode):
        with self.lock:
            node = self._walk(path)
            node.mode = (node.mode & ~0o7777) | (mode & 0o7777)
            node.ctime = time.time_ns()
            return 0

    def chown(self, path, uid, gid):
        with self.lock:
            node = self._walk(path)
            if uid != -1 and uid != 0xFFFFFFFF:
                node.uid = uid
            if gid != -1 and gid != 0xFFFFFFFF:
                node.gid = gid
            return 0

    def utimens(self, path, times=None):
        with self.lock:
            node = self._walk(path)
            now = time.time_ns()
            node.atime, node.mtime = times if times else (now, now)
            return 0


def oserror(code):
    import mfusepy

    return mfusepy.FuseOSError(code)


def serve(mountpoint):
    """Mounts, answers `ready`, then serves commands from standard input."""
    import mfusepy

    fs = PowerCutFs()
    state = {"quit": False, "cut": False}
    mounted = threading.Event()

    # A plain object, not a subclass of mfusepy.Operations: FUSE is given every
    # operation the object has, and the base class's defaults (write_buf, lock, ...)
    # would be preferred over ours or refuse what the kernel does well by itself.
    class Ops:
        use_ns = True

        def init(self, path):
            mounted.set()

    for name in [n for n in dir(PowerCutFs) if not n.startswith("_") and n not in ("power_cut", "use_ns", "init")]:
        setattr(Ops, name, staticmethod(getattr(fs, name)))

    def unmount():
        # The programs killed at the cut may take a moment to let go of the mount.
        for _ in range(200):
            if subprocess.run(["fusermount3", "-u", mountpoint], capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        subprocess.run(["fusermount3", "-u", mountpoint], check=True)

    def commands():
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                with fs.lock:
                    print(json.dumps(dict(fs.stats, frozen=fs.frozen_at)), flush=True)
            elif command.startswith("arm "):
                fs.arm(int(command.split()[1]))
                print("armed", flush=True)
            elif command in ("cut", "quit"):
                mounted.wait()
                state[command] = True
                fs.lose_power()
                unmount()
                if command == "quit":
                    return
            elif command:
                print(f"error unknown command {command!r}", flush=True)
        state["quit"] = True
        if mounted.is_set():
            unmount()

    threading.Thread(target=commands, daemon=True).start()
    options = dict(foreground=True, nothreads=True, fsname="powerfs", subtype="powerfs", hard_remove=True, use_ino=True, default_permissions=False)
    import warnings

    warnings.simplefilter("ignore", DeprecationWarning)
    while True:
        ready = threading.Thread(target=lambda: (mounted.wait(), print("ready", flush=True)), daemon=True)
        ready.start()
        mfusepy.FUSE(Ops(), mountpoint, **options)
        mounted.clear()
        if not state["cut"]:
            return  # asked to quit, or unmounted by someone else
        state["cut"] = False
        fs.power_cut()


class PowerFs:
    """powerfs mounted on `mountpoint` by a child process, for the tests."""

    def __init__(self, mountpoint):
        self.mountpoint = Path(mountpoint)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "powerfs.py"), str(self.mountpoint)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, word):
        line = self.process.stdout.readline().strip()
        if line != word:
            raise AssertionError(f"powerfs answered {line!r}, not {word!r} (exit {self.process.poll()})")

    def _send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def arm(self, ops):
        """See `PowerCutFs.arm`."""
        self._send(f"arm {ops}")
        self._expect("armed")

    def cut(self):
        """The power goes (if it has not at an armed change) and comes back: only what
        was made durable is left. Kill the processes using the mount first: they are
        let go of here, and the mount is back once they have ended."""
        self._send("cut")
        self._expect("ready")

    def stats(self):
        self._send("stats")
        return json.loads(self.process.stdout.readline())

    def close(self):
        if self.process.poll() is None:
            self._send("quit")
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)])


if __name__ == "__main__":
    serve(sys.argv[1])
