"""`ls`: the objects and sub-prefixes under gs://bucket/prefix."""
import dataclasses
import typing

from util.gcs.client import (GcsError, api_error, checked_bucket, get_blob, make_client,
                             parse_gs, remote_objects)


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
  bucket = checked_bucket(client, remote)
  name = remote.name
  entries = []
  if name and not name.endswith("/"):
    blob = get_blob(bucket, name)
    if blob is not None:
      return [_entry(bucket, blob)]
    name += "/"
  try:
    blobs = bucket.list_blobs(prefix=name, delimiter=None if recursive else "/")
    objects = [_entry(bucket, b) for b in blobs]
    prefixes = sorted(blobs.prefixes) if not recursive else []
  except Exception as e:  # noqa: BLE001
    mapped = api_error(e, str(remote))
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


def prefix_objects(url: str, client=None) -> typing.List[str]:
  """Names (relative to the prefix) of every object under gs://bucket/prefix/; [] if none."""
  remote = parse_gs(url.rstrip("/") + "/")
  bucket = checked_bucket(client or make_client(), remote)
  return sorted(name[len(remote.name):] for name in remote_objects(bucket, remote.name))
