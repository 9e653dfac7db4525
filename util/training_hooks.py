"""Progress logging and TensorBoard summaries for the Estimator runners.

`ProgressHook` prints, every N steps: step, the model's scalars (total / generator /
discriminator loss, learning rate), steps/s, examples/s and ETA. On TPU the model's tensors
live inside the device loop and cannot be fetched by a hook, so there it prints step, speed
and ETA only and the scalars reach TensorBoard through `host_call` (see make_host_call),
as TPUEstimator requires. On CPU/GPU both work.
"""
import sys
import time

import tensorflow.compat.v1 as tf


def format_duration(seconds):
  seconds = max(0, int(round(seconds)))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  if h:
    return f"{h}h{m:02d}m{s:02d}s"
  if m:
    return f"{m}m{s:02d}s"
  return f"{s}s"


def _format_value(v):
  v = float(v)
  if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
    return f"{v:.3e}"
  return f"{v:.4f}"


class ProgressHook(tf.estimator.SessionRunHook):
  """Logs progress every `every_n_steps` global steps (training) or batches (evaluation).

  tensors: {name: scalar tensor} fetched with each step (empty on TPU). Rates are measured
  between log lines, so start-up and checkpoint saves inside a window show up in it.
  """

  def __init__(self, tensors, total_steps, batch_size, every_n_steps=100, is_training=True,
               stream=None):
    self._tensors = dict(tensors or {})
    self._total = int(total_steps)
    self._batch_size = int(batch_size)
    self._every = max(1, int(every_n_steps))
    self._is_training = is_training
    self._stream = stream or sys.stdout
    self.history = []  # (step, {name: value}) of every logged line, for tests and reports

  def begin(self):
    self._global_step = tf.train.get_or_create_global_step()
    self._eval_step = 0

  def after_create_session(self, session, coord):
    start = session.run(self._global_step) if self._is_training else 0
    self._start_step = self._last_step = int(start)
    self._start_time = self._last_time = time.time()

  def before_run(self, run_context):
    return tf.train.SessionRunArgs(dict(self._tensors))

  def after_run(self, run_context, run_values):
    results = run_values.results
    total = self._total
    if self._is_training:
      # A step fetched beside train_op may be read before or after its increment; read it
      # again now (a cheap variable read) so the count is exact, also on TPU loops.
      step = int(run_context.session.run(self._global_step))
    else:
      self._eval_step += 1
      step = self._eval_step
    if step - self._last_step < self._every and step < total:
      return
    now = time.time()
    dt = max(now - self._last_time, 1e-9)
    steps_per_sec = (step - self._last_step) / dt
    values = {k: float(v) for k, v in results.items()}
    parts = [f"{'step' if self._is_training else 'eval batch'} {step}/{total} "
             f"({100.0 * step / max(total, 1):.1f}%)"]
    parts += [f"{k} {_format_value(v)}" for k, v in values.items()]
    parts.append(f"{steps_per_sec:.2f} steps/s {steps_per_sec * self._batch_size:.1f} ex/s")
    remaining = max(total - step, 0)
    if steps_per_sec > 0 and remaining:
      parts.append(f"ETA {format_duration(remaining / steps_per_sec)}")
    parts.append(f"elapsed {format_duration(now - self._start_time)}")
    print(" | ".join(parts), file=self._stream, flush=True)
    self.history.append((step, dict(values, steps_per_sec=steps_per_sec,
                                    examples_per_sec=steps_per_sec * self._batch_size)))
    self._last_step, self._last_time = step, now


def make_host_call(model_dir, scalars, every_n_steps=100, prefix="", write=True):
  """A TPUEstimatorSpec `host_call` writing `scalars` to TensorBoard every N steps.

  host_call tensors must have rank >= 1 (TPUEstimator concatenates them over cores), so each
  scalar travels as shape [1] and is averaged back on the host. Works with use_tpu off too:
  TPUEstimator then runs the host call on the CPU every step. `write` False: a host call
  of the same shape that writes nothing (the replicas after the first under a
  tf.distribute strategy, which must all return the same spec).
  """
  names = sorted(scalars)
  global_step = tf.train.get_or_create_global_step()
  tensors = [tf.reshape(tf.cast(global_step, tf.int64), [1])]
  tensors += [tf.reshape(tf.cast(scalars[n], tf.float32), [1]) for n in names]
  every = max(1, int(every_n_steps))

  def host_call_fn(gs, *values):
    if not write:
      return tf.no_op()
    step = gs[0]
    writer = tf.compat.v2.summary.create_file_writer(model_dir, max_queue=every)
    with writer.as_default():
      with tf.compat.v2.summary.record_if(tf.equal(step % every, 0)):
        for name, v in zip(names, values):
          tf.compat.v2.summary.scalar(prefix + name, tf.reduce_mean(v), step=step)
        return tf.summary.all_v2_summary_ops()

  return host_call_fn, tensors
