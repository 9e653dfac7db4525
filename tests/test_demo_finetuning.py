"""The demo's finetuning stage (finetune/demo.py) on a two-document toy corpus."""
import pathlib

from finetune import demo

TINY = {"max_seq_length": 32, "embedding_size": 16, "train_batch_size": 8,
        "num_train_epochs": 1.0, "log_every_steps": 1000,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64}}


def test_rerun_with_other_hparams_retrains_and_keeps_the_old_trial(tmp_path, vocab_v3):
  """A demo folder made by an older version (other finetuning hparams) is trained again,
  the old trial moved aside, instead of stopping with run_finetuning's advice."""
  corpus = tmp_path / "corpus"
  for split, n in (("train", 30), ("heldout", 6)):
    for doc, word in (("doc-a", "헌법"), ("doc-b", "법률안")):
      (corpus / split).mkdir(parents=True, exist_ok=True)
      (corpus / split / f"{doc}.txt").write_text(
          "".join(f"{word} 제{i}조 문장입니다\n" for i in range(n)), encoding="utf-8")
  files = demo.write_source_task(str(corpus), str(tmp_path / "task"))
  hp = dict(TINY, vocab_file=vocab_v3, vocab_size=35000)
  lines = []
  first = demo.finetune_source(str(tmp_path), "m", files, hp, random_init=True,
                               log=lines.append)
  again = demo.finetune_source(str(tmp_path), "m", files, dict(hp, learning_rate=3e-4),
                               random_init=True, log=lines.append)
  assert 0 <= again["test_accuracy"] <= 100 and again["labels"] == ["doc-a", "doc-b"]
  moved = [l for l in lines if l.startswith("retrain: ")]
  assert len(moved) == 1 and "learning_rate" in moved[0]
  aside = list(pathlib.Path(first["trial_dir"]).parent.glob("replaced_trials/*/*"))
  assert len(aside) == 1 and any(aside[0].iterdir())
