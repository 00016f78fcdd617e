"""Files are published whole: new files never replace anything, failed writes leave nothing."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest

from conditioning.io import atomic
from conditioning.io.atomic import (
    atomic_output,
    temp_path_for,
    write_bytes_atomic,
    write_text_atomic,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_new_file_is_published_readable_with_nothing_left_behind(tmp_path: Path) -> None:
    target = tmp_path / "take.json"
    assert write_text_atomic(target, "{}\n") == target
    assert target.read_text(encoding="utf-8") == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == atomic.FILE_MODE
    assert leftovers(tmp_path) == []


def test_the_temp_name_is_hidden_beside_the_target_and_unique(tmp_path: Path) -> None:
    a, b = temp_path_for(tmp_path / "drums.wav"), temp_path_for(tmp_path / "drums.wav")
    assert a != b
    for tmp in (a, b):
        assert tmp.parent == tmp_path and tmp.name.startswith(".drums.wav.") and tmp.suffix == ".tmp"
        assert not tmp.exists()


def test_an_existing_file_is_refused_before_any_work(tmp_path: Path) -> None:
    target = tmp_path / "mine.rpp"
    target.write_text("the musician's own project", encoding="utf-8")
    ran = []
    with pytest.raises(FileExistsError, match=r"mine\.rpp already exists; stembridge never overwrites"):
        with atomic_output(target):
            ran.append(True)
    assert ran == []
    assert target.read_text(encoding="utf-8") == "the musician's own project"


def test_a_file_that_appears_while_writing_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "bass.wav"
    with pytest.raises(FileExistsError, match="never overwrites"):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"theirs")  # another writer wins the race
    assert target.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_in_one_rename(tmp_path: Path) -> None:
    target = tmp_path / "status.json"
    target.write_text("old", encoding="utf-8")
    write_text_atomic(target, "new", overwrite=True)
    assert target.read_text(encoding="utf-8") == "new"
    assert leftovers(tmp_path) == []


def test_a_failing_writer_leaves_neither_target_nor_temp(tmp_path: Path) -> None:
    target = tmp_path / "mix.dawproject"

    class DiskFull(OSError):
        pass

    with pytest.raises(DiskFull):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half a zip")
            raise DiskFull(errno.ENOSPC, "No space left on device")
    assert not target.exists()
    assert leftovers(tmp_path) == []


def test_a_failing_overwrite_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "resume.pt"
    target.write_bytes(b"epoch 3")
    with pytest.raises(RuntimeError):
        with atomic_output(target, overwrite=True) as tmp:
            tmp.write_bytes(b"epoch 4, half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"epoch 3"
    assert leftovers(tmp_path) == []


def test_a_missing_folder_is_an_os_error_with_nothing_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "no-such-folder" / "a.wav", b"x")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP])
def test_file_systems_without_hard_links_fall_back_to_a_checked_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """exFAT / FAT32 drives refuse hard links; the file is still published, still never over another."""

    def no_links(src: object, dst: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "link", no_links)
    target = tmp_path / "keys.wav"
    write_bytes_atomic(target, b"new take")
    assert target.read_bytes() == b"new take"
    with pytest.raises(FileExistsError):
        with atomic_output(target.with_name("lead.wav")) as tmp:
            tmp.write_bytes(b"ours")
            target.with_name("lead.wav").write_bytes(b"theirs")
    assert target.with_name("lead.wav").read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_other_link_errors_are_not_swallowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def io_error(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(atomic.os, "link", io_error)
    with pytest.raises(OSError, match="Input/output error"):
        write_bytes_atomic(tmp_path / "a.wav", b"x")
    assert list(tmp_path.iterdir()) == []


def test_racing_writers_of_one_new_name_publish_exactly_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "take-2.wav"
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    won: list[int] = []
    lost: list[int] = []
    start = threading.Barrier(len(payloads))

    def write(i: int) -> None:
        start.wait()
        try:
            write_bytes_atomic(target, payloads[i])
            won.append(i)
        except FileExistsError:
            lost.append(i)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == len(payloads) - 1
    assert target.read_bytes() == payloads[won[0]]
    assert leftovers(tmp_path) == []
