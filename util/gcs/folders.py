"""`publish_dir`: a finished local folder uploaded so that readers never see it half done."""
import os
import shutil
import tempfile
import time
import typing

from util.gcs import transfer
from util.gcs.client import make_client, parse_gs
from util.gcs.listing import prefix_objects
from util.gcs.transfer import CopyReport


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
    report = transfer.copy(local_dir, url, recursive=True, client_factory=factory,
                  progress=progress)
    for name in held:
      part = transfer.copy(os.path.join(aside, name), url.rstrip("/") + "/" + name,
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
