"""util/fileio: atomic writes leave either the whole file or nothing."""
import os

import pytest

from util import fileio


def test_atomic_write_appears_only_when_complete(tmp_path):
  target = tmp_path / "out.txt"
  with fileio.atomic_write(str(target)) as f:
    f.write("한국어\n")
    assert not target.exists()  # still under a temporary name
    assert len(os.listdir(tmp_path)) == 1
  assert target.read_text(encoding="utf-8") == "한국어\n"
  assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_failure_leaves_nothing_and_keeps_old_file(tmp_path):
  target = tmp_path / "out.txt"
  target.write_text("old", encoding="utf-8")
  with pytest.raises(RuntimeError):
    with fileio.atomic_write(str(target)) as f:
      f.write("half")
      raise RuntimeError("interrupted")
  assert target.read_text(encoding="utf-8") == "old"
  assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_for_writers_that_take_a_filename(tmp_path):
  target = tmp_path / "shard.bin"
  with fileio.atomic_path(str(target)) as tmp:
    assert os.path.basename(tmp).startswith(".tmp-")
    with open(tmp, "wb") as f:
      f.write(b"\x00\x01")
  assert target.read_bytes() == b"\x00\x01"
  assert fileio.glob(str(tmp_path / "*")) == [str(target)]
