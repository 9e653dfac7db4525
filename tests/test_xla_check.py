"""util/xla_check: the TPU train step compiled whole by XLA on the CPU.

A model_fn with an op XLA cannot compile (a py_function, a string op) fails with one line
naming the op type, op name, tensor and the line that created it; the real pretraining
model_fn with the TPU settings (use_tpu, fused kernels off, bfloat16) passes, with
host_call summaries written on the host."""
import glob

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import build_pretraining_dataset
import run_pretraining
from pretrain import runner as pretrain_runner
from pretrain.config import PretrainingConfig
from tests.conftest import head_lines
from util import errors
from util import tfrecord_input
from util import xla_check

SEQ = 16
TINY = {
    "model_size": "small", "embedding_size": 32, "max_seq_length": SEQ,
    "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                               "num_attention_heads": 1, "intermediate_size": 64},
    "generator_hidden_size": 1.0, "vocab_size": 35000,
    "train_batch_size": 4, "num_train_steps": 10, "num_warmup_steps": 2,
    "log_every_steps": 1,
}


def _toy_model_fn(transform):
  """A linear model whose activations go through `transform` (the op under test)."""
  def model_fn(features, labels, mode, params):
    del labels, params
    x = tf.cast(features["x"], tf.float32)
    w = tf.get_variable("w", [x.shape[-1], 1], initializer=tf.ones_initializer())
    h = transform(tf.matmul(x, w))
    loss = tf.reduce_mean(tf.square(h))
    step = tf.train.get_or_create_global_step()
    train_op = tf.train.GradientDescentOptimizer(0.1).minimize(loss, global_step=step)
    return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, loss=loss, train_op=train_op)
  return model_fn


def _py_double(t):
  out = tf.py_function(lambda a: a * 2.0, [t], tf.float32, name="double_in_python")
  out.set_shape(t.shape)
  return out


def _via_string(t):
  # The gradient flows through t; the string round trip only feeds the loss's value.
  text = tf.strings.as_string(t, name="format_as_text")
  return t + tf.stop_gradient(tf.strings.to_number(text, tf.float32) - t)


FEATURES = {"x": np.arange(12, dtype=np.float32).reshape(4, 3)}


def test_plain_model_fn_passes():
  result = xla_check.check_train_step(_toy_model_fn(tf.nn.relu), FEATURES)
  # w = ones, x rows 0..11: h = row sums 3, 12, 21, 30 -> mean square 396.
  assert result.loss == pytest.approx((3 ** 2 + 12 ** 2 + 21 ** 2 + 30 ** 2) / 4)
  assert result.batch_shapes == {"x": (4, 3)}
  assert "XLA check passed" in result.summary()


@pytest.mark.parametrize("transform,op_type,op_name", [
    (_py_double, "EagerPyFunc", "double_in_python"),
    (_via_string, "AsString", "format_as_text"),
])
def test_non_compilable_op_is_named(transform, op_type, op_name):
  with pytest.raises(xla_check.XlaCheckError) as info:
    xla_check.check_train_step(_toy_model_fn(transform), FEATURES)
  message = str(info.value)
  assert isinstance(info.value, errors.UserError)
  assert "\n" not in message
  assert f"op {op_type} named '{op_name}" in message
  assert f"tensor {op_name}" in message
  # The line of the test that created the op, not a TensorFlow internal.
  assert "test_xla_check.py:" in message


def test_dynamic_batch_is_refused():
  def input_fn(params):
    d = tf.data.Dataset.from_tensor_slices({"x": np.zeros([5, 3], np.float32)})
    return d.batch(params["batch_size"])  # no drop_remainder: batch dimension unknown
  with pytest.raises(xla_check.XlaCheckError, match="'x' has shape.*drop_remainder"):
    xla_check.first_batch(input_fn, 2)


def _pretraining_tfrecords(tmp_path, data_dir, vocab_v3):
  """TFRecords of 64 real news comments in tmp_path/pretrain_tfrecords (the runner's DIR)."""
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  lines = head_lines(data_dir / "corpus" / "hate-speech-unlabeled" / "unlabeled_comments_5.txt",
                     64)
  (corpus / "c.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  assert build_pretraining_dataset.main([
      "--corpus-dir", str(corpus), "--vocab-file", vocab_v3,
      "--output-dir", str(tmp_path / "pretrain_tfrecords"), "--max-seq-length", str(SEQ),
      "--num-out-files", "1", "--no-progress"]) == 0


def test_tiny_pretraining_step_compiles_with_tpu_settings(tmp_path, data_dir, vocab_v3):
  # TFRecords from 64 real news comments, read back by the runner's own input_fn.
  _pretraining_tfrecords(tmp_path, data_dir, vocab_v3)
  config = PretrainingConfig(
      "tiny", str(tmp_path), vocab_file=vocab_v3, use_tpu=True, fused_kernels=False,
      use_bf16=True, **TINY)
  input_fn = tfrecord_input.get_input_fn(
      tfrecord_input.expand_patterns(config.pretrain_tfrecords),
      tfrecord_input.pretraining_features(SEQ), is_training=True)
  batch = xla_check.first_batch(input_fn, config.train_batch_size)
  assert batch["input_ids"].shape == (4, SEQ) and batch["input_ids"].dtype == np.int32
  result = xla_check.check_train_step(pretrain_runner.model_fn_builder(config), batch)
  # CrossShardOptimizer's all-reduce, once per trainable variable, stood in by Identity.
  assert result.replaced_ops > 0
  assert result.compiled_ops > 100
  assert np.isfinite(result.loss) and result.loss > 0
  # host_call ran on the host: its event file was written under config.model_dir.
  assert glob.glob(str(tmp_path / "models" / "tiny" / "events.out.tfevents.*"))


def test_check_xla_flag_of_run_pretraining(tmp_path, data_dir, vocab_v3, capsys):
  """The command line's --check-xla: the TPU graph (bf16) compiles and runs one step, and
  nothing is written into the model directory."""
  import json
  _pretraining_tfrecords(tmp_path, data_dir, vocab_v3)
  hp = dict(TINY, vocab_file=vocab_v3, use_bf16=True)
  rc = run_pretraining.main(["--data-dir", str(tmp_path), "--model-name", "tiny",
                             "--hparams", json.dumps(hp), "--check-xla"])
  out = capsys.readouterr().out
  assert rc == 0 and "XLA check passed" in out, out
  assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("task,extra", [
    ("nsmc", {"classifier_head": "electra"}),
    ("korsts", {"classifier_head": "hf", "use_bf16": True}),
    ("naver-ner", {"classifier_head": "electra"}),
    ("korquad", {"classifier_head": "electra", "joint_prediction": True, "beam_size": 4,
                 "max_seq_length": 64, "doc_stride": 32, "max_query_length": 16}),
])
def test_check_xla_flag_of_run_finetuning_per_head(tmp_path, capsys, task, extra):
  import json
  import run_finetuning
  from tests.test_run_finetuning import TINY as FT_TINY, _data
  data = _data(tmp_path, task, rows=16)
  hp = dict(FT_TINY, task_names=[task], **extra)
  rc = run_finetuning.main(["--data-dir", str(data), "--model-name", "tiny",
                            "--hparams", json.dumps(hp), "--check-xla"])
  out = capsys.readouterr().out
  assert rc == 0 and "XLA check passed" in out, out
  assert not (data / "models" / "tiny" / "finetuning_models").exists()
