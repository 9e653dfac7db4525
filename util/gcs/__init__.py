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

The package: client.py (paths, client, errors, redaction), transfer.py (`copy`),
resumable.py (one file's chunked, resumable, CRC32C-checked transfer), listing.py (`ls`,
`prefix_objects`), folders.py (`publish_dir`), cli.py (the command line).
"""

from util.gcs.client import (GcsError, GsPath, MiB, crc32c_file, is_gs, make_client,
                             parse_gs, redact)
from util.gcs.folders import publish_dir
from util.gcs.listing import Entry, list_objects, prefix_objects
from util.gcs.transfer import (CHUNK_QUANTUM, DEFAULT_CHUNK_MIB, DEFAULT_JOBS, CopyReport,
                               copy, default_state_dir)
from util.gcs.cli import build_parser, main

__all__ = ["GcsError", "GsPath", "MiB", "crc32c_file", "is_gs", "make_client", "parse_gs",
           "redact", "publish_dir", "Entry", "list_objects", "prefix_objects",
           "CHUNK_QUANTUM", "DEFAULT_CHUNK_MIB", "DEFAULT_JOBS", "CopyReport", "copy",
           "default_state_dir", "build_parser", "main"]
