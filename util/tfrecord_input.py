"""The TFRecord `input_fn` helpers: pretraining and every finetuning task read through them.

`get_input_fn`, the stream below, serves pretraining, every evaluation and the `electra`
finetuning preset; `epochs_input_fn` serves finetuning's training under the `koelectra`
preset (whole-file passes, each in a new order, the last batch of an epoch partial).

File patterns (local or gs://, comma separated) -> sorted shard list -> shards shuffled and
read in parallel (interleave) -> records shuffled -> repeated -> parsed into fixed-length
features -> int64 cast to int32 (TPUs have no int64 ops) -> batched with drop_remainder so
every batch has a static shape (XLA on TPU needs static shapes) -> prefetched.

`input_fn(params, input_context)` takes the batch size from `params["batch_size"]`, as
TPUEstimator passes it (per host on TPU, the global batch on CPU/GPU). Under a
tf.distribute strategy (`"distribution"`, util/distribute.py) the Estimator also passes an
InputContext: each replica then gets its share of the global batch, and each worker its
own disjoint part of the files or records.
"""
import tensorflow.compat.v1 as tf

from util import distribute
from util import errors
from util import fileio


class InputError(errors.UserError):
  """Bad input data: the message names the pattern or file."""


def expand_patterns(patterns):
  """Comma-separated patterns (or a list of them) -> sorted, de-duplicated file list.

  Raises InputError naming the patterns when nothing matches: TF would otherwise fail
  much later, inside the input pipeline, with an opaque message.
  """
  if isinstance(patterns, str):
    patterns = [p for p in patterns.split(",") if p.strip()]
  files = []
  for pattern in patterns:
    pattern = pattern.strip()
    # Temporary names (util/fileio.tmp_name) of shards still being written are skipped.
    files.extend(f for f in fileio.glob(pattern)
                 if not _basename(f).startswith(".tmp-"))
  files = sorted(set(files))
  if not files:
    raise InputError(f"no TFRecord files match {', '.join(patterns) or '(empty pattern)'}")
  return files


def _basename(path):
  return str(path).rstrip("/").rsplit("/", 1)[-1]


def int_features(names, seq_length):
  """`FixedLenFeature`s of `seq_length` int64s for each name (pretraining's layout)."""
  return {name: tf.io.FixedLenFeature([seq_length], tf.int64) for name in names}


def pretraining_features(max_seq_length):
  return int_features(("input_ids", "input_mask", "segment_ids"), max_seq_length)


def decode_record(record, name_to_features):
  """Parse one serialized tf.train.Example; int64 -> int32 because TPUs lack int64."""
  example = tf.io.parse_single_example(record, name_to_features)
  for name in list(example):
    if example[name].dtype == tf.int64:
      example[name] = tf.cast(example[name], tf.int32)
  return example


def read_first_example(path):
  """The first record of a TFRecord file as {feature name: list of values} (eager, cheap)."""
  import tensorflow as tf2  # eager API: this runs before any graph is built
  for raw in tf2.data.TFRecordDataset([path]).take(1):
    example = tf2.train.Example.FromString(raw.numpy())
    out = {}
    for name, feature in example.features.feature.items():
      kind = feature.WhichOneof("kind")
      out[name] = list(getattr(feature, kind).value) if kind else []
    return out
  raise InputError(f"TFRecord file is empty: {path}")


def check_feature_lengths(files, name_to_features):
  """Raise InputError if the first record of the first non-empty file does not fit the spec.

  One record is enough: the builder writes every record with the same lengths. Empty
  shards (a small corpus split into many) are skipped; all empty is an error.
  """
  files = [files] if isinstance(files, str) else list(files)
  example = None
  for path in files:
    try:
      example = read_first_example(path)
      break
    except InputError:
      continue  # empty shard
    except Exception as e:  # corrupt or not a TFRecord file at all
      raise InputError(f"cannot read a tf.train.Example from {path}: {e}") from e
  if example is None:
    raise InputError(f"all {len(files)} TFRecord file(s) are empty, e.g. {files[0]}")
  for name, spec in name_to_features.items():
    if not isinstance(spec, tf.io.FixedLenFeature):
      continue
    if name not in example:
      raise InputError(f"{path}: feature '{name}' is missing (has: {', '.join(sorted(example))})")
    want = int(spec.shape[0]) if spec.shape else 1
    got = len(example[name])
    if got != want:
      raise InputError(
          f"{path}: feature '{name}' has length {got} but max_seq_length is {want}; "
          f"rebuild the TFRecords with --max-seq-length {want} or set max_seq_length to {got}")


def make_dataset(files, name_to_features, batch_size, is_training, shuffle=None,
                 repeat=None, num_cpu_threads=4, shuffle_buffer=100, seed=None,
                 record_shard=None):
  """The tf.data pipeline behind input_fn (exposed for tests and benchmarks).

  record_shard: (n, i) keeps every n-th record from the i-th (util/distribute.shard); the
  files are then read in one fixed order, the same on every worker, so the parts are
  disjoint.
  """
  shuffle = is_training if shuffle is None else shuffle
  repeat = is_training if repeat is None else repeat
  d = tf.data.Dataset.from_tensor_slices(tf.constant(list(files)))
  if repeat:
    d = d.repeat()
  if shuffle and record_shard is None:
    d = d.shuffle(buffer_size=len(files), seed=seed)
  # Parallel reads across shards; order may vary while training (faster), never in eval.
  cycle_length = max(1, min(num_cpu_threads, len(files)))
  if len(files) > 1:
    d = d.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length,
                     num_parallel_calls=cycle_length,
                     deterministic=not is_training or record_shard is not None)
  else:
    d = d.interleave(tf.data.TFRecordDataset, cycle_length=cycle_length)
  if record_shard is not None:
    d = d.shard(*record_shard)
  if shuffle:
    d = d.shuffle(buffer_size=shuffle_buffer, seed=seed)
  d = d.map(lambda r: decode_record(r, name_to_features),
            num_parallel_calls=tf.data.experimental.AUTOTUNE)
  d = d.batch(batch_size, drop_remainder=True)
  return d.prefetch(tf.data.experimental.AUTOTUNE)


def epochs_input_fn(path, name_to_features, num_records, seed=None, drop_remainder=False,
                    log=print):
  """A training input_fn that passes over one TFRecord file epoch after epoch, each
  epoch in a new order (as torch's RandomSampler under a DataLoader).

  Every epoch reads the file again and shuffles all of it (the buffer holds the whole
  file, `num_records` serialized records, so every order is possible); the order
  differs from epoch to epoch and the sequence of orders depends only on `seed` (or,
  when None, on the graph's seed). An epoch gives ceil(N / B) batches, the last one
  holding the N mod B records left over, unless `drop_remainder` (TPUs need static
  shapes), which leaves those records out of that epoch. Endless: the Estimator stops at
  max_steps. Resuming a run starts again from the first epoch's order.

  Args:
    path: the TFRecord file (local or gs://).
    name_to_features: {name: tf.io.FixedLenFeature}; int64 features arrive as int32.
    num_records: how many records the file holds (the shuffle buffer).
    seed: the shuffle's seed.
    drop_remainder: full batches only (static batch dimension).
    log: under a strategy, where the line saying which part this worker reads goes.

  Returns:
    input_fn(params, input_context=None) -> tf.data.Dataset of {name: [B, ...]} batches; B is
    params["batch_size"], smaller in an epoch's last batch unless drop_remainder.

  Raises:
    InputError: `path` matches no file.
  """
  files = expand_patterns(path)

  def input_fn(params, input_context=None):
    # Under a strategy each worker keeps its own part (util/distribute.shard) before the
    # shuffle, and each replica batches its share of the global batch.
    mine, record_shard = distribute.shard(files, input_context, log=log)
    d = tf.data.TFRecordDataset(mine)
    if record_shard is not None:
      d = d.shard(*record_shard)
    d = d.shuffle(buffer_size=max(1, int(num_records)), seed=seed,
                  reshuffle_each_iteration=True)
    d = d.map(lambda r: decode_record(r, name_to_features),
              num_parallel_calls=tf.data.experimental.AUTOTUNE)
    d = d.batch(distribute.per_replica_batch(params["batch_size"], input_context),
                drop_remainder=drop_remainder)
    return d.repeat().prefetch(tf.data.experimental.AUTOTUNE)

  input_fn.files = files
  return input_fn


def get_input_fn(file_patterns, name_to_features, is_training, shuffle=None, repeat=None,
                 num_cpu_threads=4, shuffle_buffer=100, seed=None, log=print):
  """An Estimator/TPUEstimator input_fn over the TFRecords matching `file_patterns`.

  shuffle/repeat default to `is_training`. Pretraining evaluation passes both True: as in
  the original, it draws `num_eval_steps` batches from the (endless) training stream.
  Files are resolved now, so a pattern matching nothing fails before any graph is built.
  Under a strategy, `log` gets the line saying which part of the files this worker reads.
  """
  files = expand_patterns(file_patterns)

  def input_fn(params, input_context=None):
    mine, record_shard = distribute.shard(files, input_context, log=log)
    return make_dataset(mine, name_to_features,
                        distribute.per_replica_batch(params["batch_size"], input_context),
                        is_training, shuffle=shuffle, repeat=repeat,
                        num_cpu_threads=num_cpu_threads, shuffle_buffer=shuffle_buffer,
                        seed=seed, record_shard=record_shard)

  input_fn.files = files
  return input_fn
