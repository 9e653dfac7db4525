"""Moving one file: chunked uploads with resumable sessions, ranged downloads, CRC32C.

Uploads above one chunk go through a resumable session remembered in a 0600 state file,
so a rerun continues from the last byte the server acknowledged. Downloads append byte
ranges to a hidden `.NAME.gs-GENERATION.part` file, renamed to NAME only after its
CRC32C equals the object's.
"""
import hashlib
import json
import os
import re
import time

from util.gcs.client import GcsError, api_error, crc32c_file, first_line, log, redact

# Consecutive failed chunk requests (connection errors, 5xx) before giving up.
MAX_CHUNK_RETRIES = 5
# An unfinished download's temporary name (see Downloader); uploads leave such files out.
PART_RE = re.compile(r"^\..+\.gs-\d+\.part$")


class _Interrupted(Exception):
  """Another transfer failed or the user pressed Ctrl-C: stop at this chunk boundary."""


class Uploader(object):
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
      mapped = api_error(e, url)
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
          why = redact(first_line(error)) if response is None else f"HTTP {response.status_code}"
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


class Downloader(object):
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
      mapped = api_error(e, url)
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
