"""Laying out small copies of the shared task files as DIR/finetuning_data/<task>/."""
import itertools
import pathlib

from tests.conftest import shared_data_dir

# task -> [(shared file, name the reader expects, header line count)]
SHARED_FILES = {
    "nsmc": [("nsmc/derived/nsmc_pool_train.tsv", "ratings_train.txt", 1),
             ("nsmc/derived/nsmc_pool_dev.tsv", "ratings_test.txt", 1)],
    "paws": [("paws/dev_2k.tsv", "translated_train.tsv", 1),
             ("paws/dev_2k.tsv", "dev_2k.tsv", 1)],
    "kornli": [("kornli/xnli.dev.ko.tsv", "multinli.train.ko.tsv", 1),
               ("kornli/xnli.dev.ko.tsv", "xnli.dev.ko.tsv", 1)],
    "korsts": [("korsts/sts-train.tsv", "sts-train.tsv", 1),
               ("korsts/sts-dev.tsv", "sts-dev.tsv", 1)],
    "question-pair": [("question-pair/train.tsv", "train.tsv", 1),
                      ("question-pair/dev.tsv", "dev.tsv", 1)],
    "hate-speech": [("hate-speech/koelectra/train.tsv", "train.tsv", 1)],
    "naver-ner": [("naver-ner/derived/train_pool.tsv", "train.tsv", 0)],
}
KORQUAD_SHARED = "korquad/derived/korquad_dev_handover.json"


def layout(tmp_path, task, rows=64):
  """Copies the first `rows` data rows (plus header) of each shared file of `task`
  (fewer when the file is shorter).

  Returns:
    (data_dir, {expected name: list of copied lines, header included}).
  """
  task_dir = pathlib.Path(tmp_path) / "finetuning_data" / task
  task_dir.mkdir(parents=True, exist_ok=True)
  copied = {}
  for shared, name, header in SHARED_FILES[task]:
    with open(shared_data_dir() / shared, encoding="utf-8") as f:
      lines = [line.rstrip("\n") for line in itertools.islice(f, rows + header)]
    (task_dir / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    copied[name] = lines
  return tmp_path, copied


def write_task_file(tmp_path, task, name, text, encoding="utf-8"):
  """Writes one task file (text or bytes) and returns DIR."""
  task_dir = pathlib.Path(tmp_path) / "finetuning_data" / task
  task_dir.mkdir(parents=True, exist_ok=True)
  data = text if isinstance(text, bytes) else text.encode(encoding)
  (task_dir / name).write_bytes(data)
  return tmp_path
