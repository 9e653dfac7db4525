"""Masking and sampling on real tokenized Korean text (pretrain/masking.py, sampling.py)."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from model import tokenization
from pretrain import masking
from pretrain import sampling
from util import shared_data
from util.shared_data import COMMENTS, head_lines

SEQ_LEN = 128


def korean_sequences(data_dir, vocab_file, num_seqs, seq_len, num_lines=6000):
  """Real comments packed into rows (util.shared_data.packed_rows): ids, mask, segments."""
  return shared_data.packed_rows(tokenization.FastTokenizer(vocab_file),
                                 head_lines(data_dir / COMMENTS, num_lines), num_seqs, seq_len)


@pytest.fixture(scope="module")
def sequences(data_dir, vocab_v3):
  return korean_sequences(data_dir, vocab_v3, 1000, SEQ_LEN)


@pytest.fixture(scope="module")
def masked(sequences, vocab_v3):
  ids, mask, seg = sequences
  specials = masking.special_token_ids(vocab_v3)
  n = int((0.15 + 0.005) * SEQ_LEN)
  with tf.Graph().as_default():
    tf.set_random_seed(1234)
    inputs = masking.Inputs(tf.constant(ids), tf.constant(mask), tf.constant(seg),
                            None, None, None)
    out = masking.mask_inputs(inputs, 0.15, n, specials["[MASK]"], specials.values())
    assert out.input_ids.shape.as_list() == [1000, SEQ_LEN]  # static shapes (TPU)
    assert out.masked_lm_positions.shape.as_list() == [1000, n]
    with tf.Session() as sess:
      res = sess.run(out._asdict())
  return dict(res, n=n, specials=specials)


def _maskable(ids, mask, specials):
  return (mask == 1) & ~np.isin(ids, list(specials.values()))


def test_masked_share_and_counts(sequences, masked):
  ids, mask, _ = sequences
  maskable = _maskable(ids, mask, masked["specials"])
  n_maskable = maskable.sum(1)
  w = masked["masked_lm_weights"]
  chosen = w.sum(1).astype(int)
  assert chosen.max() <= masked["n"]
  # Per row: round(15% of maskable), at least 1, at most max_predictions_per_seq.
  expected = np.minimum(np.maximum(np.round(n_maskable * 0.15), 1), masked["n"])
  np.testing.assert_array_equal(chosen, np.minimum(expected, n_maskable))
  share = chosen.sum() / n_maskable.sum()
  assert abs(share - 0.15) <= 0.01, share
  # Weights are a prefix of ones; unused slots hold position 0 and id 0.
  assert np.all(np.diff(w, axis=1) <= 0)
  assert np.all(masked["masked_lm_positions"][w == 0] == 0)
  assert np.all(masked["masked_lm_ids"][w == 0] == 0)


def test_only_maskable_positions_unique_and_ids_match(sequences, masked):
  ids, mask, _ = sequences
  maskable = _maskable(ids, mask, masked["specials"])
  pos, w = masked["masked_lm_positions"], masked["masked_lm_weights"]
  rel = []
  for r in range(len(ids)):
    p = pos[r][w[r] > 0]
    assert len(set(p.tolist())) == len(p), f"row {r}: a position was chosen twice"
    assert maskable[r, p].all(), f"row {r}: special token or padding chosen"
    np.testing.assert_array_equal(masked["masked_lm_ids"][r][w[r] > 0], ids[r, p])
    cand = np.flatnonzero(maskable[r])
    rel.extend((np.searchsorted(cand, p) + 0.5) / len(cand))
  # Chosen uniformly among the maskable tokens: mean relative rank near 1/2.
  assert abs(np.mean(rel) - 0.5) < 0.02, np.mean(rel)


def test_mask_token_split_and_untouched_rest(sequences, masked):
  ids, mask, _ = sequences
  mask_id = masked["specials"]["[MASK]"]
  out = masked["input_ids"]
  pos, w = masked["masked_lm_positions"], masked["masked_lm_weights"]
  chosen = np.zeros_like(ids, bool)
  for r in range(len(ids)):
    chosen[r, pos[r][w[r] > 0]] = True
  # Not chosen: unchanged, so [CLS]/[SEP]/[PAD] and padding are never masked.
  np.testing.assert_array_equal(out[~chosen], ids[~chosen])
  became_mask = out[chosen] == mask_id
  kept = out[chosen] == ids[chosen]
  assert np.all(became_mask | kept), "a chosen token became something other than [MASK]"
  frac = became_mask.mean()
  assert abs(frac - 0.85) < 0.02, frac
  assert chosen.sum() > 10000


def test_gumbel_sampling_follows_softmax_at_temperature():
  logits = np.array([0.0, 1.0, 2.0, -1.0], np.float32)
  draws = 40000
  with tf.Graph().as_default(), tf.Session() as sess:
    tf.set_random_seed(7)
    x = tf.tile(tf.constant(logits)[None], [draws, 1])
    s1, s2 = sess.run([sampling.gumbel_max_sample(x, 1.0), sampling.gumbel_max_sample(x, 2.0)])
  for samples, t in ((s1, 1.0), (s2, 2.0)):
    p = np.exp(logits / t) / np.exp(logits / t).sum()
    freq = np.bincount(samples, minlength=4) / draws
    np.testing.assert_allclose(freq, p, atol=0.01)


def test_disallow_never_samples_the_original_and_labels():
  rng = np.random.RandomState(3)
  b, length, n, v = 16, 20, 5, 50
  ids = rng.randint(5, v, size=[b, length]).astype(np.int32)
  pos = np.stack([rng.choice(np.arange(1, length), n, replace=False) for _ in range(b)])
  pos = pos.astype(np.int32)
  w = (rng.rand(b, n) < 0.8).astype(np.float32)
  correct = np.take_along_axis(ids, pos, 1)
  # Logits that favour the original token strongly: without disallow it is always drawn.
  logits = np.zeros([b, n, v], np.float32)
  np.put_along_axis(logits, correct[..., None], 30.0, axis=-1)
  with tf.Graph().as_default(), tf.Session() as sess:
    onehot = tf.one_hot(correct, v, on_value=True, off_value=False, dtype=tf.bool)
    free = sampling.gumbel_max_sample(tf.constant(logits))
    banned = sampling.gumbel_max_sample(tf.constant(logits), disallow=onehot)
    fake, labels = sampling.replace_with_samples(tf.constant(ids), banned, tf.constant(pos),
                                                 tf.constant(w))
    fake_free, labels_free = sampling.replace_with_samples(
        tf.constant(ids), free, tf.constant(pos), tf.constant(w))
    free, banned, fake, labels, labels_free = sess.run(
        [free, banned, fake, labels, labels_free])
  assert np.all(free == correct)
  assert not np.any(banned == correct)
  # Labels: 1 exactly where the discriminator input differs from the original.
  np.testing.assert_array_equal(labels, (fake != ids).astype(np.int32))
  assert labels.sum() == int(w.sum())
  assert labels_free.sum() == 0  # correct samples count as real


def test_bad_vocab_file_is_a_user_error(tmp_path):
  from util import errors
  with pytest.raises(errors.UserError, match=r"missing\.txt"):
    masking.special_token_ids(str(tmp_path / "missing.txt"))
  bad = tmp_path / "dup.txt"
  bad.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n가\n가\n", encoding="utf-8")
  with pytest.raises(errors.UserError, match=r"dup\.txt:7"):
    masking.special_token_ids(str(bad))


def _mask_rates(ids, mask, vocab_file, legacy, seed=99):
  """(masked distinct share of maskable tokens, mean weighted slots, any duplicates)."""
  specials = masking.special_token_ids(vocab_file)
  length = ids.shape[1]
  n = int((0.15 + 0.005) * length)
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    inputs = masking.Inputs(tf.constant(ids), tf.constant(mask), tf.constant(np.zeros_like(ids)),
                            None, None, None)
    out = masking.mask_inputs(inputs, 0.15, n, specials["[MASK]"], specials.values(),
                              legacy=legacy)
    with tf.Session() as sess:
      res = sess.run(out._asdict())
  maskable = _maskable(ids, mask, specials)
  pos, w = res["masked_lm_positions"], res["masked_lm_weights"]
  distinct, dups = 0, False
  for r in range(len(ids)):
    p = pos[r][w[r] > 0]
    assert maskable[r, p].all(), "a special token or padding was chosen"
    distinct += len(set(p.tolist()))
    dups |= len(set(p.tolist())) < len(p)
    # Every weighted slot's id is the original token at its position, duplicates included.
    np.testing.assert_array_equal(res["masked_lm_ids"][r][w[r] > 0], ids[r, p])
  return distinct / maskable.sum(), w.sum(1).mean(), dups


@pytest.mark.parametrize("length,legacy_share,legacy_slots", [(512, 0.140, 77), (128, 0.141, 19)])
def test_legacy_masking_reproduces_the_originals_rate(data_dir, vocab_v3, length, legacy_share,
                                                     legacy_slots):
  """The original draws round(15% x all non-padding tokens) positions with replacement among
  the maskable ones: ~14.0% distinct at 512 (E = L'(1 - (1 - 1/L')^N) / L' with L' = 510
  maskable, N = 77), ~17.8 distinct of 19 slots at 128; ours masks 15.0% once each."""
  ids, mask, _ = korean_sequences(data_dir, vocab_v3, 48, length, num_lines=20000)
  full = mask.sum(1) == length   # full rows: the closed forms above hold exactly
  ids, mask = ids[full], mask[full]
  assert len(ids) >= 20
  share, slots, dups = _mask_rates(ids, mask, vocab_v3, legacy=True)
  maskable = length - 2
  expect = (1 - (1 - 1 / maskable) ** legacy_slots)
  assert abs(expect - legacy_share) < 0.001            # the documented figure
  assert abs(share - expect) < 0.006, (share, expect)
  assert slots == legacy_slots and dups
  share, slots, dups = _mask_rates(ids, mask, vocab_v3, legacy=False)
  assert abs(share - round(0.15 * maskable) / maskable) < 1e-9 and not dups
