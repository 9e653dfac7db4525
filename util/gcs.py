"""Copy corpora, TFRecords, vocabs, checkpoints and exports to and from Cloud Storage.

  python -m util.gcs cp [-r] SRC DST        # local -> gs://bucket/prefix, or back
  python -m util.gcs ls [-r] gs://bucket[/prefix]

Built on `google-cloud-storage`, because TensorFlow's own GCS filesystem has its endpoint
compiled in and cannot be tested against a local emulator. What it guarantees:

- CRC32C after every transfer. Uploads send the file's CRC32C with the object metadata, so
  Cloud Storage refuses a corrupted upload, and the stored object's CRC32C is compared again.
  Downloads land under a hidden temporary name in the destination directory
  (`.NAME.gs-GENERATION.part`) and are renamed to NAME only after the file's CRC32C equals
  the object's; on a mismatch the temporary file is deleted and nothing appears under NAME.
- Resuming. Files above one chunk (`--chunk-mib`, default 32) go in resumable chunks; the
  upload session is kept in a 0600 state file under ~/.cache/koelectra/gcs-uploads, so
  rerunning an interrupted `cp` continues from the last byte the server acknowledged.
  Downloads fetch byte ranges one chunk at a time and append to the temporary file; a rerun
  continues from its length (the object's generation is in the name, so a changed object
  never continues an old partial file).
- Skip-if-same: a destination whose size and CRC32C equal the source's is not copied again;
  the summary line says how many were skipped.
- Parallel over files (`--jobs`, default 8) with one progress bar in bytes and bytes/s.
- Every user-fixable problem (no credentials, missing bucket or object, permission denied,
  checksum mismatch) is one `error:` line and exit status 2. No access token, session URL
  (`upload_id`) or key ever reaches a log line: the loggers that print request URLs are
  filtered (see `redact`).

`cp -r SRC DST` copies the *contents* of SRC to DST (like `rsync -r SRC/ DST/`):
`cp -r data gs://b/data` puts data/vocab.txt at gs://b/data/vocab.txt, on every run. Without
-r, a destination that ends in `/` (or is an existing local directory) receives SRC's base
name. With `STORAGE_EMULATOR_HOST` set the client talks to that emulator, anonymously.
"""
import argparse
import base64
import concurrent.futures
import dataclasses
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import typing
import warnings

from util import errors

MiB = 1024 * 1024
# Resumable chunks must be multiples of 256 KiB (Cloud Storage's rule).
CHUNK_QUANTUM = 256 * 1024
DEFAULT_CHUNK_MIB = 32
DEFAULT_JOBS = 8
# Consecutive failed chunk requests (connection errors, 5xx) before giving up.
MAX_CHUNK_RETRIES = 5
READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"

_GS_RE = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(?P<name>.*))?$")
_PART_RE = re.compile(r"^\..+\.gs-\d+\.part$")

log = logging.getLogger(__name__)


class GcsError(errors.UserError):
  """A transfer that cannot proceed: the message names the path and what to do."""


# --- secrets never logged ------------------------------------------------------------------

_SECRET_PATTERNS = (
    (re.compile(r"(Bearer\s+)[^\s'\",]+", re.I), r"\1***"),
    (re.compile(r"ya29\.[\w.\-]+"), "ya29.***"),
    (re.compile(r"((?:access_token|upload_id|refresh_token|client_secret|"
                r"private_key(?:_id)?)[\"']?\s*[=:]\s*[\"']?)[^&\s'\",]+", re.I), r"\1***"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----",
                re.S), "***"),
)


def redact(text: str) -> str:
  """`text` with access tokens, resumable session ids and private keys replaced by ***."""
  for pattern, repl in _SECRET_PATTERNS:
    text = pattern.sub(repl, text)
  return text


class _RedactFilter(logging.Filter):
  """Rewrites a record's message through `redact` before any handler sees it."""

  def filter(self, record):
    message = record.getMessage()
    clean = redact(message)
    if clean != message:
      record.msg, record.args = clean, None
    return True


# urllib3 logs each request line, with an upload session's upload_id in the query; the
# google libraries log request details at DEBUG. A filter on a logger runs before any
# handler, whoever configured the handlers.
_URL_LOGGERS = ("urllib3.connectionpool", "urllib3", "requests", "google.auth",
                "google.auth.transport.requests", "google.cloud.storage",
                "google_resumable_media", "google.resumable_media", __name__)
_FILTER = _RedactFilter()


def _install_redaction():
  for name in _URL_LOGGERS:
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
      logger.addFilter(_FILTER)


# --- paths -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GsPath:
  """gs://bucket/name: `name` is an object name or a prefix ('' for the bucket root)."""
  bucket: str
  name: str

  def __str__(self):
    return f"gs://{self.bucket}/{self.name}"

  def child(self, rel: str) -> "GsPath":
    base = self.name.rstrip("/")
    return GsPath(self.bucket, f"{base}/{rel}" if base else rel)


def is_gs(path: str) -> bool:
  return str(path).startswith("gs://")


def parse_gs(url: str) -> GsPath:
  """GsPath of a gs:// URL.

  Raises:
    GcsError: not a gs:// URL with a valid bucket name.
  """
  m = _GS_RE.match(url)
  if not m:
    raise GcsError(f"{url!r} is not a gs://BUCKET[/PATH] URL (bucket names: 3-222 "
                   "lower-case letters, digits, '.', '-', '_')")
  return GsPath(m.group("bucket"), m.group("name") or "")


# --- checksums -------------------------------------------------------------------------------

def crc32c_file(path: str, block: int = 8 * MiB) -> str:
  """CRC32C of a local file, base64 of the big-endian 4 bytes, as Cloud Storage reports it."""
  import google_crc32c
  checksum = google_crc32c.Checksum()
  with open(path, "rb") as f:
    for data in iter(lambda: f.read(block), b""):
      checksum.update(data)
  return base64.b64encode(checksum.digest()).decode("ascii")


# --- client ----------------------------------------------------------------------------------

def make_client(project: typing.Optional[str] = None):
  """A storage.Client: anonymous against STORAGE_EMULATOR_HOST, else the default credentials.

  Args:
    project: billing / listing project; default the credentials' project.

  Returns:
    google.cloud.storage.Client.

  Raises:
    GcsError: no credentials found (names the ways to provide them).
  """
  from google.auth.credentials import AnonymousCredentials
  from google.cloud import storage
  _install_redaction()
  if os.environ.get("STORAGE_EMULATOR_HOST"):
    return storage.Client(project=project or "koelectra-local",
                          credentials=AnonymousCredentials())
  credentials, found = _default_credentials()
  # A placeholder project keeps the client from looking one up; objects need none.
  return storage.Client(project=project or found or "none", credentials=credentials)


@functools.lru_cache(maxsize=1)
def _default_credentials():
  """(credentials, project) found once per process, shared by the worker threads' clients
  (each lookup may ask the metadata server)."""
  import google.auth
  import google.auth.exceptions
  try:
    return google.auth.default(scopes=[READ_WRITE_SCOPE])
  except google.auth.exceptions.DefaultCredentialsError as e:
    raise GcsError(
        f"no Google Cloud credentials ({redact(_first_line(e))}): run `gcloud auth "
        "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file (a Cloud TPU VM uses its service account)") from e


def _first_line(e):
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def _api_error(e, what):
  """A GcsError for an exception raised while working on `what` (a path string)."""
  from google.api_core import exceptions as api
  import google.auth.exceptions as auth
  import requests
  if isinstance(e, GcsError):
    return e
  if isinstance(e, api.NotFound):
    return GcsError(f"{what}: not found")
  if isinstance(e, (api.Forbidden, api.Unauthorized)):
    return GcsError(f"{what}: permission denied ({redact(_first_line(e))}); check that "
                    "the account has Storage Object Admin (or Viewer to read) on the bucket")
  if isinstance(e, (auth.RefreshError, auth.TransportError)):
    return GcsError(f"{what}: could not get an access token ({redact(_first_line(e))}); "
                    "run `gcloud auth application-default login` or check "
                    "GOOGLE_APPLICATION_CREDENTIALS")
  if isinstance(e, requests.exceptions.ConnectionError):
    return GcsError(f"{what}: cannot reach Cloud Storage ({redact(_first_line(e))})")
  if isinstance(e, api.GoogleAPICallError):
    return GcsError(f"{what}: {redact(_first_line(e))}")
  return None


class _Clients(object):
  """One client per worker thread (a client's HTTP session is not shared across threads)."""

  def __init__(self, factory):
    self._factory = factory
    self._local = threading.local()

  def get(self):
    client = getattr(self._local, "client", None)
    if client is None:
      client = self._local.client = self._factory()
    return client


# --- progress --------------------------------------------------------------------------------

class _Progress(object):
  """Thread-safe byte counter in front of a tqdm bar (or any object with update/close)."""

  def __init__(self, bar):
    self._bar = bar
    self._lock = threading.Lock()

  def update(self, n):
    if n:
      with self._lock:
        self._bar.update(n)

  def close(self):
    close = getattr(self._bar, "close", None)
    if close:
      close()


def _tqdm_bar(total, desc, enabled):
  from tqdm import tqdm
  return tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
              disable=not enabled, file=sys.stderr, mininterval=0.5, dynamic_ncols=True)


# --- transfers -------------------------------------------------------------------------------

@dataclasses.dataclass
class CopyReport:
  """What a `copy` did.

  Attributes:
    copied: files transferred (in full or finishing a resumed transfer).
    skipped: files whose destination already had the same size and CRC32C.
    bytes_copied: bytes sent or received in this run.
    bytes_resumed: bytes an earlier, interrupted run had already transferred.
    seconds: wall time.
  """
  copied: int = 0
  skipped: int = 0
  bytes_copied: int = 0
  bytes_resumed: int = 0
  seconds: float = 0.0

  def summary(self) -> str:
    rate = self.bytes_copied / max(self.seconds, 1e-9)
    text = (f"copied {self.copied} file(s), {_human(self.bytes_copied)} in "
            f"{self.seconds:.1f}s ({_human(rate)}/s)")
    if self.bytes_resumed:
      text += f", resumed after {_human(self.bytes_resumed)} already transferred"
    return text + (f"; skipped {self.skipped} already identical (same size and CRC32C)"
                   if self.skipped else "")


def _human(n):
  """Bytes as B / KiB / MiB / GiB / TiB."""
  for unit in ("B", "KiB", "MiB", "GiB"):
    if abs(n) < 1024:
      return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
    n /= 1024.0
  return f"{n:.1f} TiB"


@dataclasses.dataclass
class _Task:
  src: str  # local path or object name
  dst: str  # object name or local path
  size: int
  blob: typing.Any = None  # downloads: the listed object (generation, crc32c)


def default_state_dir() -> str:
  """Where upload sessions are remembered between runs (~/.cache/koelectra/gcs-uploads)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "koelectra", "gcs-uploads")


def copy(src: str, dst: str, recursive: bool = False, client_factory=None,
         jobs: int = DEFAULT_JOBS, chunk_size: int = DEFAULT_CHUNK_MIB * MiB,
         state_dir: typing.Optional[str] = None, progress=True) -> CopyReport:
  """Copy a file or (recursive) a directory tree between the local disk and Cloud Storage.

  Args:
    src: local path or gs:// URL.
    dst: gs:// URL or local path (exactly one of src, dst is gs://).
    recursive: copy the contents of directory / prefix `src` to `dst`.
    client_factory: callable returning a storage.Client (default `make_client`); called
      once per worker thread.
    jobs: files transferred at once.
    chunk_size: bytes per resumable upload request and per ranged download request
      (rounded up to a multiple of 256 KiB).
    state_dir: where upload sessions are kept for resuming (default `default_state_dir()`).
    progress: True for a tqdm bar on stderr, False for none, or an object with
      update(n_bytes) (and optionally close()).

  Returns:
    CopyReport.

  Raises:
    GcsError: bad paths, no credentials, missing bucket or object, permission denied, or a
      CRC32C mismatch (the bad copy is not left under its final name).
  """
  if is_gs(src) == is_gs(dst):
    raise GcsError(f"cp {src} {dst}: exactly one side must be gs:// (for bucket-to-bucket "
                   "copies use `gcloud storage cp`)")
  _install_redaction()
  chunk_size = max(CHUNK_QUANTUM, -(-int(chunk_size) // CHUNK_QUANTUM) * CHUNK_QUANTUM)
  clients = _Clients(client_factory or make_client)
  start = time.time()
  report = CopyReport()
  if is_gs(dst):
    remote = parse_gs(dst)
    bucket = _checked_bucket(clients.get(), remote)
    tasks, skipped = _plan_upload(src, remote, recursive, bucket)
    run_one = _Uploader(clients, remote.bucket, chunk_size,
                        state_dir or default_state_dir()).run
    desc = "upload"
  else:
    remote = parse_gs(src)
    bucket = _checked_bucket(clients.get(), remote)
    tasks, skipped = _plan_download(remote, dst, recursive, bucket)
    run_one = _Downloader(clients, remote.bucket, chunk_size).run
    desc = "download"
  report.skipped = skipped
  if skipped:
    log.info("%d object(s) already identical (size and CRC32C), skipped", skipped)
  total = sum(t.size for t in tasks)
  bar = progress if hasattr(progress, "update") else _tqdm_bar(total, desc, bool(progress))
  counter = _Progress(bar)
  stop = threading.Event()
  try:
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
      futures = [pool.submit(run_one, t, counter, stop) for t in tasks]
      try:
        for future in concurrent.futures.as_completed(futures):
          sent, resumed = future.result()
          report.copied += 1
          report.bytes_copied += sent
          report.bytes_resumed += resumed
      except BaseException:
        # First failure (or Ctrl-C): running transfers stop at their next chunk boundary,
        # queued ones never start; partial state stays for the next run to resume.
        stop.set()
        for f in futures:
          f.cancel()
        raise
  finally:
    counter.close()
  report.seconds = time.time() - start
  return report


def _checked_bucket(client, remote):
  """The bucket of `remote`; GcsError if it does not exist."""
  from google.api_core import exceptions as api
  bucket = client.bucket(remote.bucket)
  try:
    bucket.reload(timeout=60)
  except api.Forbidden:
    pass  # no storage.buckets.get permission: objects may still be readable or writable
  except Exception as e:  # noqa: BLE001 - mapped to one line, or re-raised
    if isinstance(e, api.NotFound):
      raise GcsError(f"bucket gs://{remote.bucket} does not exist (create it with "
                     f"`gcloud storage buckets create gs://{remote.bucket}`)") from e
    mapped = _api_error(e, f"gs://{remote.bucket}")
    if mapped is None:
      raise
    raise mapped from e
  return bucket


def _remote_objects(bucket, prefix):
  """{name: blob} of every object under `prefix` (names ending in '/' left out)."""
  try:
    return {b.name: b for b in bucket.list_blobs(prefix=prefix) if not b.name.endswith("/")}
  except Exception as e:  # noqa: BLE001
    mapped = _api_error(e, f"gs://{bucket.name}/{prefix}")
    if mapped is None:
      raise
    raise mapped from e


def _same(local_path, size, crc32c):
  """True if the local file has this size and CRC32C (the CRC is read only if sizes match)."""
  return (os.path.isfile(local_path) and os.path.getsize(local_path) == size
          and crc32c is not None and crc32c_file(local_path) == crc32c)


def _plan_upload(src, remote, recursive, bucket):
  """(tasks, number skipped) for local `src` -> `remote`."""
  if not os.path.exists(src):
    raise GcsError(f"{src}: no such file or directory")
  if os.path.isdir(src):
    if not recursive:
      raise GcsError(f"{src} is a directory; use cp -r to copy its contents")
    files = []
    for root, dirs, names in os.walk(src):
      dirs.sort()
      for name in sorted(names):
        if _PART_RE.match(name):
          continue  # an unfinished download of ours
        path = os.path.join(root, name)
        files.append((path, os.path.relpath(path, src).replace(os.sep, "/")))
    prefix = remote.name.rstrip("/")
    pairs = [(path, remote.child(rel).name) for path, rel in files]
    existing = _remote_objects(bucket, prefix + "/" if prefix else "")
  else:
    name = remote.name
    if not name or name.endswith("/"):
      name += os.path.basename(src)
    pairs = [(src, name)]
    existing = {name: b for b in [_get_blob(bucket, name)] if b is not None}
  tasks, skipped = [], 0
  for path, name in pairs:
    size = os.path.getsize(path)
    blob = existing.get(name)
    if blob is not None and blob.size == size and blob.crc32c and \
        crc32c_file(path) == blob.crc32c:
      skipped += 1
      continue
    tasks.append(_Task(path, name, size))
  return tasks, skipped


def _get_blob(bucket, name):
  try:
    return bucket.get_blob(name, timeout=60)
  except Exception as e:  # noqa: BLE001
    mapped = _api_error(e, f"gs://{bucket.name}/{name}")
    if mapped is None:
      raise
    raise mapped from e


def _safe_local(root, rel, url):
  """root/rel, refusing object names that would escape root."""
  parts = rel.split("/")
  if rel.startswith("/") or any(p in ("..", "") for p in parts):
    raise GcsError(f"{url}: object name cannot be a local path under {root} (empty, "
                   "absolute or '..' component)")
  return os.path.join(root, *parts)


def _plan_download(remote, dst, recursive, bucket):
  """(tasks, number skipped) for `remote` -> local `dst`; task.size is the object size."""
  pairs = []  # (blob, local path)
  blob = _get_blob(bucket, remote.name) if remote.name and not remote.name.endswith("/") \
      else None
  prefix = remote.name.rstrip("/")
  prefix = prefix + "/" if prefix else ""
  objects = _remote_objects(bucket, prefix) if recursive or blob is None else {}
  if blob is not None and not objects:  # one object (also with -r, as gsutil does)
    path = dst
    if dst.endswith(("/", os.sep)) or os.path.isdir(dst):
      path = os.path.join(dst, remote.name.rsplit("/", 1)[-1])
    pairs.append((blob, path))
  else:
    if not objects:
      raise GcsError(f"{remote}: no such object" + (" or prefix" if recursive else ""))
    if not recursive:
      raise GcsError(f"{remote} is a prefix holding {len(objects)} object(s); use cp -r to "
                     "copy them")
    if os.path.isfile(dst):
      raise GcsError(f"{dst} is a file; cp -r needs a directory destination")
    for name in sorted(objects):
      pairs.append((objects[name], _safe_local(dst, name[len(prefix):],
                                               f"gs://{bucket.name}/{name}")))
  tasks, skipped = [], 0
  for blob, path in pairs:
    if _same(path, blob.size, blob.crc32c):
      skipped += 1
      continue
    tasks.append(_Task(blob.name, path, int(blob.size or 0), blob))
  return tasks, skipped


class _Interrupted(Exception):
  """Another transfer failed or the user pressed Ctrl-C: stop at this chunk boundary."""


class _Uploader(object):
  """Uploads one file: one request up to a chunk, else a resumable session in chunks."""

  def __init__(self, clients, bucket_name, chunk_size, state_dir):
    self._clients = clients
    self._bucket = bucket_name
    self._chunk = chunk_size
    self._state_dir = state_dir

  def run(self, task, counter, stop):
    """Returns (bytes sent now, bytes an earlier run had sent)."""
    url = f"gs://{self._bucket}/{task.dst}"
    try:
      crc = crc32c_file(task.src)
      blob = self._clients.get().bucket(self._bucket).blob(task.dst)
      # Sent with the upload: Cloud Storage rejects the object if the bytes disagree.
      blob.crc32c = crc
      if task.size <= self._chunk:
        blob.upload_from_filename(task.src, checksum=None, timeout=300)
        counter.update(task.size)
        sent, resumed = task.size, 0
        stored = blob.crc32c
      else:
        sent, resumed, stored = self._resumable(task, blob, counter, stop, url)
    except (_Interrupted, GcsError):
      raise
    except Exception as e:  # noqa: BLE001
      if "CRC32C" in str(e):
        raise _refused_crc(url) from e
      mapped = _api_error(e, url)
      if mapped is None:
        raise
      raise mapped from e
    if stored != crc:
      # Never leave a corrupted object under its final name.
      try:
        self._clients.get().bucket(self._bucket).blob(task.dst).delete(timeout=60)
      except Exception:  # noqa: BLE001 - the error below matters more
        pass
      raise GcsError(f"{url}: CRC32C mismatch after upload (local {crc}, stored {stored}); "
                     "the object was deleted, rerun the copy")
    log.info("uploaded %s -> %s (%d bytes)", task.src, url, task.size)
    return sent, resumed

  # A session is remembered under a key of (file, size, mtime, destination); a changed file
  # starts a new session.
  def _state_path(self, task):
    st = os.stat(task.src)
    key = json.dumps([os.path.abspath(task.src), st.st_size, st.st_mtime_ns,
                      self._bucket, task.dst])
    return os.path.join(self._state_dir, hashlib.sha256(key.encode()).hexdigest() + ".json")

  def _resumable(self, task, blob, counter, stop, url):
    session = self._clients.get()._http  # the client's authorised requests session
    state_path = self._state_path(task)
    session_url, offset, resumed = None, 0, 0
    if os.path.exists(state_path):
      with open(state_path) as f:
        session_url = json.load(f).get("session_url")
      status = self._status(session, session_url, task.size)
      if status is None:  # expired or unknown: start over
        session_url = None
      elif isinstance(status, dict):  # the earlier run finished; only the state was left
        os.remove(state_path)
        counter.update(task.size)
        return 0, task.size, status.get("crc32c")
      else:
        offset = resumed = status
        counter.update(offset)
    if session_url is None:
      session_url = blob.create_resumable_upload_session(size=task.size, checksum=None,
                                                         timeout=300)
      os.makedirs(self._state_dir, mode=0o700, exist_ok=True)
      # The session URL lets anyone holding it write this object: owner-only file.
      fd = os.open(state_path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
      with os.fdopen(fd, "w") as f:
        json.dump({"session_url": session_url, "object": url, "source": task.src}, f)
      os.replace(state_path + ".tmp", state_path)
    failures = 0
    with open(task.src, "rb") as f:
      while True:
        if stop.is_set():
          raise _Interrupted()
        f.seek(offset)
        data = f.read(self._chunk)
        end = offset + len(data) - 1
        headers = {"Content-Range": f"bytes {offset}-{end}/{task.size}" if data
                   else f"bytes */{task.size}"}
        try:
          response = session.put(session_url, data=data, headers=headers, timeout=300)
        except Exception as e:  # noqa: BLE001 - connection trouble: ask, then continue
          response, error = None, e
        if response is not None and response.status_code in (200, 201):
          os.remove(state_path)
          counter.update(task.size - offset)
          return task.size - resumed, resumed, response.json().get("crc32c")
        if response is not None and response.status_code == 308:
          acked = _acked(response)
          counter.update(acked - offset)
          offset, failures = acked, 0
          continue
        if response is not None and response.status_code in (400, 401, 403, 404, 410):
          if response.status_code != 403:  # the session is finished or gone
            os.remove(state_path)
          if "CRC32C" in response.text:
            raise _refused_crc(url)
          raise GcsError(f"{url}: upload refused (HTTP {response.status_code}: "
                         f"{redact(response.text[:200].strip())})")
        failures += 1
        if failures > MAX_CHUNK_RETRIES:
          why = redact(_first_line(error)) if response is None else f"HTTP {response.status_code}"
          raise GcsError(f"{url}: upload failed {failures} times in a row ({why}); rerun "
                         "the same command to resume")
        time.sleep(min(2 ** failures, 30))
        status = self._status(session, session_url, task.size)
        if status is None or isinstance(status, dict):
          raise GcsError(f"{url}: upload session lost; rerun the same command")
        counter.update(status - offset)
        offset = status

  @staticmethod
  def _status(session, session_url, size):
    """Bytes the server holds (int), the object resource (dict) if complete, None if gone."""
    try:
      response = session.put(session_url, headers={"Content-Range": f"bytes */{size}"},
                             timeout=60)
    except Exception:  # noqa: BLE001 - treated as a lost session
      return None
    if response.status_code == 308:
      return _acked(response)
    if response.status_code in (200, 201):
      return response.json()
    return None


def _refused_crc(url):
  return GcsError(f"{url}: CRC32C mismatch: Cloud Storage received bytes that differ from "
                  "the file's checksum (was the file written to during the upload?); no "
                  "object was created, rerun the copy")


def _acked(response):
  """Bytes a 308 response says the server holds ('Range: bytes=0-N' -> N + 1)."""
  m = re.match(r"bytes=0-(\d+)", response.headers.get("Range", ""))
  return int(m.group(1)) + 1 if m else 0


class _Downloader(object):
  """Downloads one object in ranged chunks to a temporary name, renamed after the CRC32C."""

  def __init__(self, clients, bucket_name, chunk_size):
    self._clients = clients
    self._bucket = bucket_name
    self._chunk = chunk_size

  def run(self, task, counter, stop):
    """Returns (bytes received now, bytes an earlier run had received)."""
    url = f"gs://{self._bucket}/{task.src}"
    blob = task.blob
    path = task.dst
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    part = os.path.join(directory, f".{base}.gs-{blob.generation}.part")
    for name in os.listdir(directory):  # partial files of older generations
      if name.startswith(f".{base}.gs-") and name.endswith(".part") and \
          os.path.join(directory, name) != part:
        os.remove(os.path.join(directory, name))
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    if offset > task.size:
      os.remove(part)
      offset = 0
    resumed = offset
    counter.update(offset)
    # The object's own client: a blob from the listing is bound to the listing thread's.
    blob = self._clients.get().bucket(self._bucket).blob(task.src, generation=blob.generation)
    try:
      with open(part, "ab") as f:
        while offset < task.size:
          if stop.is_set():
            raise _Interrupted()
          end = min(offset + self._chunk, task.size) - 1
          blob.download_to_file(f, start=offset, end=end, raw_download=True, checksum=None,
                                timeout=300)
          f.flush()
          received = f.tell() - offset
          counter.update(received)
          offset += received
          if received == 0:
            raise GcsError(f"{url}: the server sent no bytes at offset {offset}")
    except (_Interrupted, GcsError):
      raise
    except Exception as e:  # noqa: BLE001
      mapped = _api_error(e, url)
      if mapped is None:
        raise
      raise mapped from e
    got = crc32c_file(part)
    expected = task.blob.crc32c
    if expected is None or got != expected:
      os.remove(part)
      raise GcsError(f"{url}: CRC32C mismatch after download (object {expected}, received "
                     f"{got}); nothing was written to {path}, rerun the copy")
    os.replace(part, path)
    log.info("downloaded %s -> %s (%d bytes)", url, path, task.size)
    return task.size - resumed, resumed


# --- listing ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Entry:
  """One line of `ls`: an object (size, updated, crc32c) or a sub-prefix (is_prefix)."""
  url: str
  size: int = 0
  updated: str = ""
  crc32c: str = ""
  is_prefix: bool = False


def list_objects(url: str, recursive: bool = False, client=None) -> typing.List[Entry]:
  """Objects (and, not recursive, the sub-prefixes) at gs://bucket/prefix.

  Args:
    url: gs://bucket or gs://bucket/prefix; a prefix lists what is under prefix/, an
      object name lists that object.
    recursive: every object under the prefix instead of one level.
    client: storage.Client (default make_client()).

  Returns:
    Entries: sub-prefixes first, then objects, each sorted by name.

  Raises:
    GcsError: missing bucket, nothing matches a non-empty prefix, or no access.
  """
  remote = parse_gs(url)
  client = client or make_client()
  bucket = _checked_bucket(client, remote)
  name = remote.name
  entries = []
  if name and not name.endswith("/"):
    blob = _get_blob(bucket, name)
    if blob is not None:
      return [_entry(bucket, blob)]
    name += "/"
  try:
    blobs = bucket.list_blobs(prefix=name, delimiter=None if recursive else "/")
    objects = [_entry(bucket, b) for b in blobs]
    prefixes = sorted(blobs.prefixes) if not recursive else []
  except Exception as e:  # noqa: BLE001
    mapped = _api_error(e, str(remote))
    if mapped is None:
      raise
    raise mapped from e
  entries = [Entry(f"gs://{bucket.name}/{p}", is_prefix=True) for p in prefixes]
  entries += sorted(objects, key=lambda e: e.url)
  if not entries and name:
    raise GcsError(f"{remote}: no objects match")
  return entries


def _entry(bucket, blob):
  updated = blob.updated.strftime("%Y-%m-%dT%H:%M:%SZ") if blob.updated else ""
  return Entry(f"gs://{bucket.name}/{blob.name}", int(blob.size or 0), updated,
               blob.crc32c or "")


# --- whole folders for the tools that write or read one ---------------------------------------

def prefix_objects(url: str, client=None) -> typing.List[str]:
  """Names (relative to the prefix) of every object under gs://bucket/prefix/; [] if none."""
  remote = parse_gs(url.rstrip("/") + "/")
  bucket = _checked_bucket(client or make_client(), remote)
  return sorted(name[len(remote.name):] for name in _remote_objects(bucket, remote.name))


def publish_dir(local_dir: str, url: str, last: typing.Sequence[str] = (),
                replace: bool = False, progress=False, client_factory=None) -> CopyReport:
  """Uploads a finished local folder to gs://bucket/prefix, the files named in `last`
  (paths relative to the folder) after all the others.

  Cloud Storage has no rename, so readers are protected by order instead: a folder's
  entry-point file (a checkpoint's `checkpoint` state file, a hub folder's config.json)
  goes up once everything it refers to is there. With `replace`, the old entry points
  are deleted first (no reader follows one into files being replaced) and objects under
  the prefix that the new folder does not have are deleted at the end.
  """
  factory = client_factory or make_client
  local_dir = os.path.abspath(local_dir)
  start = time.time()
  files = sorted(os.path.relpath(os.path.join(d, f), local_dir).replace(os.sep, "/")
                 for d, _, names in os.walk(local_dir) for f in names)
  held = [name for name in last if name in files]
  remote = parse_gs(url.rstrip("/") + "/")
  if replace:
    bucket = factory().bucket(remote.bucket)
    for rel in sorted(set(prefix_objects(url)) & set(last)):
      bucket.blob(remote.name + rel).delete()
  # The held-back files wait outside the folder while the rest goes up in parallel.
  aside = tempfile.mkdtemp(prefix=".held-", dir=os.path.dirname(local_dir))
  try:
    for name in held:
      os.makedirs(os.path.dirname(os.path.join(aside, name)), exist_ok=True)
      os.rename(os.path.join(local_dir, name), os.path.join(aside, name))
    report = copy(local_dir, url, recursive=True, client_factory=factory,
                  progress=progress)
    for name in held:
      part = copy(os.path.join(aside, name), url.rstrip("/") + "/" + name,
                  client_factory=factory, progress=False)
      report.copied += part.copied
      report.skipped += part.skipped
      report.bytes_copied += part.bytes_copied
  finally:
    for name in held:
      if os.path.exists(os.path.join(aside, name)):
        os.rename(os.path.join(aside, name), os.path.join(local_dir, name))
    shutil.rmtree(aside, ignore_errors=True)
  if replace:
    for rel in sorted(set(prefix_objects(url)) - set(files)):
      bucket.blob(remote.name + rel).delete()
  report.seconds = time.time() - start
  return report


# --- command line ----------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
  """The command line's parser (also used by tests that check documented commands)."""
  p = argparse.ArgumentParser(prog="python -m util.gcs",
                              description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--project", help="Google Cloud project (default: the credentials' project)")
  p.add_argument("--verbose", action="store_true",
                 help="log every file and HTTP request (secrets redacted)")
  sub = p.add_subparsers(dest="command", required=True)
  cp = sub.add_parser("cp", help="copy local <-> gs://")
  cp.add_argument("-r", "--recursive", action="store_true",
                  help="copy the contents of directory / prefix SRC into DST")
  cp.add_argument("-j", "--jobs", type=int, default=DEFAULT_JOBS, help="files at once")
  cp.add_argument("--chunk-mib", type=int, default=DEFAULT_CHUNK_MIB,
                  help="resumable chunk and download range size, MiB")
  cp.add_argument("--no-progress", action="store_true", help="no progress bar")
  cp.add_argument("src")
  cp.add_argument("dst")
  ls = sub.add_parser("ls", help="list gs://bucket/prefix")
  ls.add_argument("-r", "--recursive", action="store_true", help="every object, all levels")
  ls.add_argument("url")
  return p


def main(argv=None):
  args = build_parser().parse_args(argv)
  # google.api_core warns that Python 3.11 leaves its support in 2027; TensorFlow 2.15
  # pins this project to 3.9-3.11, so the warning is noise in front of every command.
  warnings.filterwarnings("ignore", message="You are using a Python version",
                          category=FutureWarning)
  logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                      format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
  if not args.verbose:
    log.setLevel(logging.WARNING)
  _install_redaction()

  def factory():
    return make_client(args.project)

  if args.command == "cp":
    if args.jobs < 1 or args.chunk_mib < 1:
      raise GcsError("--jobs and --chunk-mib must be positive")
    report = copy(args.src, args.dst, recursive=args.recursive, client_factory=factory,
                  jobs=args.jobs, chunk_size=args.chunk_mib * MiB,
                  progress=not args.no_progress)
    print(report.summary())
    return 0
  entries = list_objects(args.url, recursive=args.recursive, client=factory())
  total = 0
  for e in entries:
    if e.is_prefix:
      print(f"{'':>12}  {'':20}  {e.url}")
    else:
      total += e.size
      print(f"{e.size:>12}  {e.updated:20}  {e.url}")
  n = sum(not e.is_prefix for e in entries)
  print(f"TOTAL: {n} object(s), {total} bytes ({_human(total)})")
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
