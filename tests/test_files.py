"""Atomic output: an interrupted write leaves the old file and no debris."""

from __future__ import annotations

import os

import pytest

from codec.errors import OutputExistsError
from codec.files import atomic_write, check_writable


def test_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_write_replaces_the_content(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"


def test_check_writable(tmp_path):
    (tmp_path / "exists").write_bytes(b"")
    with pytest.raises(OutputExistsError, match="already exists"):
        check_writable(tmp_path / "exists", force=False)
    check_writable(tmp_path / "exists", force=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable(tmp_path / "missing" / "x.bin", force=False)
