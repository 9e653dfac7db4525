"""FinetuningConfig: every hyperparameter of finetuning, two presets, `--hparams` overrides.

Keys are those of the original google-research/electra `configure_finetuning.py`, plus
ours (marked). Two presets of defaults:
- `koelectra` (the default): KoELECTRA's published finetuning settings (its
  `finetune/config/<task>/koelectra-{base,small}-v3.json` and run scripts, which use
  Hugging Face `transformers`): per-task epochs / batch size / learning rate / length
  (the table is in finetune/tasks.py),
  no weight decay, no warm-up, Adam epsilon 1e-8 with bias correction (torch AdamW),
  the mean loss over the batch, gradient clipping at 1.0, no layer-wise decay, seed 42,
  the HF-style classification head (dense-gelu-dropout-dense), a new order of the whole
  training set every epoch and ceil(N / batch) steps per epoch (torch's RandomSampler
  and DataLoader);
- `electra`: the original ELECTRA's (lr 1e-4, layer-wise decay 0.8, warm-up 10%, weight
  decay 0.01, epsilon 1e-6 without bias correction, the loss summed over the batch as its
  run_finetuning.py does, the one-dense head, 3 epochs; 10 for STS; QA at length 512 for
  2 epochs with the joint end-given-start head; both orderings of unordered pairs; the
  training file shuffled once and streamed through a 100-record buffer, floor(N / batch)
  steps per epoch).
Resolution order: defaults -> preset (and its per-task, per-size values) -> debug ->
explicit hparams (always win) -> derived paths. See docs/finetuning.md.

This module does not import TensorFlow.
"""
from finetune import tasks as tasks_lib
from model import config as config_lib
from util import fileio

ConfigError = config_lib.ConfigError

PRESETS = {
    "koelectra": {
        "weight_decay_rate": 0.0, "warmup_proportion": 0.0, "adam_epsilon": 1e-8,
        "adam_bias_correction": True, "loss_reduction": "mean", "layerwise_lr_decay": 0.0,
        "classifier_head": "hf", "seed": 42, "double_unordered": False,
        "joint_prediction": False, "reshuffle_each_epoch": True, "keep_partial_batch": True,
    },
    "electra": {
        "learning_rate": 1e-4, "weight_decay_rate": 0.01, "warmup_proportion": 0.1,
        "adam_epsilon": 1e-6, "adam_bias_correction": False, "loss_reduction": "sum",
        "layerwise_lr_decay": 0.8, "classifier_head": "electra", "double_unordered": True,
        "joint_prediction": True, "num_train_epochs": 3.0,
        "reshuffle_each_epoch": False, "keep_partial_batch": False,
    },
}

# The original's debug mode (FinetuningConfig + FinetuningModel): a small model, 3 epochs.
DEBUG_SETTINGS = {"num_trials": 1, "iterations_per_loop": 1, "train_batch_size": 32,
                  "num_train_epochs": 3.0, "use_tfrecords_if_existing": False}


class FinetuningConfig(config_lib.Config):
  """Finetuning hyperparameters (attribute access, as the original)."""

  PRESETS = PRESETS
  DEBUG_SETTINGS = DEBUG_SETTINGS
  DERIVED = ("vocab_file", "raw_data_dir", "pretrained_model_dir", "model_dir", "results_dir",
             "preprocessed_data_dir")

  def __init__(self, model_name, data_dir, **kwargs):
    # general
    self.model_name = model_name
    self.data_dir = data_dir
    self.preset = "koelectra"  # ours: "koelectra" or "electra" (module docstring)
    self.debug = False  # a 3-layer 144-wide model, 1 trial, 3 epochs (the original's)
    self.num_trials = 1  # train+eval runs; results report each trial and the median
    self.do_train = True
    # score the dev split; tasks without a dev file (dev_slice_fraction unset) default
    # to do_eval off and do_test on
    self.do_eval = True
    self.do_test = False  # ours: score the test split (KorQuAD: its dev file)
    self.keep_all_models = True  # False: only the last trial's checkpoints are kept
    # ours: a trial trained with other hparams is moved aside and trained again (else an
    # error names the changed keys; finetune/runner.check_trial_hparams)
    self.retrain = False
    self.seed = None  # ours: graph-level random seed of trial 1 (trial t uses seed + t - 1)

    # model
    self.model_size = "small"  # "small", "base" or "large"
    self.task_names = ["nsmc"]  # one task per run (see TASK_NAMES), or a custom task
    # ours: the user's own tasks, {name: {"kind", "train_file", "dev_file", "test_file",
    # "text_a", "text_b", "label", "labels"}} (finetune/tasks.custom_task)
    self.custom_tasks = {}
    self.model_hparam_overrides = {}  # BertConfig overrides (model/sizes.py)
    self.embedding_size = None  # hidden size by default; 128 for "small"
    self.vocab_size = 35000  # the v3 vocab; checked against vocab_file
    self.do_lower_case = False  # KoELECTRA vocabularies are cased
    self.classifier_head = "hf"  # ours: "electra" (one dense) or "hf" (dense-gelu-dense)
    self.use_bf16 = False  # ours: bfloat16 matmuls in the encoder (TPU, or CPU with AMX)
    self.fused_kernels = True  # ours: XLA-fused element-wise kernels off TPU
    # ours: off TPU, each batch runs at its longest real length (same math; not for the
    # hf-style span head) and evaluation batches are formed by length (finetune/model.py)
    self.trim_padding = True

    # starting point
    self.init_checkpoint = None  # default: newest checkpoint in DIR/models/NAME
    self.allow_random_init = False  # ours: no checkpoint -> random encoder (smoke tests)

    # training
    self.learning_rate = 5e-5
    self.weight_decay_rate = 0.0
    self.layerwise_lr_decay = 0.0  # > 0: lr * decay^(depth from the top) per layer
    self.legacy_layerwise_lr = False  # ours: the original's off-by-one (optimization.md)
    self.num_train_epochs = 10.0
    self.warmup_proportion = 0.0
    self.adam_epsilon = 1e-8  # ours (the original hard-codes 1e-6)
    self.adam_bias_correction = True  # ours: torch's AdamW corrects, the original not
    self.loss_reduction = "mean"  # ours: "mean" (HF) or "sum" (the original) over a batch
    self.save_checkpoints_steps = 1000
    self.keep_checkpoint_max = 1  # 0 keeps all
    self.iterations_per_loop = 1000
    self.log_every_steps = 100  # ours: progress line interval
    self.use_tfrecords_if_existing = True  # reuse cached features
    # ours: tasks without a dev file (NSMC, Hate Speech, Naver NER, KorQuAD) train on the
    # whole file, as KoELECTRA; > 0 holds this fraction of it out as dev (fixed seed)
    self.dev_slice_fraction = 0.0
    # ours: a new seeded order of the whole training set every epoch (KoELECTRA's
    # RandomSampler); False: the original's once-shuffled file through a 100-record buffer
    self.reshuffle_each_epoch = True
    # ours: ceil(N / batch) steps per epoch, the last batch partial (KoELECTRA's
    # DataLoader); False: floor(N / batch), as the original. TPUs always take full
    # batches (static shapes): each epoch leaves N mod batch examples out
    self.keep_partial_batch = True

    # sizing
    self.max_seq_length = 128
    self.train_batch_size = 32
    self.eval_batch_size = 128
    self.predict_batch_size = 128
    self.double_unordered = False  # train on both orders of unordered pairs (KorSTS, PAWS)
    self.include_snli = False  # ours: KorNLI trains on MNLI only unless this is on
    # QA
    self.max_query_length = 64
    self.doc_stride = 128
    self.n_best_size = 20
    self.max_answer_length = 30
    self.joint_prediction = False  # the original's end-given-start QA head
    self.beam_size = 20  # start candidates kept by the joint head
    self.skip_bad_answers = False  # ours: count and skip answers not found in context
    # ours: how a KorQuAD span becomes text: "offsets" (the context characters of its
    # sub-tokens) or "bert" (BERT's get_final_text, which loses answers holding [UNK]:
    # 0.8 EM of the gold-span ceiling on the shared questions; docs/finetuning.md) or
    # "koelectra" (its scripts' Hugging Face decoding: a span starting mid-word keeps its
    # "##", so get_final_text returns the whole words; finetune/span_postprocess.py)
    self.qa_final_text = "offsets"

    self._set_tpu_defaults()
    self._resolve(kwargs)

  def _preset_defaults(self, kwargs):
    """The preset's per-task (and per-size) values; "a,b" task_names become a list."""
    tasks = kwargs.get("task_names", self.task_names)
    if isinstance(tasks, str):
      tasks = [t for t in tasks.split(",") if t]
      kwargs["task_names"] = tasks
    custom = kwargs.get("custom_tasks", self.custom_tasks)
    if not isinstance(custom, dict):
      raise ConfigError(f"custom_tasks must be an object {{name: task}}, got {custom!r}")
    self._check_tasks(tasks, custom)
    out = self._task_defaults(self.preset, tasks[0], kwargs.get("model_size", self.model_size),
                              custom)
    task = tasks_lib.get_task(tasks[0], custom)
    no_dev = task.dev_slice if task.columns is None else not task.files.get("dev")
    if no_dev and not kwargs.get("dev_slice_fraction"):
      # Distributed without a dev file: score the test file, as KoELECTRA's configs for
      # these tasks do ("dev_file": ""); do_eval then needs a slice or a dev file. A custom
      # task scores its test file when it names one.
      out.update(do_eval=False,
                 do_test=True if task.columns is None else bool(task.files["test"]))
    return out

  @staticmethod
  def _check_tasks(tasks, custom_tasks):
    if not isinstance(tasks, (list, tuple)) or len(tasks) != 1:
      raise ConfigError(f"task_names must name exactly one task (multi-task finetuning is "
                        f"not supported), got {tasks!r}")
    for name in custom_tasks:
      tasks_lib.custom_task(name, custom_tasks[name])  # a bad entry raises, naming its key
    for t in tasks:
      tasks_lib.get_task(t, custom_tasks)  # an unknown name raises, listing the valid ones

  @staticmethod
  def _task_defaults(preset, task, model_size, custom_tasks=None):
    """The preset's per-task (and per-size) values."""
    if preset == "koelectra":
      k = tasks_lib.get_task(task, custom_tasks).koelectra  # finetune/tasks.py: the table
      return {"num_train_epochs": float(k.num_train_epochs),
              "learning_rate": k.learning_rate, "max_seq_length": k.max_seq_length,
              "train_batch_size": (k.train_batch_size_small if model_size == "small"
                                   else k.train_batch_size_base)}
    out = {}
    # The original: 10 epochs for STS (and RTE), QA at 512 for 2 epochs, tagging at 256,
    # large models at lr 5e-5 with decay 0.9.
    if task == "korsts":
      out["num_train_epochs"] = 10.0
    elif task == "korquad":
      out.update(max_seq_length=512, num_train_epochs=2.0)
    elif task == "naver-ner":
      out["max_seq_length"] = 256
    if model_size == "large":
      out.update(learning_rate=5e-5, layerwise_lr_decay=0.9)
    return out

  def _derive(self):
    join = fileio.join
    self.pretrained_model_dir = pretrained = join(self.data_dir, "models", self.model_name)
    self._set_unless_given(
        raw_data_dir=join(self.data_dir, "finetuning_data"),
        vocab_file=join(self.data_dir, "vocab.txt"),
        model_dir=join(pretrained, "finetuning_models", self.task_names[0] + "_model"),
        results_dir=join(pretrained, "results"),
        preprocessed_data_dir=join(pretrained, "finetuning_tfrecords"))

  @property
  def task_name(self):
    return self.task_names[0]

  @property
  def task(self):
    """The TaskSpec of this run (a built-in task, or one of custom_tasks)."""
    return tasks_lib.get_task(self.task_name, self.custom_tasks)

  def validate(self):
    """Bad settings fail here, naming the key."""
    super().validate(
        positive_ints=("num_trials", "predict_batch_size", "max_query_length", "doc_stride",
                       "n_best_size", "max_answer_length", "beam_size"),
        bools=("do_train", "do_eval", "do_test", "keep_all_models", "do_lower_case",
               "trim_padding", "allow_random_init", "legacy_layerwise_lr",
               "adam_bias_correction", "use_tfrecords_if_existing", "double_unordered",
               "include_snli", "joint_prediction", "skip_bad_answers",
               "reshuffle_each_epoch", "keep_partial_batch",
               "retrain"))
    need = self._need
    need(self.do_train or self.do_eval or self.do_test,
         "nothing to do: set do_train, do_eval and/or do_test")
    need(float(self.num_train_epochs) > 0,
         f"num_train_epochs must be > 0, got {self.num_train_epochs}")
    need(0.0 <= float(self.warmup_proportion) < 1.0,
         f"warmup_proportion must be in [0, 1), got {self.warmup_proportion}")
    need(float(self.weight_decay_rate) >= 0,
         f"weight_decay_rate must be >= 0, got {self.weight_decay_rate}")
    need(float(self.adam_epsilon) > 0, f"adam_epsilon must be > 0, got {self.adam_epsilon}")
    need(0.0 <= float(self.layerwise_lr_decay) <= 1.0,
         f"layerwise_lr_decay must be in [0, 1] (0 = off), got {self.layerwise_lr_decay}")
    need(self.loss_reduction in ("mean", "sum"),
         f"loss_reduction must be \"mean\" or \"sum\", got {self.loss_reduction!r}")
    need(self.qa_final_text in ("offsets", "bert", "koelectra"),
         f"qa_final_text must be \"offsets\", \"bert\" or \"koelectra\", got "
         f"{self.qa_final_text!r}")
    need(isinstance(self.dev_slice_fraction, (int, float))
         and not isinstance(self.dev_slice_fraction, bool)
         and 0.0 <= self.dev_slice_fraction < 1.0,
         f"dev_slice_fraction must be a number in [0, 1) (0: no dev slice), got "
         f"{self.dev_slice_fraction!r}")
    need(not self.keep_partial_batch or self.reshuffle_each_epoch,
         "keep_partial_batch needs reshuffle_each_epoch: the original's stream (off) has "
         "no epoch ends to keep a partial batch at")
    need(self.classifier_head in ("electra", "hf"),
         f"classifier_head must be \"electra\" or \"hf\", got {self.classifier_head!r}")
    need(self.seed is None or (isinstance(self.seed, int) and not isinstance(self.seed, bool)),
         f"seed must be an integer or null, got {self.seed!r}")
    need(not self.joint_prediction or self.classifier_head == "electra",
         "joint_prediction is the original ELECTRA's QA head: it needs "
         "\"classifier_head\": \"electra\"")
    task = self.task
    if task.columns is not None:  # a custom task: the files this run reads are given
      for key, split, on in (("do_train", "train", self.do_train),
                             ("do_test", "test", self.do_test)):
        need(not on or task.files[split],
             f"{key} needs custom_tasks.{task.name}.{split}_file")
      need(not self.do_eval or task.files["dev"] or
           (task.files["train"] and self.dev_slice_fraction),
           f"do_eval needs custom_tasks.{task.name}.dev_file (or dev_slice_fraction with a "
           "train_file to hold a slice of)")
    if self.task_name == "korquad":
      need(self.max_query_length + 3 < self.max_seq_length,
           f"max_query_length {self.max_query_length} leaves no room for the context in "
           f"max_seq_length {self.max_seq_length}")
