"""One finetuning step of the runner's model_fn under a `"distribution"`, on a deterministic
input (the cached training features in file order, no shuffle), for test_distributed.py's
gradient-equality test. Run as a process (a process splits its CPU, or joins a TF_CONFIG
cluster, once):

  python -m tests.distributed_step DATA_DIR MODEL_NAME HPARAMS_JSON STEP

Trains the trial (from its checkpoint if any) to global step STEP (of a 2-step schedule)
and writes its checkpoint under the config's model_dir, as the runner does.
"""
import json
import sys

from finetune import preprocessing
from finetune import runner
from finetune.config import FinetuningConfig
from util import distribute
from util import estimator as estimator_lib
from util import tfrecord_input


def main(data_dir, model_name, hparams, step):
  config = FinetuningConfig(model_name, data_dir, **json.loads(hparams))
  distribute.prepare_devices(config.distribution, config.num_cpu_devices)
  split = preprocessing.prepare_split(config, "train", preprocessing.tokenizer_for(config),
                                      config.train_batch_size)
  features = preprocessing.record_features(config)
  trial_dir = f"{config.model_dir}/trial_1"
  estimator = estimator_lib.from_config(
      config, runner.model_fn_builder(config, 2, None, trial_dir), model_dir=trial_dir,
      tf_random_seed=config.seed)
  input_fn = tfrecord_input.get_input_fn(split.path, features, is_training=True,
                                         shuffle=False)
  distribute.train(estimator, input_fn, int(step), config.distribution)


if __name__ == "__main__":
  main(*sys.argv[1:5])
