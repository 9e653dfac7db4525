"""Turns a text corpus into the sharded TFRecords that pretraining reads.

  python build_pretraining_dataset.py --corpus-dir CORPUS --vocab-file VOCAB \\
      --output-dir DATA/pretrain_tfrecords --max-seq-length 128 --num-processes 2

Examples are built by the original ELECTRA algorithm (pretrain/example_builder.py),
one input line being one sentence; with --split-sentences rules (pretrain/sentence_split.py)
lines holding paragraphs are first split into sentences.
The corpus, taken as one byte stream in file order, is cut into ~1 MB work units at
document boundaries; units are tokenized in parallel and written in order, a run of
consecutive units per shard. A unit's output depends only on the corpus, the options
and the seed, so the output is the same for any --num-processes. Shards appear under
their final name only when complete; a rerun resumes after the complete ones.

  python build_pretraining_dataset.py --inspect SHARD --vocab-file VOCAB [-n 3]

prints the first examples of a TFRecord file decoded back to text. See docs/corpus.md;
the work is done by pretrain/dataset_builder.py (`build(BuildOptions)`).
"""
import argparse
import sys
from typing import Optional, Sequence

from pretrain import sentence_split
from pretrain.dataset_builder import BuildError, BuildOptions, build, inspect, print_summary
from util import dataclass_args
from util import errors
from util import tf_logging


def build_parser() -> argparse.ArgumentParser:
  """The command line; defaults and help come from BuildOptions (options_from_args)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

  def add(name, *flags, **kwargs):
    return dataclass_args.add_field(p, BuildOptions, name, *flags, **kwargs)

  add("corpus_dir", nargs="+", metavar="PATH")
  add("vocab_file", required=True)
  add("output_dir")
  add("max_seq_length", type=int)
  add("num_processes", type=int)
  add("num_out_files", type=int)
  add("seed", type=int)
  add("text_field")
  add("blanks_separate_docs", action="store_true")
  p.add_argument("--no-blanks-separate-docs", dest="blanks_separate_docs",
                 action="store_false")
  add("do_lower_case", action="store_true")
  p.add_argument("--no-lower-case", dest="do_lower_case", action="store_false",
                 help="keep case (default; KoELECTRA vocabs are cased)")
  add("strip_accents", action="store_true")
  p.add_argument("--no-strip-accents", dest="strip_accents", action="store_false")
  add("tokenizer", choices=("fast", "reference"))
  add("shuffle_window", type=int, metavar="N")
  add("split_sentences", choices=sentence_split.SPLITTERS)
  add("max_sentence_tokens", type=int, metavar="N")
  add("original_sentence_order", action="store_true")
  add("overwrite", action="store_true")
  add("unit_mb", type=float, help=argparse.SUPPRESS)
  p.add_argument("--no-progress", action="store_true")
  p.add_argument("--inspect", metavar="TFRECORD",
                 help="print the first examples of this file as text, then exit")
  p.add_argument("-n", "--num-examples", type=int, default=3)
  return p


def options_from_args(args: argparse.Namespace) -> BuildOptions:
  """BuildOptions from parsed command-line flags (same names)."""
  return dataclass_args.from_namespace(BuildOptions, args)


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  parser = build_parser()
  args = parser.parse_args(argv)
  if not args.inspect:
    missing = [f for f, v in (("--corpus-dir", args.corpus_dir),
                              ("--output-dir", args.output_dir)) if not v]
    if missing:
      parser.error(f"the following arguments are required: {', '.join(missing)}")
  try:
    if args.inspect:
      inspect(args.inspect, args.vocab_file, args.num_examples)
      return 0
    summary = build(options_from_args(args), progress=not args.no_progress)
  except OSError as e:  # e.g. an output path that is a file, no permission, disk full
    raise BuildError(errors.os_error_line(e, f"writing to {args.output_dir}")) from e
  except KeyboardInterrupt:
    print("interrupted: complete shards are kept; rerun the same command to resume",
          file=sys.stderr)
    return 130
  print_summary(summary)
  if not summary["examples"]:
    print("error: no examples were produced (is the text in another field or format?)",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  tf_logging.quiet()  # gs:// paths load TensorFlow (util/fileio): keep its native lines off
  sys.exit(main())
