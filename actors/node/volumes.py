"""A pod's volumes on the node's disk: empty directories and files made from ConfigMaps,
Secrets and the downward API, under ``ROOT/UID/VOLUME``.

Files are swapped in atomically as the kubelet's atomic writer does: the contents go to a
fresh hidden directory, a ``..data`` link is renamed over to point at it, and each
top-level entry is a link through ``..data``. A container reading a file sees the old set
or the new one, never a mix, and an update reaches running containers without a restart
(a ``subPath`` mount, bound to one file, keeps the version it started with, as on Kubernetes).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

from shoal.runtime.prepared import PreparedPod, VolumeFiles

DATA = "..data"


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def pod_dir(self, uid: str) -> Path:
        return self.root / uid

    def write(self, uid: str, prepared: PreparedPod) -> None:
        """Make the pod's empty directories (once) and bring its file volumes up to date."""
        base = self.pod_dir(uid)
        for name in prepared.empty_dirs:
            path = base / name
            if not path.exists():
                path.mkdir(parents=True, mode=0o777)
                path.chmod(0o777)  # any user the container runs as may write, as on Kubernetes
                if prepared.fs_group is not None:
                    os.chown(path, -1, prepared.fs_group)
                    path.chmod(0o2777)
        for volume in prepared.files:
            write_files(base / volume.volume, volume, prepared.fs_group)

    def remove(self, uid: str) -> None:
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    def uids(self) -> set[str]:
        """Pods that have volumes here (to remove those of pods gone while the node was away)."""
        if not self.root.is_dir():
            return set()
        return {p.name for p in self.root.iterdir() if p.is_dir()}


def current_files(path: Path) -> dict[str, tuple[bytes, int]]:
    """What a volume directory holds now, read through its ``..data`` link."""
    data = path / DATA
    if not data.is_dir():
        return {}
    found = {}
    for file in data.rglob("*"):
        if file.is_file():
            found[str(file.relative_to(data))] = (file.read_bytes(), file.stat().st_mode & 0o777)
    return found


def write_files(path: Path, volume: VolumeFiles, fs_group: int | None) -> bool:
    """Swap ``volume``'s files into ``path``; False when they were already there."""
    if current_files(path) == volume.files and (path / DATA).exists():
        return False
    path.mkdir(parents=True, exist_ok=True)
    stamp = path / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    stamp.mkdir(mode=0o755)
    for relative, (content, mode) in volume.files.items():
        target = stamp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        if fs_group is not None:
            os.chown(target, -1, fs_group)
    previous = (path / DATA).resolve() if (path / DATA).is_symlink() else None
    link = path / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    link.symlink_to(stamp.name)
    link.rename(path / DATA)  # the one atomic step
    tops = {relative.split("/", 1)[0] for relative in volume.files}
    for top in tops:
        entry = path / top
        if not entry.is_symlink():
            entry.symlink_to(f"{DATA}/{top}")
    for entry in path.iterdir():
        if not entry.name.startswith("..") and entry.name not in tops and entry.is_symlink():
            entry.unlink()  # a key that is gone
    if previous is not None and previous != stamp.resolve():
        shutil.rmtree(previous, ignore_errors=True)
    return True
