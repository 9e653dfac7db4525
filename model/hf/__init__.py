"""The Hugging Face hub format, in one package: what export_hf.py writes, import_hf.py reads.

  names.py          the model kinds (one table), TF <-> HF parameter names (pretraining
                    models and the finetuned heads that map one-to-one), expected shapes
  files.py          config.json, safetensors, tokenizer files, model card, staged output
  pickle_reader.py  pytorch_model.bin read without torch (a restricted unpickler)
  convert.py        the export and import rules (which hparams describe the encoder,
                    generator checks, label order, the checkpoint folder an import writes)

The package takes typed values (numpy arrays, hparams dicts, label lists); what needs the
task registry (finetune/tasks.py) or the pretraining config class is given by the caller.
names.py and pickle_reader.py import neither TensorFlow nor torch.
"""
from util import errors


class HFFormatError(errors.UserError):
  """A hub folder, checkpoint or option that cannot be exported or imported as asked."""
