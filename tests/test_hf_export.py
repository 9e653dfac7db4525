"""export_hf.py / import_hf.py: a tiny ELECTRA pretrained a few steps on real Korean text is
exported, loaded with transformers 4.47.1 + torch (CPU), compared with the TensorFlow graph,
imported back bit for bit, and pretrained further; finetuned heads export with their
outputs; bad input stops with one error line and nothing written.

The same `tests.hf_reference.check` runs under transformers 5.x from
.ci/check_transformers5.sh.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import unicodedata

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import torch
import transformers
from transformers.models.electra import modeling_electra

import configure_pretraining
import export_hf
import import_hf
from pretrain import runner as pretrain_runner
from model import checkpoint
from model import hf
from model import modeling
from model import sizes
from model.hf import convert
from model.hf import files
from model.hf import names
from model.hf import pickle_reader
from tests import hf_reference
from tests.conftest import ROOT
from util import errors


@pytest.fixture(scope="module")
def made(tmp_path_factory, data_dir):
  """hf_reference.make: pretrained tiny model, its export and the references."""
  work = str(tmp_path_factory.mktemp("hf"))
  config, ckpt = hf_reference.make(work)
  return work, config, ckpt


@pytest.fixture(scope="module")
def report(made):
  return hf_reference.check(made[0], log=lambda line: None)


def _export(made, name):
  return os.path.join(made[0], "export", name)


def _import_folders(disc_dir, out_dir, **kwargs):
  return convert.import_folders(disc_dir, out_dir, import_hf.build_config, **kwargs)


def _import_finetuned(folder, task, out_dir, **kwargs):
  return convert.import_finetuned(folder, import_hf.finetuned_task(task), out_dir,
                                  import_hf.build_config, **kwargs)


def test_export_writes_every_file(made):
  for name, arch in (("discriminator", "ElectraForPreTraining"),
                     ("generator", "ElectraForMaskedLM")):
    folder = _export(made, name)
    assert sorted(os.listdir(folder)) == sorted([
        "README.md", "config.json", "model.safetensors", "special_tokens_map.json",
        "tokenizer.json", "tokenizer_config.json", "vocab.txt"])
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
      cfg = json.load(f)
    assert cfg["architectures"] == [arch] and cfg["model_type"] == "electra"
    assert cfg["hidden_act"] == "gelu" and cfg["layer_norm_eps"] == 1e-12
    assert cfg["embedding_size"] == 24 and cfg["vocab_size"] == 35000
    assert cfg["pad_token_id"] == 0 and cfg["max_position_embeddings"] == 64
    # The generator's sizes follow the checkpoint (hidden 32, one layer, one head).
    expect = (64, 2, 2, 128) if name == "discriminator" else (32, 1, 1, 128)
    assert (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
            cfg["intermediate_size"]) == expect
    with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
      tok_cfg = json.load(f)
    assert tok_cfg["do_lower_case"] is False and tok_cfg["strip_accents"] is False
    # What the published KoELECTRA v3 folders say (their tokenizer_config.json, copied to
    # the shared data), but for strip_accents: null there (off, as lower-casing is off),
    # false here; and the hub's own bookkeeping keys.
    with open(str(hf_reference.data_dir() / "vocab" / "v3" / "tokenizer_config.json"),
              encoding="utf-8") as f:
      published = json.load(f)
    assert published["tokenizer_class"] == tok_cfg["tokenizer_class"] == "ElectraTokenizer"
    hub_only = {"strip_accents", "name_or_path", "special_tokens_map_file", "model_max_length"}
    assert {k: tok_cfg.get(k) for k in set(published) - hub_only} == \
        {k: v for k, v in published.items() if k not in hub_only}
    assert tok_cfg["model_max_length"] == cfg["max_position_embeddings"]
    card = open(os.path.join(folder, "README.md"), encoding="utf-8").read()
    assert "training steps: 6 of 6" in card and arch + ".from_pretrained" in card
    with open(os.path.join(folder, "vocab.txt"), "rb") as a, \
         open(str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt"), "rb") as b:
      assert a.read() == b.read()
  # Written from numpy: safetensors metadata says "pt" (transformers checks it).
  from safetensors import safe_open
  with safe_open(os.path.join(_export(made, "generator"), "model.safetensors"), "np") as f:
    assert f.metadata()["format"] == "pt"
    assert "generator_lm_head.weight" not in f.keys()  # tied, as HF's own save leaves it out


def test_transformers_outputs_equal_the_tf_graph(made, report):
  """Loaded cleanly (no missing/unexpected/mismatched weight); logits within 1e-5."""
  assert report["transformers"] == "4.47.1"
  assert report["disc_max_abs_diff"] <= 1e-5
  assert report["gen_max_abs_diff"] <= 1e-5
  # The stored references cover 8 sentences for the generator; here all 64 of them.
  work, config, ckpt = made
  ref = np.load(os.path.join(work, "reference.npz"))
  gen = hf_reference.load_clean(transformers.ElectraForMaskedLM, _export(made, "generator"))
  assert len(ref["ids"]) == 64
  for i in range(0, 64, 16):
    part = [ref[k][i:i + 16] for k in ("ids", "mask", "types")]
    _, tf_gen = hf_reference.tf_logits(config, ckpt, *part)
    np.testing.assert_allclose(hf_reference.hf_logits(gen, *part), tf_gen, rtol=0, atol=1e-5)
  # Not trivially equal: the discriminator tells positions apart.
  assert np.abs(ref["disc_logits"] - ref["disc_logits"].mean()).max() > 1e-2


@pytest.mark.parametrize("which,cls", [("discriminator", "ElectraForPreTraining"),
                                       ("generator", "ElectraForMaskedLM")])
def test_same_tensors_as_load_tf_weights_in_electra(made, which, cls):
  """transformers' own TF reader, on our checkpoint, gives the exported tensors exactly."""
  folder = _export(made, which)
  exported = hf_reference.load_clean(getattr(transformers, cls), folder)
  config = transformers.ElectraConfig.from_pretrained(folder)
  torch.manual_seed(0)
  reference = getattr(transformers, cls)(config)
  modeling_electra.load_tf_weights_in_electra(reference, config, made[2],
                                              discriminator_or_generator=which)
  got = dict(exported.named_parameters())
  want = dict(reference.named_parameters())
  assert sorted(got) == sorted(want)
  for name in want:
    assert torch.equal(got[name], want[name]), name


def test_tokenizers_give_the_project_ids(made, report):
  """Fast: every line and the seed example; slow: all but the lines NFC changes."""
  assert report["fast_tokenizer_class"] == "ElectraTokenizerFast"  # as the published folders
  assert report["fast_tokenizer_lines"] == 1001
  lines = hf_reference.tokenizer_lines()
  nfc_changed = [i for i, l in enumerate(lines) if unicodedata.normalize("NFC", l) != l]
  assert any("\uf90a" in lines[i] for i in nfc_changed)  # the headline's 金 (U+F90A)
  assert report["slow_tokenizer_class"] == "ElectraTokenizer"
  assert report["slow_tokenizer_mismatches"] == nfc_changed
  assert len(nfc_changed) == 3  # the count docs/huggingface.md reports
  for use_fast in (True, False):
    tok = transformers.AutoTokenizer.from_pretrained(_export(made, "discriminator"),
                                                     use_fast=use_fast)
    assert tok(hf_reference.SEED_TEXT)["input_ids"] == hf_reference.SEED_IDS
    assert tok.convert_ids_to_tokens(hf_reference.SEED_IDS)[1:4] == ["한국어", "EL", "##EC"]


def test_tokenizer_json_equals_the_published_v3_one(made):
  """Our tokenizer.json and KoELECTRA's published v3 one give the same ids."""
  from tokenizers import Tokenizer
  ours = Tokenizer.from_file(os.path.join(_export(made, "discriminator"), "tokenizer.json"))
  hub = Tokenizer.from_file(str(hf_reference.data_dir() / "vocab" / "v3" / "tokenizer.json"))
  lines = hf_reference.tokenizer_lines() + [hf_reference.SEED_TEXT]
  assert [e.ids for e in ours.encode_batch(lines)] == [e.ids for e in hub.encode_batch(lines)]


def test_head_names():
  m = names.tf_to_hf_name
  assert m("task_specific/nsmc/classifier/out_proj/kernel", "sequence_classification") == (
      "classifier.out_proj.weight", True)
  assert m("task_specific/nsmc/classifier/dense/bias", "sequence_classification", "nsmc") == (
      "classifier.dense.bias", False)
  assert m("task_specific/nsmc/classifier/dense/bias", "sequence_classification", "x") is None
  assert m("task_specific/nsmc/dense/kernel", "sequence_classification") is None  # original
  assert m("task_specific/ner/dense/kernel", "token_classification") == (
      "classifier.weight", True)
  assert m("task_specific/q/dense_1/kernel", "question_answering") == (
      "qa_outputs.weight", True)
  assert m("task_specific/q/qa_hidden/kernel", "question_answering") is None  # joint
  assert m("electra/encoder/layer_1/output/LayerNorm/beta", "token_classification") == (
      "electra.encoder.layer.1.output.LayerNorm.bias", False)
  assert m("discriminator_predictions/dense/kernel", "token_classification") is None
  assert m("task_specific/ner/dense/kernel/adam_m", "token_classification") is None
  assert names.task_names(["task_specific/b/dense/bias", "task_specific/a/x/kernel",
                                "electra/embeddings/word_embeddings"]) == ["a", "b"]
  # QA rows: start is row 0, end row 1.
  start, end = np.full([4, 1], 1.0), np.full([4, 1], 2.0)
  state = names.tf_to_hf_state({"task_specific/q/dense/kernel": start,
                                     "task_specific/q/dense_1/kernel": end,
                                     "task_specific/q/dense/bias": np.array([3.0]),
                                     "task_specific/q/dense_1/bias": np.array([4.0])},
                                    "question_answering")
  np.testing.assert_array_equal(state["qa_outputs.weight"], [[1.0] * 4, [2.0] * 4])
  np.testing.assert_array_equal(state["qa_outputs.bias"], [3.0, 4.0])


def test_round_trip_is_bit_identical_and_resumes(made, tmp_path):
  """TF -> HF -> TF: the same variables, bit for bit; then run_pretraining continues."""
  work, config, ckpt = made
  out = tmp_path / "imported"
  lines = []
  hp = _import_folders(_export(made, "discriminator"), str(out),
                                gen_dir=_export(made, "generator"), log=lines.append)
  original = checkpoint.read_checkpoint_values(ckpt)
  imported = checkpoint.read_checkpoint_values(str(out), include_optimizer=True)
  model_vars = [n for n in original if n != "global_step"]
  assert sorted(model_vars) == sorted(n for n in imported
                                      if n != "global_step" and not checkpoint.is_optimizer_slot(n))
  for name in model_vars:
    assert imported[name].dtype == original[name].dtype
    assert np.array_equal(imported[name], original[name]), name
    assert not imported[name + "/adam_m"].any() and not imported[name + "/adam_v"].any()
  assert imported["global_step"] == 0 and imported["global_step"].dtype == np.int64
  with open(out / "hparams.json", encoding="utf-8") as f:
    assert json.load(f) == hp
  # hparams.json describes exactly the pretraining graph that wrote the original.
  rebuilt = configure_pretraining.PretrainingConfig("x", ".", **hp)
  assert rebuilt.bert_hparams() == config.bert_hparams()
  assert rebuilt.generator_hparams() == config.generator_hparams()
  assert rebuilt.embedding_dim() == config.embedding_dim()
  # HF -> TF -> HF: exporting the import with its hparams.json gives the same tensors.
  again = convert.export(str(out), rebuilt, str(out / "vocab.txt"), str(tmp_path / "again"),
                           log=lambda l: None)
  from safetensors.numpy import load_file
  for which, folder in again.items():
    first = load_file(os.path.join(_export(made, which), "model.safetensors"))
    second = load_file(os.path.join(folder, "model.safetensors"))
    assert sorted(first) == sorted(second)
    for name in first:
      assert np.array_equal(first[name], second[name]), name
  # Continued pretraining: the documented command's config, model_dir = the import.
  cont = configure_pretraining.PretrainingConfig(
      "cont", os.path.join(work, "pretrain"),
      **dict(hp, model_dir=str(out), num_train_steps=2, train_batch_size=4,
             max_seq_length=hf_reference.SEQ, num_warmup_steps=0, save_checkpoints_steps=2,
             iterations_per_loop=1, log_every_steps=1))
  logged = []
  result = pretrain_runner.train_or_eval(cont, log=logged.append)
  assert any(l.endswith("resuming from " + str(out / "model.ckpt-0")) for l in logged), logged
  assert result["global_step"] == 2
  trained = checkpoint.read_checkpoint_values(str(out))
  assert not np.array_equal(trained["electra/encoder/layer_0/output/dense/kernel"],
                            original["electra/encoder/layer_0/output/dense/kernel"])


def test_discriminator_alone_is_what_finetuning_loads(made, tmp_path):
  out = tmp_path / "disc"
  hp = _import_folders(_export(made, "discriminator"), str(out), log=lambda l: None)
  assert "generator_hidden_size" not in hp
  variables = checkpoint.checkpoint_variables(str(out), include_optimizer=True)
  assert not any(n.startswith(("generator", "generator_predictions")) for n in variables)
  assert not any(checkpoint.is_optimizer_slot(n) for n in variables)
  config = configure_pretraining.PretrainingConfig("x", ".", **hp)
  with tf.Graph().as_default():
    bert = modeling.BertModel(sizes.bert_config(config.bert_hparams()), False,
                              tf.zeros([1, 8], tf.int32), embedding_size=config.embedding_dim())
    del bert
    loaded = checkpoint.init_from_checkpoint(str(out), prefixes=("electra/",))
  assert len(loaded) == len([n for n in variables if n.startswith("electra/")])


@pytest.mark.parametrize("zip_format", [True, False])
def test_pytorch_bin_is_read_without_torch(made, tmp_path, zip_format):
  """A pytorch_model.bin folder (torch's zip format, or the earlier pickle format of many
  2020 hub uploads) imports in a process where torch cannot be imported."""
  src = _export(made, "discriminator")
  folder = tmp_path / "bin"
  shutil.copytree(src, folder)
  model = transformers.ElectraForPreTraining.from_pretrained(src)
  os.remove(folder / "model.safetensors")
  torch.save(model.state_dict(), folder / "pytorch_model.bin",
             _use_new_zipfile_serialization=zip_format)
  code = ("import sys; sys.modules['torch'] = None\n"
          "import import_hf\n"
          "sys.exit(import_hf.errors.run_main(import_hf.main, sys.argv[1:]))")
  proc = subprocess.run([sys.executable, "-c", code, "--discriminator", str(folder),
                         "--output-dir", str(tmp_path / "out")], cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  want = checkpoint.read_checkpoint_values(made[2])
  got = checkpoint.read_checkpoint_values(str(tmp_path / "out"))
  for name in got:
    if name != "global_step":
      assert np.array_equal(got[name], want[name]), name
  assert "discriminator_predictions/dense_1/kernel" in got


def test_run_finetuning_starts_from_an_import(made, tmp_path, capsys):
  """import_hf's finetuning_hparams.json + a second --hparams with the task is all
  run_finetuning.py needs: the encoder starts from the imported weights."""
  import run_finetuning
  from tests.finetune_data import layout
  ckpt = tmp_path / "imported"
  _import_folders(_export(made, "discriminator"), str(ckpt), log=lambda l: None)
  layout(tmp_path, "question-pair", rows=16)
  run = {"max_seq_length": 48, "train_batch_size": 8, "task_names": ["question-pair"],
         "num_train_epochs": 1.0, "do_eval": False}
  assert run_finetuning.main([
      "--data-dir", str(tmp_path), "--model-name", "ft",
      "--hparams", str(ckpt / "finetuning_hparams.json"), "--hparams", json.dumps(run)]) == 0
  out = capsys.readouterr().out
  assert "encoder initialised from %s" % (ckpt / "model.ckpt-0") in out, out[-2000:]
  trial = tmp_path / "models" / "ft" / "finetuning_models" / "question-pair_model" / "trial_1"
  trained = checkpoint.read_checkpoint_values(str(trial))
  start = checkpoint.read_checkpoint_values(str(ckpt))
  # Trained a step or two from the import: close to it, not equal, not a random init.
  name = "electra/embeddings/position_embeddings"
  delta = np.abs(trained[name] - start[name]).max()
  assert 0 < delta < 0.01, delta


def test_sharded_safetensors_are_read(made, tmp_path):
  """model.safetensors.index.json + shards (how the hub stores large models)."""
  from safetensors.numpy import load_file, save_file
  src = _export(made, "discriminator")
  folder = tmp_path / "sharded"
  shutil.copytree(src, folder)
  state = load_file(str(folder / "model.safetensors"))
  os.remove(folder / "model.safetensors")
  weight_names = sorted(state)
  weight_map = {}
  for i, part in enumerate((weight_names[::2], weight_names[1::2])):
    shard = "model-%05d-of-00002.safetensors" % (i + 1)
    save_file({n: state[n] for n in part}, str(folder / shard), metadata={"format": "pt"})
    weight_map.update({n: shard for n in part})
  (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
  got = files.read_weights(str(folder))
  assert sorted(got) == weight_names
  for n in weight_names:
    assert np.array_equal(got[n], state[n]), n


def test_pytorch_bin_with_other_objects_is_refused(tmp_path):
  """The restricted unpickler refuses any class but tensors: a crafted file runs nothing."""
  import pickle
  marker = tmp_path / "ran"

  class Payload:
    def __reduce__(self):
      return (os.system, ("touch %s" % marker,))

  path = tmp_path / "pytorch_model.bin"
  with open(path, "wb") as f:
    for obj in (0x1950A86A20F9469CFC6C, 1001, {}, {"w": Payload()}):
      pickle.dump(obj, f, protocol=2)
  with pytest.raises(hf.HFFormatError, match=r"holds a (posix|nt)\.system object"):
    pickle_reader.read_torch_checkpoint(str(path))
  assert not marker.exists()
  path.write_bytes(b"not a checkpoint")
  with pytest.raises(hf.HFFormatError, match="not a torch checkpoint"):
    pickle_reader.read_torch_checkpoint(str(path))


def _env():
  return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


def test_untied_generator_embeddings_round_trip(made, tmp_path):
  """untied_generator_embeddings: the generator's own table ([V, 32], no projection) is
  the generator's embeddings and output layer; the import recognises it."""
  from pretrain import electra
  work = made[0]
  hp = dict(hf_reference.TINY, untied_generator_embeddings=True,
            vocab_file=str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt"))
  config = configure_pretraining.PretrainingConfig("untied", work, **hp)
  with tf.Graph().as_default():
    features = {k: tf.zeros([2, hf_reference.SEQ], tf.int32)
                for k in ("input_ids", "input_mask", "segment_ids")}
    electra.PretrainingModel(config, features, is_training=False)
    tf.train.get_or_create_global_step()
    randomize = [tf.assign(v, v + tf.random.normal(v.shape, stddev=0.1))
                 for v in tf.trainable_variables() if "LayerNorm" in v.op.name]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(randomize)
      ckpt = tf.train.Saver().save(sess, str(tmp_path / "ckpt" / "model.ckpt"), global_step=0)
  values = checkpoint.read_checkpoint_values(ckpt)
  assert values["generator/embeddings/word_embeddings"].shape == (35000, 32)
  out = convert.export(ckpt, config, hp["vocab_file"], str(tmp_path / "export"),
                         log=lambda l: None)
  gen = hf_reference.load_clean(transformers.ElectraForMaskedLM, out["generator"])
  assert gen.config.embedding_size == 32 and gen.config.hidden_size == 32
  ref = np.load(os.path.join(work, "reference.npz"))
  part = [ref[k][:8] for k in ("ids", "mask", "types")]
  tf_disc, tf_gen = hf_reference.tf_logits(config, ckpt, *part)
  np.testing.assert_allclose(hf_reference.hf_logits(gen, *part), tf_gen, rtol=0, atol=1e-5)
  disc = hf_reference.load_clean(transformers.ElectraForPreTraining, out["discriminator"])
  np.testing.assert_allclose(hf_reference.hf_logits(disc, *part), tf_disc, rtol=0, atol=1e-5)
  hp_in = _import_folders(out["discriminator"], str(tmp_path / "imported"),
                                   gen_dir=out["generator"], log=lambda l: None)
  assert hp_in["untied_generator_embeddings"] is True
  back = checkpoint.read_checkpoint_values(str(tmp_path / "imported"))
  assert sorted(back) == sorted(values)
  for name in values:
    if name != "global_step":
      assert np.array_equal(back[name], values[name]), name


# ---------------------------------------------------------------- finetuned heads

def test_finetuned_heads_export_with_their_outputs(made, report):
  """Each head's HF model gives, on the TF encoder output, what the head computes (numpy
  of the TF variables): classifier dense -> gelu -> out_proj, tagger, QA start/end."""
  for kind, _, labels in hf_reference.HEAD_EXPORTS:
    assert report[kind + "_max_abs_diff"] <= 1e-5, kind
    with open(os.path.join(made[0], "export_heads", kind, "config.json")) as f:
      cfg = json.load(f)
    assert cfg["architectures"] == [names.KINDS[kind].architecture]
    if kind == "sequence_classification":
      assert cfg["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
      assert cfg["label2id"] == {"neg": 0, "neu": 1, "pos": 2}
      assert cfg["problem_type"] == "single_label_classification"
    elif kind == "token_classification":
      assert len(cfg["id2label"]) == 5 and "problem_type" not in cfg
  heads = np.load(os.path.join(made[0], "heads_reference.npz"))
  assert heads["question_answering"].shape == (2, 16, hf_reference.SEQ)
  for kind, _, _ in hf_reference.HEAD_EXPORTS:
    # The numpy formula is what finetune/heads.py computes (so HF = the finetuning head).
    np.testing.assert_allclose(heads[kind], heads["tf_" + kind], rtol=0, atol=1e-5)
    assert np.abs(heads[kind]).max() > 0.1  # not all zero


@pytest.fixture(scope="module")
def head_ckpt(made):
  prefix = os.path.join(made[0], "heads", "model.ckpt-9")
  return prefix, checkpoint.read_checkpoint_values(prefix)


@pytest.mark.parametrize("case", ["original_head", "no_task_name", "labels_count", "joint_qa"])
def test_heads_that_do_not_map_are_refused(head_ckpt, tmp_path, case, capsys):
  prefix, _ = head_ckpt
  vocab = str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt")
  args = ["--checkpoint", prefix, "--hparams", json.dumps(hf_reference.TINY),
          "--vocab-file", vocab, "--output-dir", str(tmp_path / "out")]
  if case == "original_head":
    args += ["--task-kind", "sequence_classification", "--task-name", "original"]
    expect = "not one-to-one with ElectraForSequenceClassification"
  elif case == "no_task_name":
    args += ["--task-kind", "token_classification"]
    expect = "several tasks (korquad, korquad_joint, ner, nsmc, original)"
  elif case == "labels_count":
    args += ["--task-kind", "sequence_classification", "--task-name", "nsmc",
             "--labels", "a,b"]
    expect = "2 label names given (a, b) but the head has 3 outputs"
  else:
    # KorQuAD with joint_prediction: the end layer sees the start; not HF's qa_outputs.
    args += ["--task-kind", "question_answering", "--task-name", "korquad_joint"]
    expect = "task_specific/korquad_joint/qa_hidden/kernel"
  assert errors.run_main(export_hf.main, args) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and expect in err, err
  assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- bad input


def _left_over(parent):
  return [n for n in os.listdir(parent) if ".tmp-" in n]


@pytest.mark.parametrize("case", ["hidden_size", "vocab_size", "vocab_file", "not_empty",
                                  "which", "no_checkpoint"])
def test_bad_export_input(made, tmp_path, case, capsys):
  vocab = str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt")
  hp = json.loads(json.dumps(hf_reference.TINY))
  out = tmp_path / "out"
  extra = []
  if case == "hidden_size":
    hp["model_hparam_overrides"]["hidden_size"] = 128
    expect = "electra.encoder.layer.0.attention.self.query.weight (128, 128) vs (64, 64)"
  elif case == "vocab_size":
    hp["vocab_size"] = 32200
    expect = "electra.embeddings.word_embeddings.weight (32200, 24) vs (35000, 24)"
  elif case == "no_checkpoint":
    extra = ["--checkpoint", str(tmp_path / "nowhere")]
    expect = "does not exist"
  elif case == "vocab_file":
    vocab = str(hf_reference.data_dir() / "vocab" / "v1" / "vocab.txt")
    expect = "has 32200 tokens but the checkpoint's embedding matrix has 35000 rows"
    hp["vocab_size"] = 35000
  elif case == "not_empty":
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    expect = "is not empty; pass --overwrite"
  else:
    extra = ["--which", "discriminator,generater"]
    expect = "unknown model 'generater'"
  args = ["--checkpoint", made[2], "--hparams", json.dumps(hp), "--vocab-file", vocab,
          "--output-dir", str(out)] + extra
  assert errors.run_main(export_hf.main, args) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and expect in err, err
  assert "Traceback" not in err
  if case == "not_empty":
    assert os.listdir(out) == ["keep.txt"]
    assert errors.run_main(export_hf.main, args + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["discriminator", "generator"]
  else:
    assert not out.exists()
  assert _left_over(tmp_path) == []


@pytest.mark.parametrize("tokenizer_class", ["ElectraTokenizer", "BertTokenizer"])
def test_import_accepts_both_tokenizer_classes(made, tmp_path, tokenizer_class):
  """A folder naming ElectraTokenizer (the published ones, and exports since) or
  BertTokenizer (exports before) imports to the same checkpoint."""
  folder = tmp_path / "disc"
  shutil.copytree(_export(made, "discriminator"), folder)
  cfg_path = folder / "tokenizer_config.json"
  cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
  cfg_path.write_text(json.dumps(dict(cfg, tokenizer_class=tokenizer_class)), encoding="utf-8")
  out = tmp_path / "out"
  assert errors.run_main(import_hf.main, ["--discriminator", str(folder),
                                          "--output-dir", str(out)]) == 0
  want = checkpoint.read_checkpoint_values(made[2])
  got = checkpoint.read_checkpoint_values(str(out))
  assert sorted(n for n in got if n != "global_step") == sorted(
      n for n in want if n.startswith(("electra/", "discriminator_predictions/")))
  for name in got:
    if name != "global_step":
      assert np.array_equal(got[name], want[name]), name
  assert (out / "vocab.txt").read_bytes() == (folder / "vocab.txt").read_bytes()


@pytest.mark.parametrize("setting,want,note", [
    (True, True, None), (False, False, None),
    ("absent", False, "has no do_lower_case; the vocab is taken as cased"),
    ("no file", False, "no tokenizer_config.json; the vocab is taken as cased"),
    ("yes", None, "do_lower_case must be true or false, got 'yes'")])
def test_import_carries_the_tokenizers_case(made, tmp_path, capsys, setting, want, note):
  """do_lower_case comes from the folder's tokenizer_config.json (it was always false)."""
  folder = tmp_path / "disc"
  shutil.copytree(_export(made, "discriminator"), folder)
  cfg_path = folder / "tokenizer_config.json"
  cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
  cfg.pop("do_lower_case")
  cfg.pop("strip_accents")
  if setting == "no file":
    cfg_path.unlink()
  elif setting != "absent":
    cfg_path.write_text(json.dumps(dict(cfg, do_lower_case=setting)), encoding="utf-8")
  else:
    cfg_path.write_text(json.dumps(cfg), encoding="utf-8")
  out = tmp_path / "out"
  rc = errors.run_main(import_hf.main, ["--discriminator", str(folder),
                                        "--output-dir", str(out)])
  captured = capsys.readouterr()
  if want is None:
    assert rc == 2 and note in captured.err and not out.exists()
    return
  assert rc == 0, captured.err
  for name in ("hparams.json", "finetuning_hparams.json"):
    assert json.loads((out / name).read_text(encoding="utf-8"))["do_lower_case"] is want
  assert (note in captured.out + captured.err) if note else \
      "do_lower_case" not in captured.out + captured.err


@pytest.mark.parametrize("case", ["bert", "no_config", "shapes", "generator_mismatch"])
def test_bad_import_input(made, tmp_path, case, capsys):
  disc = tmp_path / "disc"
  shutil.copytree(_export(made, "discriminator"), disc)
  args = ["--discriminator", str(disc), "--output-dir", str(tmp_path / "out")]
  cfg_path = disc / "config.json"
  cfg = json.loads(cfg_path.read_text())
  if case == "bert":
    cfg["model_type"] = "bert"
    cfg_path.write_text(json.dumps(cfg))
    expect = "model_type is 'bert', not 'electra'"
  elif case == "no_config":
    cfg_path.unlink()
    expect = "no config.json (not a Hugging Face model folder)"
  elif case == "shapes":
    cfg["intermediate_size"] = 256
    cfg_path.write_text(json.dumps(cfg))
    expect = "electra.encoder.layer.0.intermediate.dense.weight (256, 64) vs (128, 64)"
  else:
    gen = tmp_path / "gen"
    shutil.copytree(_export(made, "generator"), gen)
    gcfg = json.loads((gen / "config.json").read_text())
    gcfg["max_position_embeddings"] = 128
    (gen / "config.json").write_text(json.dumps(gcfg))
    args += ["--generator", str(gen)]
    expect = "max_position_embeddings differs between"
  assert errors.run_main(import_hf.main, args) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and expect in err, err
  assert not (tmp_path / "out").exists() and _left_over(tmp_path) == []


def test_finetuned_qa_imports_bit_for_bit(made, head_ckpt, tmp_path):
  """KorQuAD: qa_outputs [2, H] splits back into the start / end layers exactly."""
  _, values = head_ckpt
  out = tmp_path / "trial_1"
  hp = _import_finetuned(os.path.join(made[0], "export_heads", "question_answering"),
                                  "korquad", str(out), log=lambda l: None)
  back = checkpoint.read_checkpoint_values(str(out))
  want = {n for n in values if n.startswith(("electra/", "task_specific/korquad/"))}
  assert set(back) == want | {"global_step"}
  for name in want:
    assert np.array_equal(back[name], values[name]), name
  assert hp["task_names"] == ["korquad"] and hp["classifier_head"] == "hf"
  # The hparams written build the encoder the heads were trained on.
  import configure_finetuning
  ft = configure_finetuning.FinetuningConfig("m", str(tmp_path), max_query_length=16, **hp)
  assert ft.bert_hparams() == made[1].bert_hparams()
  assert ft.embedding_dim() == made[1].embedding_dim()


def test_label_order():
  """convert.label_order: rows matched to the task's labels by name; generic names taken
  in order (and said); other names or counts refused."""
  kornli = import_hf.finetuned_task("kornli")   # contradiction, entailment, neutral
  named = lambda *n: {"id2label": {str(i): x for i, x in enumerate(n)}}
  lines = []
  assert convert.label_order(named("neutral", "contradiction", "entailment"), kornli, "f",
                             lines.append) == [1, 2, 0]
  assert "reordered" in lines[-1]
  assert convert.label_order(named("LABEL_0", "LABEL_1", "LABEL_2"), kornli, "f",
                             lines.append) == [0, 1, 2]
  assert "names no labels" in lines[-1] and "contradiction, entailment, neutral" in lines[-1]
  with pytest.raises(hf.HFFormatError, match="the head has 2 labels"):
    convert.label_order(named("a", "b"), kornli, "f")
  with pytest.raises(hf.HFFormatError, match="are not kornli's labels"):
    convert.label_order(named("neg", "neu", "pos"), kornli, "f")
  assert convert.label_order(named("LABEL_0"), import_hf.finetuned_task("korsts"), "f") is None
  with pytest.raises(hf.HFFormatError, match="regression task"):
    convert.label_order(named("a", "b"), import_hf.finetuned_task("korsts"), "f")
  assert convert.label_order({}, import_hf.finetuned_task("korquad"), "f") is None


@pytest.mark.parametrize("task,args,expect", [
    ("korquad", [], "holds ElectraForSequenceClassification; korquad (a span task) needs "
                    "ElectraForQuestionAnswering"),
    ("nsmc", [], "the head has 3 labels (neg, neu, pos), nsmc has 2 (0, 1)"),
    ("hate-speech", [], "id2label names neg, neu, pos are not hate-speech's labels none, "
                        "offensive, hate"),
    ("nsmc", ["--generator", "x"], "--generator goes with --discriminator"),
    (None, ["--task", "nsmc"], "--finetuned and --task go together"),
])
def test_bad_finetuned_import(made, tmp_path, task, args, expect, capsys):
  folder = os.path.join(made[0], "export_heads", "sequence_classification")
  out = tmp_path / "out"
  source = ["--finetuned", folder, "--task", task] if task else ["--discriminator", folder]
  assert errors.run_main(import_hf.main, source + args + ["--output-dir", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.startswith("error: ") and expect in err, err
  assert not out.exists() and _left_over(tmp_path) == []


@pytest.mark.parametrize("script", ["export_hf.py", "import_hf.py"])
def test_help_answers_before_tensorflow(tmp_path, script):
  """--help, run as the command line runs it (from another directory), prints the usage
  without importing TensorFlow, torch or transformers, and no native log line."""
  code = ("import runpy, sys\n"
          "sys.argv = sys.argv[1:]\n"
          "try:\n"
          "  runpy.run_path(sys.argv[0], run_name='__main__')\n"
          "except SystemExit as e:\n"
          "  assert e.code == 0, e.code\n"
          "heavy = [m for m in ('tensorflow', 'torch', 'transformers') if m in sys.modules]\n"
          "print('loaded:', heavy)\n")
  env = {k: v for k, v in _env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  proc = subprocess.run([sys.executable, "-c", code, os.path.join(ROOT, script), "--help"],
                        cwd=str(tmp_path), env=env, capture_output=True, text=True,
                        timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "--output-dir" in proc.stdout and "model/hf/" in proc.stdout
  assert proc.stdout.rstrip().endswith("loaded: []"), proc.stdout[-500:]
  assert proc.stderr == ""


def test_documented_commands_parse():
  """The command lines of docs/huggingface.md parse with the CLIs' own parsers."""
  text = open(os.path.join(ROOT, "docs", "huggingface.md"), encoding="utf-8").read()
  found = 0
  for script, module in (("export_hf.py", export_hf), ("import_hf.py", import_hf)):
    for block in text.split("python " + script)[1:]:
      command = block.split("```")[0].replace("\\\n", " ").split("\n")[0]
      argv = shlex.split(command)
      module.build_parser().parse_args(argv)
      found += 1
  assert found >= 3


# ---------------------------------------------------------------- run_finetuning checkpoints


@pytest.mark.parametrize("task,kind,head", [
    ("question-pair", "sequence_classification", "hf"),
    ("naver-ner", "token_classification", "electra"),
    ("korsts", "sequence_classification", "hf")])
def test_run_finetuning_checkpoint_exports(tmp_path, task, kind, head):
  """A checkpoint of run_finetuning.py itself (a few steps, tiny random encoder) exports
  with the finetuning hparams, and transformers gives the head on the TF encoder output."""
  import configure_finetuning
  from finetune import runner as finetune_runner
  from model import tokenization
  from tests.finetune_data import layout
  layout(tmp_path, task, rows=24)
  vocab = str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt")
  hp = {"max_seq_length": 48, "embedding_size": 16, "train_batch_size": 8,
        "allow_random_init": True, "task_names": [task], "classifier_head": head,
        "num_train_epochs": 1.0, "do_eval": False, "do_test": False, "seed": 3,
        "vocab_file": vocab,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64}}
  config = configure_finetuning.FinetuningConfig("tiny", str(tmp_path), **hp)
  finetune_runner.run(config, log=lambda l: None)
  trial = os.path.join(config.model_dir, "trial_1")
  out = tmp_path / "hf"
  # No --task-kind, no --labels: the task's kind and label names come with it.
  assert errors.run_main(export_hf.main, [
      "--checkpoint", trial, "--hparams", json.dumps(hp), "--vocab-file", vocab,
      "--output-dir", str(out)]) == 0
  model = hf_reference.load_clean(
      getattr(transformers, names.KINDS[kind].architecture), str(out))
  from finetune import tasks as tasks_lib
  labels = list(tasks_lib.get_task(task).labels) or ["LABEL_0"]
  assert [model.config.id2label[i] for i in range(len(labels))] == labels
  tok = tokenization.FullTokenizer(vocab)
  ids, mask, types = hf_reference.encode(tok, hf_reference.sentences(8), seq=48)
  values = checkpoint.read_checkpoint_values(trial)
  with tf.Graph().as_default():
    bert = modeling.BertModel(sizes.bert_config(config.bert_hparams()), False,
                              tf.constant(ids, tf.int32), tf.constant(mask, tf.int32),
                              tf.constant(types, tf.int32), use_one_hot_embeddings=False,
                              embedding_size=config.embedding_dim())
    checkpoint.init_from_checkpoint(trial, prefixes=("electra/",))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      seq = sess.run(bert.get_sequence_output())
  want = hf_reference.head_outputs(kind, task, values, seq)
  got = hf_reference.hf_logits(model, ids, mask, types)
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
  assert model.config.num_labels == want.shape[-1]
  if task == "korsts":
    assert want.shape[-1] == 1 and model.config.problem_type == "regression"
  else:
    assert want.shape[-1] > 1

  # Back into TF: the same variables, bit for bit, and run_finetuning scores the import
  # exactly as the trial it came from (evaluation only, the hparams import_hf wrote).
  if task == "question-pair":
    # Named labels in another order: the import puts the rows back in the task's order.
    from safetensors.numpy import load_file, save_file
    weights = load_file(str(out / "model.safetensors"))
    for leaf in ("weight", "bias"):
      weights["classifier.out_proj." + leaf] = np.ascontiguousarray(
          weights["classifier.out_proj." + leaf][::-1])
    save_file(weights, str(out / "model.safetensors"))
    cfg = json.loads((out / "config.json").read_text(encoding="utf-8"))
    cfg["id2label"], cfg["label2id"] = {"0": "1", "1": "0"}, {"1": 0, "0": 1}
    (out / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
  imported = tmp_path / "models" / "imported" / "finetuning_models" / f"{task}_model" / "trial_1"
  lines = []
  hp_in = _import_finetuned(str(out), task, str(imported), log=lines.append)
  # Named in the task's order (as exported) imports silently; reordered names say so.
  assert any("reordered by label name" in l for l in lines) == (task == "question-pair")
  back = checkpoint.read_checkpoint_values(str(imported))
  assert sorted(back) == sorted(values)
  for name in values:
    if name != "global_step":
      assert np.array_equal(back[name], values[name]), name
  assert hp_in["do_train"] is False and hp_in["classifier_head"] == "hf"
  scored = {}  # on the dev split (the shared question-pair files have no test file;
  # Naver NER has no dev file: a slice of train)
  for name, params in (("tiny", hp), ("imported", hp_in)):
    params = dict(params, do_train=False, do_eval=True, do_test=False,
                  dev_slice_fraction=0.1)
    cfg = configure_finetuning.FinetuningConfig(name, str(tmp_path), **params)
    _, trials = finetune_runner.run(cfg, log=lambda l: None)
    scored[name] = trials[0]["dev"]
  assert scored["imported"] == scored["tiny"] and scored["tiny"]


def test_gs_output_and_input(made, tmp_path, gcs_env, monkeypatch):
  """export to gs://, import from those gs:// folders to a gs:// checkpoint (Cloud
  Storage emulator): the same bytes as the local round trip, entry points uploaded last,
  a non-empty destination refused without --overwrite and cleaned with it."""
  from tests.conftest import BUCKET
  from util import gcs
  from util.gcs import transfer
  work, config, ckpt = made
  order = []
  copy = transfer.copy

  def recording_copy(src, dst, *a, **kw):
    order.append(dst)
    return copy(src, dst, *a, **kw)
  monkeypatch.setattr(transfer, "copy", recording_copy)  # what gcs.publish_dir calls
  hub = f"gs://{BUCKET}/hf"
  vocab = os.path.join(_export(made, "discriminator"), "vocab.txt")
  written = convert.export(ckpt, config, vocab, hub, log=lambda l: None)
  assert written == {"discriminator": hub + "/discriminator", "generator": hub + "/generator"}
  assert order[-2:] == [hub + "/discriminator/config.json", hub + "/generator/config.json"]
  objects = gcs.prefix_objects(hub)
  for which in ("discriminator", "generator"):
    assert sorted(n.split("/", 1)[1] for n in objects if n.startswith(which + "/")) == \
        sorted(os.listdir(_export(made, which)))
  order.clear()
  out = f"gs://{BUCKET}/ckpt"
  rc = import_hf.main(["--discriminator", hub + "/discriminator", "--generator",
                       hub + "/generator", "--output-dir", out])
  assert rc == 0
  assert order[-1] == out + "/checkpoint"
  local = tmp_path / "local"
  _import_folders(_export(made, "discriminator"), str(local),
                           gen_dir=_export(made, "generator"), log=lambda l: None)
  down = tmp_path / "down"
  gcs.copy(out, str(down), recursive=True, progress=False)
  assert sorted(os.listdir(down)) == sorted(os.listdir(local))
  for name in os.listdir(local):
    if not name.endswith("hparams.json"):
      assert (down / name).read_bytes() == (local / name).read_bytes(), name
  hp = json.loads((down / "hparams.json").read_text(encoding="utf-8"))
  assert hp["vocab_file"] == out + "/vocab.txt"
  ft = json.loads((down / "finetuning_hparams.json").read_text(encoding="utf-8"))
  assert ft["init_checkpoint"] == out and ft["vocab_file"] == out + "/vocab.txt"
  # Not empty: refused, nothing changed; --overwrite replaces and removes what is stale.
  with pytest.raises(hf.HFFormatError, match="not empty"):
    _import_folders(_export(made, "discriminator"), out, log=lambda l: None)
  (tmp_path / "stale").write_text("x")
  gcs.copy(str(tmp_path / "stale"), out + "/stale.txt", progress=False)
  _import_folders(_export(made, "discriminator"), out, overwrite=True,
                           log=lambda l: None)
  assert "stale.txt" not in gcs.prefix_objects(out)
  assert "model.ckpt-0.index" in gcs.prefix_objects(out)


# ---------------------------------------------------------------- folders transformers wrote

@pytest.mark.parametrize("cls_name,task,kind", [
    ("ElectraForSequenceClassification", "kornli", "sequence_classification"),
    ("ElectraForQuestionAnswering", "korquad", "question_answering")])
def test_folder_saved_by_transformers_imports(tmp_path, cls_name, task, kind):
  """A model transformers itself created and saved (save_pretrained: its safetensors, its
  config.json), not one of our exports: the imported TF encoder + head give its logits.
  KorNLI's labels are named in another order than the task's, so the rows are reordered."""
  from model import tokenization
  torch.manual_seed(0)
  vocab = str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt")
  labels = {0: "neutral", 1: "contradiction", 2: "entailment"}
  cfg = transformers.ElectraConfig(
      vocab_size=35000, embedding_size=16, hidden_size=32, num_hidden_layers=2,
      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
      **({"id2label": labels, "label2id": {v: k for k, v in labels.items()}}
         if task == "kornli" else {}))
  model = getattr(transformers, cls_name)(cfg).eval()
  folder = tmp_path / "hub"
  model.save_pretrained(str(folder))
  shutil.copy(vocab, folder / "vocab.txt")
  out = tmp_path / "trial_1"
  hp = _import_finetuned(str(folder), task, str(out), log=lambda l: None)
  values = checkpoint.read_checkpoint_values(str(out))
  import configure_finetuning
  config = configure_finetuning.FinetuningConfig("m", str(tmp_path), max_query_length=16,
                                                 **hp)
  tok = tokenization.FullTokenizer(vocab)
  ids, mask, types = hf_reference.encode(tok, hf_reference.sentences(8), seq=48)
  with tf.Graph().as_default():
    bert = modeling.BertModel(sizes.bert_config(config.bert_hparams()), False,
                              tf.constant(ids, tf.int32), tf.constant(mask, tf.int32),
                              tf.constant(types, tf.int32), use_one_hot_embeddings=False,
                              embedding_size=config.embedding_dim())
    checkpoint.init_from_checkpoint(str(out), prefixes=("electra/",))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      seq = sess.run(bert.get_sequence_output())
  ours = hf_reference.head_outputs(kind, task, values, seq)
  with torch.no_grad():
    result = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                   token_type_ids=torch.tensor(types))
  if kind == "question_answering":
    theirs = np.stack([result.start_logits.numpy(), result.end_logits.numpy()])
  else:  # the task's order: contradiction, entailment, neutral = their rows 1, 2, 0
    theirs = result.logits.numpy()[:, [1, 2, 0]]
  np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
  assert np.abs(theirs).max() > 0.01


def test_pretraining_folders_saved_by_transformers_import(tmp_path):
  """ElectraForPreTraining + ElectraForMaskedLM as transformers creates and saves them (the
  generator's embeddings set to the discriminator's, as ELECTRA shares them; its tied
  output layer left to save_pretrained): the imported TF graph gives both models' logits."""
  from model import tokenization
  torch.manual_seed(1)
  vocab = str(hf_reference.data_dir() / "vocab" / "v3" / "vocab.txt")
  common = dict(vocab_size=35000, embedding_size=16, max_position_embeddings=64)
  disc = transformers.ElectraForPreTraining(transformers.ElectraConfig(
      hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
      **common)).eval()
  gen = transformers.ElectraForMaskedLM(transformers.ElectraConfig(
      hidden_size=16, num_hidden_layers=1, num_attention_heads=1, intermediate_size=64,
      **common)).eval()
  gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
  gen.tie_weights()
  folders = {}
  for name, model in (("disc", disc), ("gen", gen)):
    folders[name] = tmp_path / name
    model.save_pretrained(str(folders[name]))
    shutil.copy(vocab, folders[name] / "vocab.txt")
  out = tmp_path / "ckpt"
  hp = _import_folders(str(folders["disc"]), str(out), gen_dir=str(folders["gen"]),
                                log=lambda l: None)
  assert hp["untied_generator_embeddings"] is False
  config = configure_pretraining.PretrainingConfig("m", ".", **hp)
  tok = tokenization.FullTokenizer(vocab)
  ids, mask, types = hf_reference.encode(tok, hf_reference.sentences(8), seq=48)
  d_ours, g_ours = hf_reference.tf_logits(config, checkpoint.resolve_checkpoint(str(out)),
                                          ids, mask, types)
  np.testing.assert_allclose(d_ours, hf_reference.hf_logits(disc, ids, mask, types),
                             rtol=0, atol=1e-5)
  np.testing.assert_allclose(g_ours, hf_reference.hf_logits(gen, ids, mask, types),
                             rtol=0, atol=1e-5)
