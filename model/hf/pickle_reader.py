"""pytorch_model.bin read without torch: a restricted unpickler.

torch.save writes a pickle whose tensors are rebuilt by torch functions on storages kept
beside it (torch >= 1.6: a zip with data.pkl and data/<key>; earlier: several pickles and
the raw storages in one stream, what many 2020 hub uploads hold). This unpickler accepts
exactly those few classes, rebuilds each tensor as a numpy array, and refuses any other
object, so a crafted file cannot run code.
"""
import collections
import pickle
import zipfile
from typing import Dict

import numpy as np

from model.hf import HFFormatError

# torch storage class -> numpy dtype (all little-endian, as torch writes them on x86/ARM).
_TORCH_STORAGES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
    "BFloat16Storage": "<u2", "LongStorage": "<i8", "IntStorage": "<i4",
    "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}
# torch.save's non-zip format (torch < 1.6 default): these two pickles come first.
_LEGACY_MAGIC, _LEGACY_PROTOCOL = 0x1950A86A20F9469CFC6C, 1001

# A storage named in the pickle (its bytes are read afterwards) and a tensor on it.
_StorageRef = collections.namedtuple("_StorageRef", ["key", "kind", "view"])
_TensorRef = collections.namedtuple("_TensorRef", ["storage", "offset", "size", "stride"])


def _rebuild_tensor(storage, offset, size, stride, *unused):
  """torch._utils._rebuild_tensor_v2, deferred until the storage bytes are read."""
  del unused  # requires_grad, backward hooks, metadata
  return _TensorRef(storage, offset, tuple(size), tuple(stride))


def _rebuild_parameter(data, *unused):
  del unused
  return data


def _storage_array(raw, kind):
  array = np.frombuffer(raw, _TORCH_STORAGES[kind])
  if kind == "BFloat16Storage":  # bfloat16 = the high half of a float32
    array = (array.astype(np.uint32) << 16).view(np.float32)
  return array


def _materialize(ref, storages):
  data = storages[ref.storage.key]
  if ref.storage.view is not None:  # legacy views: (offset, size) into the root storage
    data = data[ref.storage.view[0]:ref.storage.view[0] + ref.storage.view[1]]
  item = data.itemsize
  return np.array(np.lib.stride_tricks.as_strided(
      data[ref.offset:], shape=ref.size, strides=tuple(s * item for s in ref.stride)))


class _TensorUnpickler(pickle.Unpickler):
  """Unpickles a torch state dict into _TensorRefs; any class but these few is refused,
  so a crafted file cannot run code."""

  def __init__(self, f, path):
    super().__init__(f)
    self._path = path

  def find_class(self, module, name):
    allowed = {("collections", "OrderedDict"): collections.OrderedDict,
               ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
               ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}
    if (module, name) in allowed:
      return allowed[(module, name)]
    if module == "torch" and name in _TORCH_STORAGES:
      return name
    raise HFFormatError(f"{self._path}: holds a {module}.{name} object; only tensors are "
                        "read from a pytorch_model.bin (convert it to safetensors)")

  def persistent_load(self, pid):
    # zip: ("storage", class, key, location, numel);
    # legacy: ("storage", class, key, location, numel, (view key, offset, size) or None)
    if pid[0] not in ("storage", b"storage"):
      raise HFFormatError(f"{self._path}: unknown persistent id {pid[0]!r}")
    view = pid[5] if len(pid) > 5 else None
    return _StorageRef(str(pid[2]), pid[1], None if view is None else (view[1], view[2]))


def read_torch_checkpoint(path: str) -> Dict[str, np.ndarray]:
  """{name: numpy array} of a torch.save'd state dict, without torch.

  Reads torch's zip format (torch >= 1.6) and its earlier pickle format (what many 2020
  hub uploads hold).

  Args:
    path: a pytorch_model.bin.

  Returns:
    {parameter name: numpy array}; non-tensor entries are dropped.

  Raises:
    HFFormatError: another format, or an object that is not a tensor.
  """
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as archive:
      pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
      if not pkl:
        raise HFFormatError(f"{path}: no data.pkl inside (not a torch checkpoint)")
      prefix = pkl[0][:-len("data.pkl")]
      with archive.open(pkl[0]) as f:
        state = _TensorUnpickler(f, path).load()
      if not isinstance(state, dict):
        raise HFFormatError(f"{path}: holds a {type(state).__name__}, not a state dict")
      refs = {r.storage.key: r.storage.kind for r in state.values()
              if isinstance(r, _TensorRef)}
      storages = {k: _storage_array(archive.read(f"{prefix}data/{k}"), kind)
                  for k, kind in refs.items()}
  else:
    with open(path, "rb") as f:
      try:
        magic = _TensorUnpickler(f, path).load()
      except (pickle.UnpicklingError, EOFError, ValueError):
        magic = None
      if magic != _LEGACY_MAGIC or _TensorUnpickler(f, path).load() != _LEGACY_PROTOCOL:
        raise HFFormatError(f"{path}: not a torch checkpoint (neither torch's zip format "
                            "nor its earlier pickle format)")
      _TensorUnpickler(f, path).load()  # sys info (byte order, type sizes)
      state = _TensorUnpickler(f, path).load()
      if not isinstance(state, dict):
        raise HFFormatError(f"{path}: holds a {type(state).__name__}, not a state dict")
      kinds = {}
      for r in state.values():
        if isinstance(r, _TensorRef):
          kinds[r.storage.key] = r.storage.kind
      storages = {}
      for key in _TensorUnpickler(f, path).load():  # then each storage: int64 count, bytes
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        kind = kinds.get(str(key), "ByteStorage")
        item = np.dtype(_TORCH_STORAGES[kind]).itemsize
        storages[str(key)] = _storage_array(f.read(count * item), kind)
  return {str(k): _materialize(v, storages) for k, v in state.items()
          if isinstance(v, _TensorRef)}
