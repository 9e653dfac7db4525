"""PretrainingConfig: defaults, presets, --hparams, errors and the FLOPs estimate."""
import json
import subprocess
import sys

import pytest

import configure_pretraining as cp
import run_pretraining
from model import flops
from tests.conftest import ROOT, shared_data_dir
from util import hparams as hparams_lib


def test_original_defaults_and_derived_paths():
  c = cp.PretrainingConfig("m", "/data")
  assert (c.gen_weight, c.disc_weight, c.mask_prob) == (1.0, 50.0, 0.15)
  assert (c.learning_rate, c.lr_decay_power, c.weight_decay_rate) == (5e-4, 1.0, 0.01)
  assert (c.num_warmup_steps, c.iterations_per_loop, c.save_checkpoints_steps) == \
      (10000, 200, 1000)
  assert (c.num_train_steps, c.num_eval_steps, c.max_seq_length) == (1000000, 100, 128)
  assert (c.generator_hidden_size, c.generator_layers, c.temperature) == (0.25, 1.0, 1.0)
  assert c.electra_objective and c.untied_generator and not c.disallow_correct
  assert c.embedding_size == 128  # "small" model size forces it, as the original
  assert c.max_predictions_per_seq == 19  # int((0.15 + 0.005) * 128)
  assert c.model_dir == "/data/models/m" and c.vocab_file == "/data/vocab.txt"
  assert c.pretrain_tfrecords == "/data/pretrain_tfrecords/pretrain_data.tfrecord*"
  g = cp.PretrainingConfig("m", "gs://bucket/x")
  assert g.model_dir == "gs://bucket/x/models/m"


@pytest.mark.parametrize("preset,vocab,batch,steps,lr,layers,emb,hid,heads,ghid,gheads", [
    ("koelectra-small-v1", 32200, 512, 300000, 5e-4, 12, 128, 256, 4, 256, 4),
    ("koelectra-small-v2", 32200, 512, 300000, 5e-4, 12, 128, 256, 4, 256, 4),
    ("koelectra-small-v3", 35000, 512, 800000, 5e-4, 12, 128, 256, 4, 256, 4),
    ("koelectra-base-v1", 32200, 256, 700000, 2e-4, 12, 768, 768, 12, 256, 4),
    ("koelectra-base-v2", 32200, 256, 700000, 2e-4, 12, 768, 768, 12, 256, 4),
    ("koelectra-base-v3", 35000, 256, 1500000, 2e-4, 12, 768, 768, 12, 256, 4),
])
def test_presets_match_published_tables(preset, vocab, batch, steps, lr, layers, emb, hid,
                                        heads, ghid, gheads):
  c = cp.PretrainingConfig("m", "/d", preset=preset)
  d, g = c.bert_hparams(), c.generator_hparams()
  assert (c.vocab_size, c.train_batch_size, c.num_train_steps, c.learning_rate) == \
      (vocab, batch, steps, lr)
  assert (d["num_hidden_layers"], c.embedding_dim(), d["hidden_size"],
          d["num_attention_heads"]) == (layers, emb, hid, heads)
  assert (g["num_hidden_layers"], g["hidden_size"], g["num_attention_heads"],
          g["intermediate_size"]) == (layers, ghid, gheads, 4 * ghid)
  assert c.max_seq_length == 512 and c.max_predictions_per_seq == 79
  assert c.do_lower_case is False  # KoELECTRA vocabularies are cased


def test_hparams_json_string_and_file_override_preset(tmp_path):
  c = cp.PretrainingConfig.from_hparams(
      "m", "/d", '{"preset": "koelectra-base-v3", "train_batch_size": 32, '
      '"max_seq_length": 256}')
  assert c.train_batch_size == 32 and c.num_train_steps == 1500000
  assert c.max_predictions_per_seq == int(0.155 * 256)
  f = tmp_path / "h.json"
  f.write_text(json.dumps({"preset": "koelectra-small-v1", "use_bf16": True,
                           "mask_prob": 0.25, "embedding_size": 64}))
  c = cp.PretrainingConfig.from_hparams("m", "/d", str(f))
  assert c.use_bf16 and c.mask_prob == 0.25 and c.embedding_size == 64
  assert c.max_predictions_per_seq == int(0.255 * 512)
  # An explicit max_predictions_per_seq wins over the derived value.
  c = cp.PretrainingConfig.from_hparams("m", "/d", '{"max_predictions_per_seq": 7}')
  assert c.max_predictions_per_seq == 7
  c.update({"max_seq_length": 64})
  assert c.max_predictions_per_seq == 7
  # --hparams several times: merged in order, a later key replacing an earlier one whole.
  args = run_pretraining.build_parser().parse_args([
      "--data-dir", "/d", "--model-name", "m", "--hparams", str(f),
      "--hparams", '{"mask_prob": 0.15, "model_hparam_overrides": {"num_hidden_layers": 2}}',
      "--hparams", '{"model_hparam_overrides": {"hidden_size": 128}}'])
  c = cp.PretrainingConfig.from_hparams(args.model_name, args.data_dir, args.hparams)
  assert c.preset == "koelectra-small-v1" and c.use_bf16 and c.mask_prob == 0.15
  assert c.model_hparam_overrides == {"hidden_size": 128}
  assert cp.PretrainingConfig.from_hparams("m", "/d", None).preset is None
  with pytest.raises(cp.ConfigError, match="missing.json"):
    cp.PretrainingConfig.from_hparams("m", "/d", ["{}", str(tmp_path / "missing.json")])


def test_unknown_key_names_closest_valid_keys(tmp_path):
  with pytest.raises(cp.ConfigError, match=r"'lerning_rate'.*did you mean learning_rate"):
    cp.PretrainingConfig.from_hparams("m", "/d", '{"lerning_rate": 1e-4}')
  with pytest.raises(cp.ConfigError, match=r"generator_hidden_size"):
    cp.PretrainingConfig("m", "/d", generator_hiden_size=0.5)
  with pytest.raises(cp.ConfigError, match=r"koelectra-base-v3"):
    cp.PretrainingConfig("m", "/d", preset="koelectra-base-v4")
  with pytest.raises(cp.ConfigError, match=r"num_attention_heads"):
    cp.PretrainingConfig("m", "/d", model_hparam_overrides={"num_attention_head": 3})
  bad = tmp_path / "bad.json"
  bad.write_text('{"learning_rate": 1e-4,}')
  with pytest.raises(cp.ConfigError, match=r"bad.json: invalid JSON at line 1"):
    hparams_lib.parse_hparams(str(bad))
  with pytest.raises(cp.ConfigError, match=r"'data_dir' is not an hparam; pass it as --data-dir"):
    hparams_lib.parse_hparams('{"data_dir": "/x"}')
  with pytest.raises(cp.ConfigError, match=r"neither a JSON object nor an existing file"):
    hparams_lib.parse_hparams(str(tmp_path / "missing.json"))


def test_bad_generator_size_is_a_config_error():
  # 0.33 x 768 = 253 -> 3 heads of 84.33: must fail here, not while building the graph.
  with pytest.raises(cp.ConfigError, match=r"253.*3 whole attention heads.*0\.33333"):
    cp.PretrainingConfig("m", "/d", preset="koelectra-base-v1", generator_hidden_size=0.33)
  with pytest.raises(cp.ConfigError, match=r"model_hparam_overrides"):
    cp.PretrainingConfig("m", "/d", model_hparam_overrides={"num_attention_heads": 5})
  with pytest.raises(cp.ConfigError, match=r"max_seq_length 1024"):
    cp.PretrainingConfig("m", "/d", max_seq_length=1024)
  # Values no graph can use are refused here too, naming the key (not a TF ValueError
  # from the dropout kernel halfway through building the graph).
  for key, value in [("hidden_dropout_prob", 1.0), ("attention_probs_dropout_prob", -0.1),
                     ("hidden_dropout_prob", "0.1"), ("num_hidden_layers", 0),
                     ("intermediate_size", 3.5), ("type_vocab_size", True),
                     ("initializer_range", 0)]:
    with pytest.raises(cp.ConfigError, match=rf"model_hparam_overrides: {key} .*{value!r}"):
      cp.PretrainingConfig("m", "/d", model_hparam_overrides={key: value})
  cp.PretrainingConfig("m", "/d", model_hparam_overrides={"hidden_dropout_prob": 0.0})
  # A uniform generator has no transformer, so its size is irrelevant.
  cp.PretrainingConfig("m", "/d", preset="koelectra-base-v1", generator_hidden_size=0.33,
                       uniform_generator=True)


def test_flops_estimate_matches_hand_count_for_tiny_config():
  c = cp.PretrainingConfig("m", "/d", model_size="small", embedding_size=8,
                           vocab_size=10, max_seq_length=4, max_predictions_per_seq=2,
                           train_batch_size=3, generator_hidden_size=0.5,
                           model_hparam_overrides={"hidden_size": 16, "num_hidden_layers": 1,
                                                   "num_attention_heads": 2,
                                                   "intermediate_size": 32})
  # Hand count, L=4 tokens, E=8, V=10, P=2. Matmul [m,k]x[k,n] = 2mkn, dense bias = m*n.
  # Embeddings (each encoder): 2*L*E adds + 7*L*E LayerNorm = 64 + 224 = 288.
  # Discriminator H=16, A=2, I=32:
  #   project 2*4*8*16 + 4*16 = 1088
  #   qkv 3*(2*4*16*16 + 64) = 6336; scores 2*4*4*16 = 512; scale 32; mask 32;
  #   softmax 5*32 = 160; probs.v 512; attn out 2048 + 64 = 2112; res+LN 64 + 448 = 512;
  #   intermediate 2*4*16*32 + 128 = 4224; gelu 8*128 = 1024; out 4096 + 64 = 4160;
  #   res+LN 512  -> layer = 20128
  #   head: dense 2*4*16*16 + 64 + gelu 8*64 = 2624; dense_1 2*4*16 + 4 = 132; xent 6*4=24
  disc = 288 + 1088 + 20128 + 2624 + 132 + 24
  # Generator H=8 (=E, no projection), A=1, I=32:
  #   qkv 3*(2*4*8*8 + 32) = 1632; scores 2*4*4*8 = 256; scale 16; mask 16; softmax 80;
  #   probs.v 256; attn out 512 + 32 = 544; res+LN 32 + 224 = 256;
  #   intermediate 2*4*8*32 + 128 = 2176; gelu 1024; out 2048 + 32 = 2080; res+LN 256
  #   -> layer = 8592
  #   predictions: dense 2*2*8*8 + 16 = 272, gelu 8*16 = 128, LN 7*16 = 112,
  #   output 2*2*8*10 + 20 = 340  -> 852
  gen = 288 + 8592 + 852
  mlm_softmax = 2 * 5 * 2 * 10 + 2 * 2 * 10   # log-softmax twice-ish + one-hot loss = 240
  sampling = 6 * 20 + 20                      # Gumbel noise + temperature = 140
  forward = disc + gen + mlm_softmax
  f = flops.estimate_train_flops(c)
  assert f["forward_per_seq"] == forward + sampling
  assert f["train_per_step"] == 3 * (3 * forward + sampling)
  assert c.train_flops_per_step() == f["train_per_step"]


def test_flops_of_presets_are_plausible():
  # ELECTRA paper: Base is ~6.4e19 FLOPs over 766K steps of batch 256 at length 512,
  # i.e. ~8.4e13 per step. Our estimate of the same shapes must be within 15%.
  c = cp.PretrainingConfig("m", "/d", preset="koelectra-base-v1", vocab_size=30522)
  assert abs(c.train_flops_per_step() / 8.4e13 - 1) < 0.15
  small = cp.PretrainingConfig("m", "/d", preset="koelectra-small-v3").train_flops_per_step()
  assert small < c.train_flops_per_step()
  mlm_only = cp.PretrainingConfig("m", "/d", preset="koelectra-base-v1",
                                  electra_objective=False)
  assert mlm_only.train_flops_per_step() < c.train_flops_per_step()


def test_cli_prints_config_and_fails_cleanly():
  run = lambda *a: subprocess.run([sys.executable, "configure_pretraining.py", *a],
                                  cwd=ROOT, capture_output=True, text=True, timeout=60)
  ok = run("--preset", "koelectra-small-v3")
  assert ok.returncode == 0 and "train FLOPs per step" in ok.stdout
  assert json.loads(ok.stdout.split("\ndiscriminator:")[0])["num_train_steps"] == 800000
  bad = run("--hparams", '{"disc_wieght": 1}')
  assert bad.returncode == 2 and "did you mean disc_weight" in bad.stderr
  assert "Traceback" not in bad.stderr


def _original_get_bert_config(model_size, vocab_size, overrides):
  """The original ELECTRA's util/training_utils.get_bert_config, restated as its formula:
  table -> vocab -> overrides -> heads = max(1, hidden // 64), FFN = 4 * hidden ->
  overrides again."""
  table = {"small": (256, 12), "base": (768, 12), "large": (1024, 24)}[model_size]
  args = {"hidden_size": table[0], "num_hidden_layers": table[1], "vocab_size": vocab_size}
  args.update(overrides)
  args["num_attention_heads"] = max(1, args["hidden_size"] // 64)
  args["intermediate_size"] = 4 * args["hidden_size"]
  args.update(overrides)
  return args


@pytest.mark.parametrize("model_size,overrides", [
    ("small", {}),
    ("small", {"hidden_size": 512}),                        # 8 heads / 2048, not 4 / 1024
    ("small", {"hidden_size": 128, "num_hidden_layers": 2}),  # the demo's shape
    ("base", {"hidden_size": 320, "num_attention_heads": 4}),  # explicit heads still win
    ("base", {"hidden_size": 40}),                           # max(1, ...) heads
    ("large", {"intermediate_size": 1000}),
    ("small", {"vocab_size": 1234, "hidden_size": 192}),      # vocab inside the overrides
])
def test_override_derivation_equals_original_formula(model_size, overrides):
  c = cp.PretrainingConfig("m", "/d", model_size=model_size, vocab_size=32200,
                           model_hparam_overrides=overrides)
  got = c.bert_hparams()
  want = _original_get_bert_config(model_size, 32200, overrides)
  for k, v in want.items():
    assert got[k] == v, (k, got[k], v)
  # The generator derives its heads and FFN from its own scaled hidden size.
  g = c.generator_hparams()
  assert g["hidden_size"] == int(round(want["hidden_size"] * c.generator_hidden_size))
  assert g["num_attention_heads"] == max(1, g["hidden_size"] // 64)
  assert g["intermediate_size"] == 4 * g["hidden_size"]


def test_hidden_512_override_gives_original_heads_and_ffn():
  c = cp.PretrainingConfig("m", "/d", model_hparam_overrides={"hidden_size": 512})
  d = c.bert_hparams()
  assert (d["num_attention_heads"], d["intermediate_size"]) == (8, 2048)


def test_keep_checkpoint_max_zero_keeps_all_and_negative_is_refused():
  assert cp.PretrainingConfig("m", "/d", keep_checkpoint_max=0).keep_checkpoint_max == 0
  with pytest.raises(cp.ConfigError, match="keep_checkpoint_max"):
    cp.PretrainingConfig("m", "/d", keep_checkpoint_max=-1)


def test_debug_mode_is_the_originals_small_quick_run():
  c = cp.PretrainingConfig("m", "/d", debug=True)
  assert (c.train_batch_size, c.num_train_steps, c.eval_batch_size,
          c.iterations_per_loop, c.num_eval_steps) == (8, 20, 4, 1, 2)
  d = c.bert_hparams()
  assert (d["num_hidden_layers"], d["hidden_size"], d["intermediate_size"],
          d["num_attention_heads"]) == (3, 144, 576, 4)
  # The generator scales the shrunk discriminator, as the original's get_generator_config.
  assert c.generator_hparams()["hidden_size"] == 36
  # Explicit hparams still win over debug defaults.
  assert cp.PretrainingConfig("m", "/d", debug=True, num_train_steps=5).num_train_steps == 5


def test_preset_flag_and_hparams_preset_agree_or_fail():
  a = cp.PretrainingConfig.from_hparams("m", "/d", '{"preset": "koelectra-base-v3"}')
  b = cp.PretrainingConfig.from_hparams("m", "/d", "{}", preset="koelectra-base-v3")
  c = cp.PretrainingConfig.from_hparams("m", "/d", '{"preset": "koelectra-base-v3"}',
                                        preset="koelectra-base-v3")
  assert a.to_dict() == b.to_dict() == c.to_dict()
  with pytest.raises(cp.ConfigError, match="disagree"):
    cp.PretrainingConfig.from_hparams("m", "/d", '{"preset": "koelectra-base-v3"}',
                                      preset="koelectra-small-v3")


@pytest.mark.parametrize("listing,want", [
    ("electra_variables_koelectra_small.txt", {"model_size": "small", "vocab_size": 32200}),
    ("electra_variables_base_gen_one_third.txt", {"model_size": "base", "vocab_size": 32200}),
])
def test_hparams_read_back_from_original_checkpoint_shapes(listing, want):
  """What run_finetuning suggests for a checkpoint of another shape: the size hparams that
  build its encoder, read off the original code's variable lists."""
  from model import checkpoint, sizes
  text = (shared_data_dir().parent / "reference" / listing).read_text(encoding="utf-8")
  assert sizes.hparams_from_shapes(checkpoint.parse_variable_list(text)) == want


@pytest.mark.parametrize("model_size,emb,overrides", [
    ("small", 32, {"hidden_size": 64, "num_hidden_layers": 2, "intermediate_size": 100}),
    ("base", None, {"num_hidden_layers": 6}),
    ("small", 144, {"hidden_size": 144, "num_hidden_layers": 3, "type_vocab_size": 1}),
    ("large", 128, {"max_position_embeddings": 1024}),
])
def test_hparams_from_shapes_rebuild_the_same_encoder(model_size, emb, overrides):
  from model import sizes
  hp = sizes.bert_hparams(model_size, 35000, overrides)
  e = sizes.default_embedding_size(model_size, emb) or hp["hidden_size"]
  h, i = hp["hidden_size"], hp["intermediate_size"]
  shapes = {"electra/embeddings/word_embeddings": (35000, e),
            "electra/embeddings/position_embeddings": (hp["max_position_embeddings"], e),
            "electra/embeddings/token_type_embeddings": (hp["type_vocab_size"], e)}
  for n in range(hp["num_hidden_layers"]):
    shapes[f"electra/encoder/layer_{n}/attention/self/query/kernel"] = (h, h)
    shapes[f"electra/encoder/layer_{n}/intermediate/dense/kernel"] = (h, i)
  got = sizes.hparams_from_shapes(shapes)
  again = sizes.bert_hparams(got["model_size"], got["vocab_size"],
                             got.get("model_hparam_overrides"))
  for k in ("hidden_size", "num_hidden_layers", "intermediate_size",
            "max_position_embeddings", "type_vocab_size", "vocab_size"):
    assert again[k] == hp[k], (k, got)
  assert (sizes.default_embedding_size(got["model_size"], got.get("embedding_size"))
          or again["hidden_size"]) == e
