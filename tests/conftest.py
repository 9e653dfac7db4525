"""Shared fixtures: where the real Korean data lives, and small readers of it."""
import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def shared_data_dir():
  """KOELECTRA_DATA, else ../shared/data beside the project (CI always has it)."""
  env = os.environ.get("KOELECTRA_DATA")
  return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir():
  d = shared_data_dir()
  if not d.is_dir():
    pytest.skip(f"shared data not found at {d}; set KOELECTRA_DATA")
  return d


@pytest.fixture(scope="session")
def vocab_v3(data_dir):
  return str(data_dir / "vocab" / "v3" / "vocab.txt")


@pytest.fixture(scope="session")
def vocab_v1(data_dir):
  return str(data_dir / "vocab" / "v1" / "vocab.txt")


def head_lines(path, n):
  """The first n non-empty lines of a text file."""
  out = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if line:
        out.append(line)
        if len(out) >= n:
          break
  return out
