"""Cloud Storage access shared by every util.gcs operation: paths, the client, errors.

`make_client` talks to STORAGE_EMULATOR_HOST anonymously when it is set, else uses the
Application Default Credentials. Every failure that a user can fix becomes a `GcsError`
(`api_error`), and no access token, session URL or key reaches a log line (`redact`,
installed as a filter on the loggers that print request URLs).
"""
import base64
import dataclasses
import functools
import logging
import os
import re
import threading
import typing

from util import errors

MiB = 1024 * 1024
READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"

_GS_RE = re.compile(r"^gs://(?P<bucket>[a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:/(?P<name>.*))?$")

# One logger for the whole package (its redaction filter applies to this logger only).
log = logging.getLogger("util.gcs")


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
                "google_resumable_media", "google.resumable_media", log.name)
_FILTER = _RedactFilter()


def install_redaction():
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
  install_redaction()
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
        f"no Google Cloud credentials ({redact(first_line(e))}): run `gcloud auth "
        "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
        "service-account key file (a Cloud TPU VM uses its service account)") from e


def first_line(e):
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


def api_error(e, what):
  """A GcsError for an exception raised while working on `what` (a path string)."""
  from google.api_core import exceptions as api
  import google.auth.exceptions as auth
  import requests
  if isinstance(e, GcsError):
    return e
  if isinstance(e, api.NotFound):
    return GcsError(f"{what}: not found")
  if isinstance(e, (api.Forbidden, api.Unauthorized)):
    return GcsError(f"{what}: permission denied ({redact(first_line(e))}); check that "
                    "the account has Storage Object Admin (or Viewer to read) on the bucket")
  if isinstance(e, (auth.RefreshError, auth.TransportError)):
    return GcsError(f"{what}: could not get an access token ({redact(first_line(e))}); "
                    "run `gcloud auth application-default login` or check "
                    "GOOGLE_APPLICATION_CREDENTIALS")
  if isinstance(e, requests.exceptions.ConnectionError):
    return GcsError(f"{what}: cannot reach Cloud Storage ({redact(first_line(e))})")
  if isinstance(e, api.GoogleAPICallError):
    return GcsError(f"{what}: {redact(first_line(e))}")
  return None


class Clients(object):
  """One client per worker thread (a client's HTTP session is not shared across threads)."""

  def __init__(self, factory):
    self._factory = factory
    self._local = threading.local()

  def get(self):
    client = getattr(self._local, "client", None)
    if client is None:
      client = self._local.client = self._factory()
    return client


# --- buckets and objects ---------------------------------------------------------------------

def checked_bucket(client, remote):
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
    mapped = api_error(e, f"gs://{remote.bucket}")
    if mapped is None:
      raise
    raise mapped from e
  return bucket


def remote_objects(bucket, prefix):
  """{name: blob} of every object under `prefix` (names ending in '/' left out)."""
  try:
    return {b.name: b for b in bucket.list_blobs(prefix=prefix) if not b.name.endswith("/")}
  except Exception as e:  # noqa: BLE001
    mapped = api_error(e, f"gs://{bucket.name}/{prefix}")
    if mapped is None:
      raise
    raise mapped from e


def get_blob(bucket, name):
  try:
    return bucket.get_blob(name, timeout=60)
  except Exception as e:  # noqa: BLE001
    mapped = api_error(e, f"gs://{bucket.name}/{name}")
    if mapped is None:
      raise
    raise mapped from e
