"""model/memory.py: parameter counts against the original's checkpoint variables, and the
per-device memory of KoELECTRA-Small-v3 and -Base-v3 at length 512 against a hand count."""
import pytest

import configure_pretraining as cp
from model import memory
from tests.conftest import ROOT

REFERENCE = ROOT.parent / "shared" / "reference"

# Which estimate part owns a checkpoint variable, by its scope.
PARTS = {"electra/": "discriminator", "generator/": "generator",
         "generator_predictions/": "heads", "discriminator_predictions/": "heads"}


def reference_parameters(name):
  """{part: parameter count} of the original's variables (ELECTRA's own checkpoint list)."""
  path = REFERENCE / name
  if not path.is_file():
    pytest.skip(f"{path} not found (../shared/reference)")
  counts = dict.fromkeys(PARTS.values(), 0)
  for line in path.read_text(encoding="utf-8").splitlines():
    fields = line.split()
    if len(fields) != 2:  # global_step: no shape
      continue
    size = 1
    for dim in fields[1].split("x"):
      size *= int(dim)
    part = next(p for prefix, p in PARTS.items() if fields[0].startswith(prefix))
    counts[part] += size
  counts["total"] = sum(counts.values())
  return counts


@pytest.mark.parametrize("preset,reference", [
    ("koelectra-small-v3", "electra_variables_koelectra_small.txt"),
    ("koelectra-base-v3", "electra_variables_base_gen_one_third.txt")])
def test_parameters_are_the_original_checkpoints(preset, reference):
  # The reference checkpoints have vocab_size 32200 (README of ../shared/reference).
  config = cp.PretrainingConfig("m", "/d", preset=preset, vocab_size=32200)
  assert memory.estimate(config).parameters == reference_parameters(reference)


def test_small_v3_at_512_by_hand():
  # KoELECTRA-Small-v3: hidden h 256, 4 heads, FFN i 1024, 12 layers, embedding E 128;
  # generator the same size (generator_hidden_size 1.0), tables shared; vocab V 35000;
  # L 512, P = int(0.155 * 512) = 79 masked positions; float32 (4 bytes).
  # One encoder layer: 10Lh + 2Li + 2aL^2 = 1,310,720 + 1,048,576 + 2,097,152
  #   = 4,456,448 elements x 4 = 17,825,792 B, + softmax 4 x 262,144 x 4 = 4,194,304 B
  #   = 22,020,096 B; x 12 = 264,241,152; + embeddings 4LE x 4 = 1,048,576
  #   = 265,289,728 B per encoder, x 2 (generator, discriminator) = 530,579,456.
  # MLM head: (P*256 + 3*P*128) x 4 = 202,240, + 2PV x 4 = 22,120,000 -> 22,322,240.
  # Discriminator head: 3Lh x 4 = 1,572,864.
  # Per example: 530,579,456 + 22,322,240 + 1,572,864 = 554,474,560 B.
  # Parameters: discriminator (35000 + 512 + 2) x 128 + 256 (LayerNorm) + 128 x 256 + 256
  #   (projection) + 12 x (4 x (256^2 + 256) + 2 x 256 x 1024 + 1024 + 256 + 4 x 256)
  #   = 4,545,792 + 256 + 33,024 + 12 x 789,760 = 14,056,192; generator 33,024 +
  #   9,477,120 = 9,510,144; heads 256 x 128 + 3 x 128 + 35000 + 256^2 + 2 x 256 + 1
  #   = 134,201; total 23,700,537 x 16 B = 379,208,592 B.
  # One v3 core of 8: 512 / 8 = 64 examples: 379,208,592 + 64 x 554,474,560
  #   = 35,865,580,432 B (33.4 GiB).
  config = cp.PretrainingConfig("m", "/d", preset="koelectra-small-v3", use_tpu=True,
                                num_tpu_cores=8)
  est = memory.estimate(config)
  assert est.activations_per_example == 554_474_560
  assert est.parameters["total"] == 23_700_537
  assert est.state_bytes == 379_208_592
  assert est.batch_per_device == 64
  assert est.total_bytes == 35_865_580_432
  assert memory.tpu_warning(est) is None  # a published setting: known to fit


def test_base_v3_at_512_by_hand():
  # KoELECTRA-Base-v3: h 768, 12 heads, i 3072, 12 layers, E 768; generator hidden
  # round(768 x 0.33333) = 256, 4 heads, i 1024, 12 layers, sharing the 768-wide tables.
  # Discriminator layer: 10Lh + 2Li + 2aL^2 = 3,932,160 + 3,145,728 + 6,291,456
  #   = 13,369,344 x 4 = 53,477,376 B, + softmax 12 x 262,144 x 4 = 12,582,912
  #   = 66,060,288 B; x 12 = 792,723,456; + embeddings 4LE x 4 = 6,291,456 -> 799,014,912.
  # Generator: 22,020,096 B per layer (as Small's) x 12 = 264,241,152, + embeddings at
  #   E 768: 6,291,456 -> 270,532,608.
  # MLM head: (79 x 256 + 3 x 79 x 768) x 4 = 808,960, + 2PV x 4 = 22,120,000 -> 22,928,960.
  # Discriminator head: 3 x 512 x 768 x 4 = 4,718,592.
  # Per example: 799,014,912 + 270,532,608 + 22,928,960 + 4,718,592 = 1,097,195,072 B.
  # Parameters: discriminator 35,514 x 768 + 1,536 + 12 x (4 x (768^2 + 768) +
  #   2 x 768 x 3072 + 3072 + 768 + 4 x 768) = 27,274,752 + 1,536 + 85,054,464
  #   = 112,330,752; generator 768 x 256 + 256 + 9,477,120 = 9,673,984; heads
  #   256 x 768 + 3 x 768 + 35000 + 768^2 + 2 x 768 + 1 = 825,273; total 122,830,009
  #   x 16 B = 1,965,280,144 B.
  # One v3 core of 8: 32 examples: 1,965,280,144 + 32 x 1,097,195,072 = 37,075,522,448 B.
  config = cp.PretrainingConfig("m", "/d", preset="koelectra-base-v3", use_tpu=True,
                                num_tpu_cores=8)
  est = memory.estimate(config)
  assert est.activations_per_example == 1_097_195_072
  assert est.parameters["total"] == 122_830_009
  assert est.total_bytes == 37_075_522_448
  assert memory.TPU_KNOWN_FIT == est.total_bytes  # the published run the warning is set by
  assert memory.tpu_warning(est) is None


def test_whole_batch_on_one_core_warns():
  # The mistake of issue 26: Base-v3's 256 x 512 on one core: 1,965,280,144 + 256 x
  # 1,097,195,072 B = 263.4 GiB.
  config = cp.PretrainingConfig("m", "/d", preset="koelectra-base-v3", use_tpu=True,
                                num_tpu_cores=1)
  lines = memory.tpu_lines(config)
  assert lines[0].startswith("memory per TPU core (1 cores): 263.4 GiB per device")
  assert lines[1].startswith("warning: ") and "num_tpu_cores" in lines[1]
  # Unset (a workstation's --check-xla): a v3-8 is assumed, and said.
  lines = memory.tpu_lines(cp.PretrainingConfig("m", "/d", preset="koelectra-base-v3"))
  assert lines == ["memory per TPU core (8 cores, assumed: num_tpu_cores unset): 34.5 GiB "
                   "per device by this count (122.8M parameters: 1.83 GiB with gradients "
                   "and Adam slots; 32 x 1.022 GiB activations)"]


def test_bf16_halves_the_transformer_layers_but_not_the_softmax():
  # Small-v3 per example with use_bf16: in each layer the 17,825,792 B of 2-byte-able
  # elements halve (8,912,896), the float32 softmax (4,194,304) stays; embeddings and heads
  # stay float32: 2 x 12 x (8,912,896 + 4,194,304) = 314,572,800, + embeddings
  # 2 x 1,048,576, + MLM head 22,322,240, + discriminator head 1,572,864 = 340,565,056 B.
  config = cp.PretrainingConfig("m", "/d", preset="koelectra-small-v3", use_bf16=True)
  assert memory.estimate(config).activations_per_example == 340_565_056
