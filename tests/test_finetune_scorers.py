"""Metrics against SciPy, scikit-learn and seqeval on fixed predictions; KorQuAD's
official rules on known Korean answers."""
import math

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
from seqeval import metrics as seqeval_metrics

from finetune import readers
from finetune import scorers


def _fixed_scores(seed, n, ties):
  rng = np.random.RandomState(seed)
  gold = rng.randint(0, 26, size=n) / 5.0 if ties else rng.uniform(0, 5, size=n)
  pred = gold + rng.normal(0, 1.2, size=n)
  if ties:
    pred = np.round(pred, 1)
  return pred.tolist(), gold.tolist()


@pytest.mark.parametrize("seed,n,ties", [(0, 50, False), (1, 300, True), (2, 7, True)])
def test_pearson_spearman_equal_scipy(seed, n, ties):
  pred, gold = _fixed_scores(seed, n, ties)
  assert scorers.pearson(pred, gold) == pytest.approx(
      100 * scipy.stats.pearsonr(pred, gold)[0], abs=1e-9)
  assert scorers.spearman(pred, gold) == pytest.approx(
      100 * scipy.stats.spearmanr(pred, gold)[0], abs=1e-9)
  np.testing.assert_allclose(scorers.average_ranks(pred), scipy.stats.rankdata(pred))


def test_constant_predictions_give_nan():
  assert math.isnan(scorers.pearson([1.0, 1.0, 1.0], [0.0, 1.0, 2.0]))


def test_accuracy_and_macro_f1_equal_sklearn():
  rng = np.random.RandomState(3)
  labels = np.array(["none", "offensive", "hate"])
  gold = labels[rng.randint(0, 3, size=200)].tolist()
  pred = [g if rng.rand() < 0.6 else labels[rng.randint(0, 3)] for g in gold]
  assert scorers.accuracy(pred, gold) == pytest.approx(
      100 * sklearn.metrics.accuracy_score(gold, pred))
  assert scorers.macro_f1(pred, gold) == pytest.approx(
      100 * sklearn.metrics.f1_score(gold, pred, average="macro"))


def test_macro_f1_counts_a_label_never_predicted():
  gold = ["none", "hate", "offensive", "none", "hate"]
  pred = ["none", "none", "none", "none", "none"]  # hate, offensive never predicted
  ours = scorers.macro_f1(pred, gold)
  assert ours == pytest.approx(100 * sklearn.metrics.f1_score(
      gold, pred, average="macro", zero_division=0))
  assert ours == pytest.approx(100 * (2 * 2 / (2 * 2 + 3)) / 3)


def test_score_dispatches_by_task_kind():
  ex = [readers.SentenceExample(i + 2, "f", "a", None, lab)
        for i, lab in enumerate(["none", "hate", "hate", "offensive"])]
  out = scorers.score("hate-speech", ex, ["none", "hate", "none", "offensive"])
  assert out["accuracy"] == 75.0 and out["num_examples"] == 4.0
  assert out["macro_f1"] == pytest.approx(100 * sklearn.metrics.f1_score(
      [e.label for e in ex], ["none", "hate", "none", "offensive"], average="macro"))
  sts = [readers.SentenceExample(i, "f", "a", "b", s) for i, s in enumerate([0.0, 2.5, 5.0])]
  out = scorers.score("korsts", sts, [1.0, 2.0, 4.0])
  assert out["spearman"] == pytest.approx(100.0) and "pearson" in out
  with pytest.raises(ValueError, match="2 predictions for 3 examples"):
    scorers.score("korsts", sts, [1.0, 2.0])


def test_ner_scores_equal_seqeval():
  gold = [["PER-B", "PER-I", "O", "LOC-B"], ["O", "ORG-B", "ORG-I", "O", "DAT-B"],
          ["TIM-B", "O"]]
  pred = [["PER-B", "PER-I", "O", "ORG-B"], ["O", "ORG-B", "O", "O", "DAT-B"],
          ["TIM-B", "TIM-I"]]
  out = scorers.ner_scores(gold, pred)
  assert out["f1"] == pytest.approx(100 * seqeval_metrics.f1_score(gold, pred, suffix=True))
  assert out["precision"] == pytest.approx(
      100 * seqeval_metrics.precision_score(gold, pred, suffix=True))
  assert out["recall"] == pytest.approx(
      100 * seqeval_metrics.recall_score(gold, pred, suffix=True))
  # PER and DAT found exactly; LOC missed; ORG cut short and a false ORG; TIM too long.
  assert out["f1_PER"] == 100.0 and out["f1_DAT"] == 100.0
  assert out["f1_LOC"] == out["f1_ORG"] == out["f1_TIM"] == 0.0
  # 2 of 5 gold entities found, 2 of 5 predicted right.
  assert out["recall"] == pytest.approx(40.0) and out["precision"] == pytest.approx(40.0)


# ---------------------------------------------------------------------------
# KorQuAD 1.0


@pytest.mark.parametrize("text,normalized", [
    ("《토지》", "토지"),
    ("'임수경'", "임수경"),
    ("〈님의 침묵〉(1926)", "님의 침묵 1926"),
    ("‘ABC’ Company.", "abc company"),
    ("1989년 2월 15일,", "1989년 2월 15일"),
    ("  서울   특별시 ", "서울 특별시"),
    ("The Beatles", "the beatles"),          # no article removal, unlike SQuAD
    ("3·1 운동", "3·1 운동"),                # · is not ASCII punctuation
    ("「춘향전」", "「춘향전」"),             # nor are these brackets in the list
])
def test_korquad_normalization(text, normalized):
  assert scorers.normalize_korquad_answer(text) == normalized


def test_korquad_em_and_character_f1():
  assert scorers.korquad_exact_match("《토지》", "토지")
  assert not scorers.korquad_exact_match("임수경이", "임수경")
  # A trailing particle: 3 common characters, precision 3/4, recall 1.
  assert scorers.korquad_f1("임수경이", "임수경") == pytest.approx(2 * 0.75 / 1.75)
  # Spaces do not count as characters.
  assert scorers.korquad_f1("1989년 2월", "1989년2월") == 1.0
  assert scorers.korquad_f1("", "임수경") == 0.0
  out = scorers.korquad_scores([["임수경"], ["1989년", "1989년 2월"], ["서울"]],
                               ["임수경이", "1989년 2월.", None])
  assert out["exact_match"] == pytest.approx(100 / 3)
  assert out["f1"] == pytest.approx(100 * (2 * 0.75 / 1.75 + 1.0 + 0.0) / 3)


def test_korquad_scores_by_id_takes_the_official_input():
  dataset = {"data": [{"paragraphs": [{"context": "x", "qas": [
      {"id": "a", "answers": [{"text": "《토지》", "answer_start": 0}]},
      {"id": "b", "answers": [{"text": "박경리", "answer_start": 0}]}]}]}]}
  out = scorers.korquad_scores_by_id(dataset, {"a": "토지"})  # b unanswered
  assert out == {"exact_match": 50.0, "f1": 50.0}
