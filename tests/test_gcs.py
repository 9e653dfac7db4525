"""util/gcs against gcp-storage-emulator on 127.0.0.1 (a subprocess on a free port).

A directory tree of real Korean text goes up and comes back byte for byte; a second run
skips everything; bytes corrupted on the server are caught by the CRC32C check and leave
nothing under the final name; interrupted chunked uploads and ranged downloads resume from
where they stopped; missing bucket and missing credentials are one line and exit status 2;
no token or session id reaches any log line.
"""
import logging
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import BUCKET, ROOT, free_port
from util import gcs

CHUNK = gcs.CHUNK_QUANTUM  # 256 KiB: the smallest resumable chunk


@pytest.fixture
def env(gcs_env):
  return gcs_env


@pytest.fixture(scope="module")
def tree(tmp_path_factory, data_dir):
  """A small corpus-like tree: real Korean text, a nested file, an empty file, ~700 KB."""
  root = tmp_path_factory.mktemp("tree") / "data"
  (root / "corpus" / "nested").mkdir(parents=True)
  comments = (data_dir / "corpus" / "hate-speech-unlabeled" /
              "unlabeled_comments_5.txt").read_bytes()
  (root / "corpus" / "comments.txt").write_bytes(comments[:300_000])
  (root / "corpus" / "nested" / "more.txt").write_bytes(comments[300_000:700_000])
  (root / "vocab.txt").write_bytes((data_dir / "vocab" / "v3" / "vocab.txt").read_bytes()[:4096])
  (root / "empty.txt").write_bytes(b"")
  return root


def _files(root):
  root = pathlib.Path(root)
  return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
          if p.is_file()}


def _stored_path(data, name):
  """The emulator's on-disk copy of object `name` (its storage layout: .../BUCKET/NAME)."""
  hits = [p for p in pathlib.Path(data).rglob(name.split("/")[-1])
          if p.as_posix().endswith(f"{BUCKET}/{name}")]
  assert len(hits) == 1, hits
  return hits[0]


def test_emulator_stores_and_returns_crc32c(env, tmp_path):
  path = tmp_path / "x.bin"
  path.write_bytes(b"ELECTRA" * 1000)
  gcs.copy(str(path), f"gs://{BUCKET}/crc/x.bin", progress=False)
  [entry] = gcs.list_objects(f"gs://{BUCKET}/crc/x.bin")
  assert entry.crc32c == gcs.crc32c_file(str(path))
  assert entry.size == 7000


def test_tree_round_trip_then_skip(env, tree, tmp_path):
  up = gcs.copy(str(tree), f"gs://{BUCKET}/run1/data", recursive=True, jobs=3,
                chunk_size=CHUNK, progress=False)
  assert (up.copied, up.skipped) == (4, 0)
  assert up.bytes_copied == sum(len(b) for b in _files(tree).values())
  listed = {e.url for e in gcs.list_objects(f"gs://{BUCKET}/run1/data", recursive=True)}
  assert listed == {f"gs://{BUCKET}/run1/data/{rel}" for rel in _files(tree)}

  down = tmp_path / "back"
  got = gcs.copy(f"gs://{BUCKET}/run1/data", str(down), recursive=True, jobs=3,
                 chunk_size=CHUNK, progress=False)
  assert got.copied == 4
  assert _files(down) == _files(tree)
  assert not list(down.rglob(".*.part"))

  again_up = gcs.copy(str(tree), f"gs://{BUCKET}/run1/data", recursive=True,
                      progress=False)
  again_down = gcs.copy(f"gs://{BUCKET}/run1/data", str(down), recursive=True,
                        progress=False)
  assert (again_up.copied, again_up.skipped) == (0, 4)
  assert (again_down.copied, again_down.skipped) == (0, 4)
  assert "skipped 4 already identical" in again_down.summary()

  # One changed file is copied again; the others are still skipped.
  changed = down / "corpus" / "comments.txt"
  changed.write_bytes(changed.read_bytes()[:-1] + b"!")
  fix = gcs.copy(f"gs://{BUCKET}/run1/data", str(down), recursive=True, progress=False)
  assert (fix.copied, fix.skipped) == (1, 3)
  assert _files(down) == _files(tree)


def test_single_file_destinations(env, tree, tmp_path):
  src = tree / "vocab.txt"
  gcs.copy(str(src), f"gs://{BUCKET}/single/", progress=False)
  gcs.copy(f"gs://{BUCKET}/single/vocab.txt", str(tmp_path) + "/", progress=False)
  gcs.copy(f"gs://{BUCKET}/single/vocab.txt", str(tmp_path / "renamed.txt"), progress=False)
  assert (tmp_path / "vocab.txt").read_bytes() == src.read_bytes()
  assert (tmp_path / "renamed.txt").read_bytes() == src.read_bytes()
  gcs.copy(f"gs://{BUCKET}/single/vocab.txt", str(tmp_path / "r"), recursive=True,
           progress=False)
  assert (tmp_path / "r").read_bytes() == src.read_bytes()
  with pytest.raises(gcs.GcsError, match="is a directory; use cp -r"):
    gcs.copy(str(tree), f"gs://{BUCKET}/single/", progress=False)
  with pytest.raises(gcs.GcsError, match="is a prefix holding 1 object"):
    gcs.copy(f"gs://{BUCKET}/single", str(tmp_path / "x"), progress=False)


def test_corrupted_download_leaves_nothing(env, tree, tmp_path):
  url, data = env
  gcs.copy(str(tree / "corpus" / "comments.txt"), f"gs://{BUCKET}/bad/comments.txt",
           progress=False)
  stored = _stored_path(data, "bad/comments.txt")
  raw = bytearray(stored.read_bytes())
  raw[1000] ^= 0xFF  # bit rot on the server: the bytes change, the recorded CRC32C does not
  stored.write_bytes(bytes(raw))
  dst = tmp_path / "comments.txt"
  with pytest.raises(gcs.GcsError, match="CRC32C mismatch after download.*nothing was "
                                         "written"):
    gcs.copy(f"gs://{BUCKET}/bad/comments.txt", str(dst), chunk_size=CHUNK, progress=False)
  assert os.listdir(tmp_path) == []


class _StopAfter(object):
  """A progress sink that interrupts the transfer once `limit` bytes have gone through."""

  def __init__(self, limit):
    self.limit, self.seen = limit, 0

  def update(self, n):
    self.seen += n
    if self.seen >= self.limit:
      raise KeyboardInterrupt


@pytest.fixture(scope="module")
def big(tmp_path_factory, data_dir):
  """~1.3 MB of real Korean petitions: five 256 KiB chunks and a bit."""
  src = sorted((data_dir / "corpus" / "petitions").glob("petitions_*"))[0]
  path = tmp_path_factory.mktemp("big") / "petitions.jsonl"
  path.write_bytes(src.read_bytes()[:5 * CHUNK + 12345])
  return path


def test_interrupted_upload_resumes(env, big, tmp_path):
  dst = f"gs://{BUCKET}/resume/petitions.jsonl"
  with pytest.raises(KeyboardInterrupt):
    gcs.copy(str(big), dst, chunk_size=CHUNK, progress=_StopAfter(2 * CHUNK))
  # An unfinished upload is not an object.
  with pytest.raises(gcs.GcsError, match="no objects match"):
    gcs.list_objects(f"gs://{BUCKET}/resume", recursive=True)
  report = gcs.copy(str(big), dst, chunk_size=CHUNK, progress=False)
  size = big.stat().st_size
  assert report.bytes_resumed == 2 * CHUNK
  assert report.bytes_copied == size - 2 * CHUNK
  back = tmp_path / "back.jsonl"
  gcs.copy(dst, str(back), progress=False)
  assert back.read_bytes() == big.read_bytes()
  # The session was finished: its state file is gone.
  assert not list((tmp_path / "cache").rglob("*.json"))


def test_interrupted_download_resumes(env, big, tmp_path):
  src = f"gs://{BUCKET}/resume-down/petitions.jsonl"
  gcs.copy(str(big), src, chunk_size=CHUNK, progress=False)
  dst = tmp_path / "out" / "petitions.jsonl"
  with pytest.raises(KeyboardInterrupt):
    gcs.copy(src, str(dst), chunk_size=CHUNK, progress=_StopAfter(3 * CHUNK))
  assert not dst.exists()
  [part] = list(dst.parent.glob(".petitions.jsonl.gs-*.part"))
  assert part.stat().st_size == 3 * CHUNK
  report = gcs.copy(src, str(dst), chunk_size=CHUNK, progress=False)
  assert report.bytes_resumed == 3 * CHUNK
  assert report.bytes_copied == big.stat().st_size - 3 * CHUNK
  assert dst.read_bytes() == big.read_bytes()
  assert not part.exists()


class _RewriteAfter(object):
  """A progress sink that changes the file's last byte once `limit` bytes have been sent,
  as a job still writing a checkpoint would."""

  def __init__(self, path, limit):
    self.path, self.limit, self.seen = path, limit, 0

  def update(self, n):
    before, self.seen = self.seen, self.seen + n
    if before < self.limit <= self.seen:
      with open(self.path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 0xFF]))


def test_file_changed_during_upload_is_refused(env, big, tmp_path):
  path = tmp_path / "changing.jsonl"
  path.write_bytes(big.read_bytes())
  dst = f"gs://{BUCKET}/changing/changing.jsonl"
  with pytest.raises(gcs.GcsError, match="CRC32C mismatch.*no object was created"):
    gcs.copy(str(path), dst, chunk_size=CHUNK, progress=_RewriteAfter(str(path), CHUNK))
  with pytest.raises(gcs.GcsError, match="no objects match"):
    gcs.list_objects(f"gs://{BUCKET}/changing")
  # The refused session is forgotten: the next run starts a new one and succeeds.
  assert not list((tmp_path / "cache").rglob("*.json"))
  assert gcs.copy(str(path), dst, chunk_size=CHUNK, progress=False).copied == 1


def test_no_token_or_session_id_in_any_log_line(env, big, tmp_path, caplog, capsys):
  import google.oauth2.credentials
  from google.cloud import storage
  secret = "ya29.a0-SECRET-TOKEN-must-not-be-logged"

  def factory():
    # A bearer token on every request (the emulator ignores it), as with real credentials.
    return storage.Client(project="p",
                          credentials=google.oauth2.credentials.Credentials(token=secret))

  caplog.set_level(logging.DEBUG)
  dst = f"gs://{BUCKET}/logs/petitions.jsonl"
  with pytest.raises(KeyboardInterrupt):
    gcs.copy(str(big), dst, chunk_size=CHUNK, client_factory=factory,
             progress=_StopAfter(CHUNK))
  [state] = list((tmp_path / "cache").rglob("*.json"))
  upload_id = state.read_text().split("upload_id=")[1].split('"')[0].split("&")[0]
  assert len(upload_id) > 8
  gcs.copy(str(big), dst, chunk_size=CHUNK, client_factory=factory, progress=True)
  gcs.copy(dst, str(tmp_path / "back"), chunk_size=CHUNK, client_factory=factory)
  out = capsys.readouterr()
  lines = [r.getMessage() for r in caplog.records] + (out.out + out.err).splitlines()
  # The resumable requests were logged (so the check below looked at them) ...
  assert any("uploadType=resumable" in line for line in lines)
  for line in lines:
    assert secret not in line and "SECRET-TOKEN" not in line
    assert upload_id not in line


def test_redact():
  line = ('PUT /upload?uploadType=resumable&upload_id=ABCD1234xyz HTTP/1.1 '
          'Authorization: Bearer ya29.zzz {"access_token": "tok", "private_key_id": "k1"}')
  clean = gcs.redact(line)
  for secret in ("ABCD1234xyz", "ya29.zzz", "tok\"", "k1"):
    assert secret not in clean
  assert "uploadType=resumable" in clean


def _cli(args, extra_env, cwd=None):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("GOOGLE_", "STORAGE_EMULATOR", "CLOUDSDK_", "GCE_"))}
  env.update(PYTHONPATH=str(ROOT), **extra_env)
  return subprocess.run([sys.executable, "-m", "util.gcs"] + args, cwd=cwd or str(ROOT),
                        env=env, capture_output=True, text=True, timeout=120)


def test_cli_round_trip_and_ls(env, tree, tmp_path):
  url, _ = env
  extra = {"STORAGE_EMULATOR_HOST": url, "XDG_CACHE_HOME": str(tmp_path / "cache")}
  up = _cli(["cp", "-r", "--no-progress", str(tree), f"gs://{BUCKET}/cli/data"], extra)
  assert up.returncode == 0, up.stderr
  assert up.stdout.startswith("copied 4 file(s)")
  ls = _cli(["ls", f"gs://{BUCKET}/cli/data"], extra)
  assert ls.returncode == 0, ls.stderr
  assert f"gs://{BUCKET}/cli/data/corpus/" in ls.stdout
  assert f"gs://{BUCKET}/cli/data/vocab.txt" in ls.stdout
  down = _cli(["cp", "-r", f"gs://{BUCKET}/cli/data", str(tmp_path / "back")], extra)
  assert down.returncode == 0, down.stderr
  assert _files(tmp_path / "back") == _files(tree)
  # The progress bar reports a rate in bytes per second.
  assert "B/s" in down.stderr


@pytest.mark.parametrize("args,message", [
    (["ls", "gs://no-such-bucket-here/x"], "bucket gs://no-such-bucket-here does not exist"),
    (["cp", "/no/such/file", f"gs://{BUCKET}/x"], "/no/such/file: no such file"),
    (["cp", f"gs://{BUCKET}/no/such/object", "out"], "no such object"),
])
def test_cli_errors_are_one_line(env, tmp_path, args, message):
  r = _cli(args, {"STORAGE_EMULATOR_HOST": env[0]}, cwd=str(tmp_path))
  assert r.returncode == 2
  assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ") and message in r.stderr


@pytest.mark.parametrize("key_file", [True, False])
def test_missing_credentials_one_line_without_network(tmp_path, key_file):
  # Real service, no credentials: an empty HOME and gcloud config, the metadata server
  # pointed at a closed local port (nothing leaves the machine), and either a key file that
  # does not exist or no key file at all (then the metadata server is asked, and refuses).
  env = {"CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "HOME": str(tmp_path),
         "GCE_METADATA_HOST": f"127.0.0.1:{free_port()}",
         "GCE_METADATA_IP": f"127.0.0.1:{free_port()}"}
  if key_file:
    env["GOOGLE_APPLICATION_CREDENTIALS"] = str(tmp_path / "nowhere.json")
  r = _cli(["ls", f"gs://{BUCKET}"], env)
  assert r.returncode == 2, r.stderr
  assert r.stderr.count("\n") == 1
  assert r.stderr.startswith("error: no Google Cloud credentials")
  assert "GOOGLE_APPLICATION_CREDENTIALS" in r.stderr
  assert ("nowhere.json" in r.stderr) == key_file
