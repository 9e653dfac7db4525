"""The command line `python -m util.gcs cp [-r] SRC DST` / `ls [-r] URL` (util/gcs/__init__.py)."""
import argparse
import logging
import sys
import warnings

from util.gcs import listing
from util.gcs import transfer
from util.gcs.client import GcsError, MiB, install_redaction, log, make_client
from util.gcs.transfer import DEFAULT_CHUNK_MIB, DEFAULT_JOBS

DESCRIPTION = "Copy corpora, TFRecords, vocabs, checkpoints and exports to and from Cloud Storage."


def build_parser() -> argparse.ArgumentParser:
  """The command line's parser (also used by tests that check documented commands)."""
  p = argparse.ArgumentParser(prog="python -m util.gcs",
                              description=DESCRIPTION,
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
  """The command line; returns the exit status (run it through util.errors.run_main).

  Raises:
    GcsError: see transfer.copy and listing.list_objects.
  """
  args = build_parser().parse_args(argv)
  # google.api_core warns that Python 3.11 leaves its support in 2027; TensorFlow 2.15
  # pins this project to 3.9-3.11, so the warning is noise in front of every command.
  warnings.filterwarnings("ignore", message="You are using a Python version",
                          category=FutureWarning)
  logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                      format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
  if not args.verbose:
    log.setLevel(logging.WARNING)
  install_redaction()

  def factory():
    return make_client(args.project)

  if args.command == "cp":
    if args.jobs < 1 or args.chunk_mib < 1:
      raise GcsError("--jobs and --chunk-mib must be positive")
    report = transfer.copy(args.src, args.dst, recursive=args.recursive, client_factory=factory,
                  jobs=args.jobs, chunk_size=args.chunk_mib * MiB,
                  progress=not args.no_progress)
    print(report.summary())
    return 0
  entries = listing.list_objects(args.url, recursive=args.recursive, client=factory())
  total = 0
  for e in entries:
    if e.is_prefix:
      print(f"{'':>12}  {'':20}  {e.url}")
    else:
      total += e.size
      print(f"{e.size:>12}  {e.updated:20}  {e.url}")
  n = sum(not e.is_prefix for e in entries)
  print(f"TOTAL: {n} object(s), {total} bytes ({transfer.human_bytes(total)})")
  return 0
