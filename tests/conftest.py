"""Shared fixtures: the real Korean data (located by util/shared_data.py) and a Cloud
Storage emulator."""
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from util.shared_data import COMMENTS, ROOT, head_lines, shared_data_dir  # noqa: F401 (for the tests)

BUCKET = "koelectra-test"  # the emulator's default bucket


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


def write_comments_corpus(folder, n):
  """`folder`/corpus/comments.txt: the first `n` shared news comments, a blank line after
  every 10 (several documents, as the corpus builder expects). Returns the corpus folder."""
  corpus = pathlib.Path(folder) / "corpus"
  corpus.mkdir(parents=True, exist_ok=True)
  lines = head_lines(shared_data_dir() / COMMENTS, n)
  text = "\n\n".join("\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10))
  (corpus / "comments.txt").write_text(text + "\n", encoding="utf-8")
  return corpus


# --- Cloud Storage: gcp-storage-emulator on 127.0.0.1 -------------------------------------

def free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
  """(host URL, on-disk storage directory) of a running emulator; stopped at the end."""
  data = tmp_path_factory.mktemp("emulator")
  port = free_port()
  # Objects on disk under `data`, so a test can corrupt stored bytes as bit rot would.
  proc = subprocess.Popen(
      [sys.executable, "-m", "gcp_storage_emulator", "-d", str(data), "start",
       "--host", "127.0.0.1", "--port", str(port), "--default-bucket", BUCKET, "-q"],
      cwd=str(data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  url = f"http://127.0.0.1:{port}"
  deadline = time.time() + 60
  while True:
    try:
      with urllib.request.urlopen(url + "/", timeout=2) as r:
        if r.status == 200:
          break
    except OSError:
      pass
    if proc.poll() is not None or time.time() > deadline:
      proc.kill()
      raise RuntimeError(f"gcp-storage-emulator did not answer on {url}")
    time.sleep(0.2)
  try:
    yield url, data
  finally:
    proc.terminate()
    try:
      proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
      proc.kill()


@pytest.fixture
def gcs_env(emulator, monkeypatch, tmp_path):
  """STORAGE_EMULATOR_HOST set; upload sessions kept under this test's tmp_path."""
  monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator[0])
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
  return emulator
