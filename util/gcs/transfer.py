"""`copy`: files and directory trees between the local disk and Cloud Storage.

Files go in parallel (`jobs` threads, one client each) behind one progress bar; a
destination whose size and CRC32C already equal the source's is skipped. Each file is
moved by util/gcs/resumable.py (chunked, CRC32C-checked, resumable).
"""
import concurrent.futures
import dataclasses
import os
import sys
import threading
import time
import typing

from util.gcs import resumable
from util.gcs.client import (MiB, Clients, GcsError, checked_bucket, crc32c_file, get_blob,
                             install_redaction, is_gs, log, make_client, parse_gs,
                             remote_objects)

# Resumable chunks must be multiples of 256 KiB (Cloud Storage's rule).
CHUNK_QUANTUM = 256 * 1024
DEFAULT_CHUNK_MIB = 32
DEFAULT_JOBS = 8


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
    text = (f"copied {self.copied} file(s), {human_bytes(self.bytes_copied)} in "
            f"{self.seconds:.1f}s ({human_bytes(rate)}/s)")
    if self.bytes_resumed:
      text += f", resumed after {human_bytes(self.bytes_resumed)} already transferred"
    return text + (f"; skipped {self.skipped} already identical (same size and CRC32C)"
                   if self.skipped else "")


def human_bytes(n):
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
  install_redaction()
  chunk_size = max(CHUNK_QUANTUM, -(-int(chunk_size) // CHUNK_QUANTUM) * CHUNK_QUANTUM)
  clients = Clients(client_factory or make_client)
  start = time.time()
  report = CopyReport()
  if is_gs(dst):
    remote = parse_gs(dst)
    bucket = checked_bucket(clients.get(), remote)
    tasks, skipped = _plan_upload(src, remote, recursive, bucket)
    run_one = resumable.Uploader(clients, remote.bucket, chunk_size,
                        state_dir or default_state_dir()).run
    desc = "upload"
  else:
    remote = parse_gs(src)
    bucket = checked_bucket(clients.get(), remote)
    tasks, skipped = _plan_download(remote, dst, recursive, bucket)
    run_one = resumable.Downloader(clients, remote.bucket, chunk_size).run
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
        if resumable.PART_RE.match(name):
          continue  # an unfinished download of ours
        path = os.path.join(root, name)
        files.append((path, os.path.relpath(path, src).replace(os.sep, "/")))
    prefix = remote.name.rstrip("/")
    pairs = [(path, remote.child(rel).name) for path, rel in files]
    existing = remote_objects(bucket, prefix + "/" if prefix else "")
  else:
    name = remote.name
    if not name or name.endswith("/"):
      name += os.path.basename(src)
    pairs = [(src, name)]
    existing = {name: b for b in [get_blob(bucket, name)] if b is not None}
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
  blob = get_blob(bucket, remote.name) if remote.name and not remote.name.endswith("/") \
      else None
  prefix = remote.name.rstrip("/")
  prefix = prefix + "/" if prefix else ""
  objects = remote_objects(bucket, prefix) if recursive or blob is None else {}
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
