"""FinetuningConfig: the two presets, per-task values, strict keys, derived paths."""
import pytest

import configure_finetuning as cf
from finetune import tasks as tasks_lib


@pytest.mark.parametrize("task,size,epochs,batch,lr,length", [
    ("nsmc", "base", 10, 32, 5e-5, 128), ("nsmc", "small", 10, 32, 5e-5, 128),
    ("paws", "base", 15, 32, 3e-5, 128), ("paws", "small", 15, 64, 3e-5, 128),
    ("kornli", "base", 15, 64, 5e-5, 128), ("kornli", "small", 15, 128, 5e-5, 128),
    ("korsts", "small", 10, 32, 5e-5, 128), ("question-pair", "base", 10, 32, 5e-5, 128),
    ("hate-speech", "small", 10, 32, 5e-5, 128),
])
def test_koelectra_preset_is_the_published_per_task_config(task, size, epochs, batch, lr,
                                                          length):
  c = cf.FinetuningConfig("m", "/d", task_names=[task], model_size=size)
  assert (c.num_train_epochs, c.train_batch_size, c.learning_rate, c.max_seq_length) == \
      (epochs, batch, lr, length)
  assert (c.weight_decay_rate, c.warmup_proportion, c.adam_epsilon) == (0.0, 0.0, 1e-8)
  assert c.adam_bias_correction and c.loss_reduction == "mean"
  assert c.layerwise_lr_decay == 0.0 and c.seed == 42 and c.classifier_head == "hf"
  assert not c.include_snli
  assert c.embedding_dim() == (128 if size == "small" else 768)
  assert c.reshuffle_each_epoch and c.keep_partial_batch and c.dev_slice_fraction == 0.0
  # Tasks without a dev file score the test file, as KoELECTRA's configs for them.
  no_dev = tasks_lib.get_task(task).dev_slice
  assert (c.do_eval, c.do_test) == ((False, True) if no_dev else (True, False))


def test_electra_preset_is_the_originals():
  c = cf.FinetuningConfig("m", "/d", preset="electra", task_names=["nsmc"])
  assert (c.learning_rate, c.layerwise_lr_decay, c.warmup_proportion,
          c.weight_decay_rate, c.adam_epsilon) == (1e-4, 0.8, 0.1, 0.01, 1e-6)
  assert not c.adam_bias_correction and c.loss_reduction == "sum"
  assert c.num_train_epochs == 3.0 and c.classifier_head == "electra"
  assert cf.FinetuningConfig("m", "/d", preset="electra",
                             task_names=["korsts"]).num_train_epochs == 10.0
  qa = cf.FinetuningConfig("m", "/d", preset="electra", task_names=["korquad"])
  assert (qa.max_seq_length, qa.num_train_epochs, qa.joint_prediction) == (512, 2.0, True)
  large = cf.FinetuningConfig("m", "/d", preset="electra", model_size="large",
                              task_names=["nsmc"])
  assert (large.learning_rate, large.layerwise_lr_decay) == (5e-5, 0.9)
  assert not c.reshuffle_each_epoch and not c.keep_partial_batch


def test_dev_slice_and_epoch_switches():
  sliced = cf.FinetuningConfig("m", "/d", task_names=["nsmc"], dev_slice_fraction=0.1)
  assert sliced.do_eval and not sliced.do_test
  assert cf.FinetuningConfig("m", "/d", task_names=["hate-speech"], do_eval=True).do_eval
  for bad in (1.0, -0.1, "0.1", True):
    with pytest.raises(cf.ConfigError, match=r"dev_slice_fraction (must be|expects) a number"):
      cf.FinetuningConfig("m", "/d", dev_slice_fraction=bad)
  with pytest.raises(cf.ConfigError, match=r"keep_partial_batch needs reshuffle_each_epoch"):
    cf.FinetuningConfig("m", "/d", reshuffle_each_epoch=False)
  with pytest.raises(cf.ConfigError, match=r"qa_final_text"):
    cf.FinetuningConfig("m", "/d", qa_final_text="hf")


def test_explicit_hparams_win_and_paths_derive():
  c = cf.FinetuningConfig.from_hparams(
      "m", "gs://b/d", '{"task_names": "kornli", "learning_rate": 1e-5, "num_trials": 3}')
  assert c.task_names == ["kornli"] and c.learning_rate == 1e-5 and c.num_trials == 3
  assert c.model_dir == "gs://b/d/models/m/finetuning_models/kornli_model"
  assert c.results_dir == "gs://b/d/models/m/results"
  assert c.vocab_file == "gs://b/d/vocab.txt"


def test_bad_settings_name_the_key():
  with pytest.raises(cf.ConfigError, match=r"did you mean learning_rate"):
    cf.FinetuningConfig("m", "/d", lerning_rate=1e-4)
  with pytest.raises(cf.ConfigError, match=r"unknown task 'korqad'.*korquad"):
    cf.FinetuningConfig("m", "/d", task_names=["korqad"])
  with pytest.raises(cf.ConfigError, match=r"exactly one task"):
    cf.FinetuningConfig("m", "/d", task_names=["nsmc", "paws"])
  with pytest.raises(cf.ConfigError, match=r"joint_prediction.*classifier_head"):
    cf.FinetuningConfig("m", "/d", task_names=["korquad"], joint_prediction=True)
  with pytest.raises(cf.ConfigError, match=r"loss_reduction"):
    cf.FinetuningConfig("m", "/d", loss_reduction="max")
  with pytest.raises(cf.ConfigError, match=r"disagree"):
    cf.FinetuningConfig.from_hparams("m", "/d", '{"preset": "electra"}', preset="koelectra")
  with pytest.raises(cf.ConfigError, match=r"unknown preset"):
    cf.FinetuningConfig("m", "/d", preset="bert")
  with pytest.raises(cf.ConfigError, match=r"hidden_dropout_prob must be a number in"):
    cf.FinetuningConfig("m", "/d", model_hparam_overrides={"hidden_dropout_prob": 1.0})


def test_every_task_has_a_config_and_published_numbers():
  for name in tasks_lib.TASK_NAMES:
    c = cf.FinetuningConfig("m", "/d", task_names=[name])
    assert c.task_name == name
    assert tasks_lib.get_task(name).published["base-v3"]
