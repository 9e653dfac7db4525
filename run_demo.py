"""The whole KoELECTRA pipeline in one command, on Korean text that installs with konlpy.

  python run_demo.py [--output-dir demo_output] [--steps 600] [--fresh]

1. corpus: konlpy's bundled constitution and ten National Assembly bills (~140 KB); every
   10th line of each text is held out for evaluation;
2. vocab: a small cased WordPiece vocab with the v3 recipe (Mecab pre-tokenization);
3. TFRecords: the original ELECTRA example builder, length 128;
4. pretraining: a small ELECTRA (3 layers, hidden 128) on the CPU under TPUEstimator;
5. evaluation, as the original on the training text (fresh masks and generator samples),
   then on the held-out lines: masked-LM accuracy, discriminator AUC / accuracy /
   precision / recall;
6. finetuning (finetune/demo.py): which document a line comes from, trained on the
   pretraining lines and tested on the held-out ones, from the pretrained model and from
   random weights, beside the majority class;
7. export: Hugging Face folders of the pretrained model and of the classifier, and a
   transformers pipeline answering for two held-out lines (when transformers is
   installed: pip install -r requirements-test.txt).
Every stage up to pretraining is skipped when its output exists, so a rerun (or a run
after Ctrl-C) goes on where it stopped. Takes 4-7 minutes on 2 CPU cores.
"""
import argparse
import json
import pathlib
import shutil
import sys
import time

from model import tokenization
from pretrain import dataset_builder
from pretrain import example_builder
from pretrain.config import PretrainingConfig
from util import demo_corpus
from util import errors
from util import fileio
from util import tf_logging
from vocab import build_vocab as vocab_lib


def stage(title):
  print(f"\n== {title}", flush=True)
  return time.time()


def build_vocab(corpus, out, vocab_size):
  vocab_dir = out / "vocab"
  vocab_file = vocab_dir / "vocab.txt"
  if vocab_file.exists():
    print(f"vocab exists: {vocab_file}")
    return vocab_file
  vocab_lib.build_vocab(vocab_lib.VocabOptions(
      corpus=(str(corpus / "train"),), output_dir=str(vocab_dir), vocab_size=vocab_size,
      limit_alphabet=2000, unused=0, pretokenize="mecab", quiet=True))
  return vocab_file


def build_tfrecords(corpus_dir, vocab_file, out_dir, max_seq_length):
  if (out_dir / "summary.json").exists():
    print(f"TFRecords exist: {out_dir}")
    return out_dir
  summary = dataset_builder.build(dataset_builder.BuildOptions(
      (str(corpus_dir),), str(vocab_file), str(out_dir), max_seq_length=max_seq_length,
      num_out_files=2), progress=False)
  dataset_builder.print_summary(summary)
  if not summary["examples"]:
    raise demo_corpus.DemoError(f"building TFRecords from {corpus_dir} gave no examples")
  return out_dir


def demo_hparams(args, vocab_file, n_vocab):
  """A small ELECTRA that learns visibly in a few hundred CPU steps."""
  return {
      "model_size": "small", "embedding_size": 128, "max_seq_length": args.max_seq_length,
      "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 3,
                                 "num_attention_heads": 2, "intermediate_size": 512},
      # Half-size generator (64 wide, 1 head): the original's advice for a weak-enough
      # generator; the discriminator is what we evaluate.
      "generator_hidden_size": 0.5,
      "vocab_size": n_vocab, "vocab_file": str(vocab_file),
      "train_batch_size": args.batch_size, "eval_batch_size": args.batch_size,
      "num_train_steps": args.steps, "num_warmup_steps": max(1, args.steps // 10),
      "learning_rate": 5e-4, "save_checkpoints_steps": max(50, args.steps // 4),
      "log_every_steps": max(10, args.steps // 20), "num_eval_steps": 10,
      "iterations_per_loop": 50, "keep_checkpoint_max": 2,
  }


def _stage_modules():
  """The modules that load TensorFlow, imported when the stages run (`--help` answers at
  once). Returns (pretraining runner, Hugging Face converter, finetuning demo)."""
  from finetune import demo as finetune_demo
  from model.hf import convert as hf_convert
  from pretrain import runner as pretrain_runner
  return pretrain_runner, hf_convert, finetune_demo


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--output-dir", default="demo_output")
  p.add_argument("--steps", type=int, default=600, help="pretraining steps")
  p.add_argument("--batch-size", type=int, default=32)
  p.add_argument("--max-seq-length", type=int, default=128)
  p.add_argument("--finetuning-epochs", type=float, default=5.0,
                 help="epochs of the source-document task (stage 6)")
  p.add_argument("--vocab-size", type=int, default=6000)
  p.add_argument("--fresh", action="store_true", help="delete --output-dir first")
  p.add_argument("--verbose", action="store_true",
                 help="also show TensorFlow's own start-up and compiler log lines")
  args = p.parse_args(argv)
  global pretrain_runner, hf_convert, finetune_demo  # noqa: PLW0603 - see _stage_modules
  pretrain_runner, hf_convert, finetune_demo = _stage_modules()
  out = pathlib.Path(args.output_dir).resolve()
  if args.fresh:
    shutil.rmtree(out, ignore_errors=True)
  out.mkdir(parents=True, exist_ok=True)
  t0 = time.time()
  times = {}
  # Stages whose output exists are skipped: outputs of other options must not be reused.
  fileio.check_recorded_options(
      str(out / "demo_options.json"),
      {k: getattr(args, k) for k in ("steps", "batch_size", "max_seq_length", "vocab_size",
                                       "finetuning_epochs")},
      f"rerun with --fresh to rebuild {out}, or choose another --output-dir")
  t = stage("1/7 corpus: konlpy's Korean constitution and bills")
  corpus = demo_corpus.prepare_corpus(out)
  n_train = sum(f.stat().st_size for f in (corpus / "train").iterdir())
  n_held = sum(f.stat().st_size for f in (corpus / "heldout").iterdir())
  print(f"{corpus}: train {n_train / 1024:.0f} KB, held out {n_held / 1024:.0f} KB "
        f"(every {demo_corpus.HELDOUT_EVERY}th line of each text)")
  times["corpus"] = time.time() - t

  t = stage(f"2/7 vocab: WordPiece {args.vocab_size} with Mecab pre-tokenization")
  vocab_file = build_vocab(corpus, out, args.vocab_size)
  times["vocab"] = time.time() - t

  t = stage(f"3/7 TFRecords: length {args.max_seq_length}")
  data_dir = out / "data"
  build_tfrecords(corpus / "train", vocab_file, data_dir / "pretrain_tfrecords",
                  args.max_seq_length)
  build_tfrecords(corpus / "heldout", vocab_file, data_dir / "heldout_tfrecords",
                  args.max_seq_length)
  times["tfrecords"] = time.time() - t

  n_vocab = len(tokenization.load_vocab(str(vocab_file)))
  hp = demo_hparams(args, vocab_file, n_vocab)
  t = stage(f"4/7 pretraining: {args.steps} steps, batch {args.batch_size} "
            "(3 layers, hidden 128; generator hidden 64), CPU")
  config = PretrainingConfig("demo", str(data_dir), **hp)
  pretrain_runner.train_or_eval(config)
  times["pretraining"] = time.time() - t

  t = stage("5/7 evaluation: training text with fresh masks (as the original), "
            "then held-out text")
  results = evaluate(config, hp, data_dir)
  times["evaluation"] = time.time() - t

  t = stage("6/7 finetuning: which document does a held-out line come from?")
  finetuning = finetune_demo.source_task_stage(corpus, data_dir, hp, args.batch_size,
                                              args.finetuning_epochs)
  times["finetuning"] = time.time() - t

  times["total"] = time.time() - t0
  summary = write_summary(out, times, results, finetuning, config, corpus, vocab_file,
                          data_dir)
  print_summary(summary, out, config)

  # Export: hub-ready folders of the trained model and the classifier (export_hf.py).
  stage("7/7 export: Hugging Face folders (ElectraForPreTraining, ElectraForMaskedLM, "
        "ElectraForSequenceClassification)")
  written = hf_convert.export(config.model_dir, config, str(vocab_file), str(out / "hf"),
                              overwrite=True)
  written.update(hf_convert.export(
      finetuning["trial_dir"], config, str(vocab_file), str(out / "hf_classifier"),
      task_kind="sequence_classification", labels=finetuning["labels"], overwrite=True))
  print("load it with transformers:\n" +
        "\n".join("  " + line for line in hf_convert.usage_lines(written)))
  finetune_demo.show_pipeline(written["sequence_classification"], finetuning["files"]["test_file"])
  return 0


def evaluate(config, hp, data_dir):
  """Stage 5: the discriminator on the training text (fresh masks, as the original) and on
  the held-out text. Returns {"train" / "heldout": train_or_eval's output}."""
  results = {}
  for which, pattern, txt in (
      ("train", config.pretrain_tfrecords, config.results_txt),
      ("heldout", str(data_dir / "heldout_tfrecords" / example_builder.SHARD_GLOB),
       str(pathlib.Path(config.results_txt).with_name("heldout_results.txt")))):
    eval_config = PretrainingConfig(
        "demo", str(data_dir), **dict(hp, do_train=False, do_eval=True,
                                      pretrain_tfrecords=pattern, results_txt=txt))
    results[which] = pretrain_runner.train_or_eval(eval_config)
  return results


def write_summary(out, times, results, finetuning, config, corpus, vocab_file, data_dir):
  """OUT/demo_summary.json: stage times, discriminator metrics, paths, finetuning."""
  keys = ("disc_auc", "disc_accuracy", "disc_precision", "disc_recall", "disc_loss",
          "masked_lm_accuracy", "sampled_masked_lm_accuracy")
  summary = {
      "seconds": {k: round(v, 1) for k, v in times.items()},
      "global_step": int(results["train"]["global_step"]),
      "paths": {"corpus": str(corpus), "vocab": str(vocab_file),
                "tfrecords": str(data_dir / "pretrain_tfrecords"),
                "model_dir": config.model_dir,
                "results": results["train"]["results_txt"],
                "heldout_results": results["heldout"]["results_txt"]},
  }
  for which in ("train", "heldout"):
    summary[which] = {k: results[which]["results"][k] for k in keys}
  summary["finetuning"] = {k: v for k, v in finetuning.items() if k != "files"}
  with fileio.atomic_write(str(out / "demo_summary.json")) as f:
    json.dump(summary, f, indent=2)
  return summary


def print_summary(summary, out, config):
  print("\n== done in {:.0f}s; discriminator after {} steps (AUC of chance: 0.5):".format(
      summary["seconds"]["total"], summary["global_step"]))
  for which, label in (("train", "training text, fresh masks"), ("heldout", "held-out text")):
    r = summary[which]
    print(f"  {label:27s} AUC {r['disc_auc']:.3f}  accuracy {r['disc_accuracy']:.3f}  "
          f"precision {r['disc_precision']:.3f}  recall {r['disc_recall']:.3f}  "
          f"(generator masked-LM accuracy {r['masked_lm_accuracy']:.3f})")
  for k, v in summary["paths"].items():
    print(f"  {k:16s} {v}")
  f = summary["finetuning"]
  print(f"  finetuned on {f['num_labels']} documents' lines: test accuracy "
        f"{f['test_accuracy']:.1f} from the pretrained model, "
        f"{f['random_init_test_accuracy']:.1f} from random weights, "
        f"{f['majority_baseline']:.1f} always answering the largest document")
  print(f"  {'summary':16s} {out / 'demo_summary.json'}")
  print(f"TensorBoard: tensorboard --logdir {config.model_dir}")


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(errors.run_main(main))  # Ctrl-C and SIGTERM: one line, "resume with the same command"
