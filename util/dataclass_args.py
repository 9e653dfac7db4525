"""Command-line flags whose default and help come from an options dataclass.

A builder's options (e.g. pretrain/dataset_builder.BuildOptions) are one frozen
dataclass: each field's default and `metadata["help"]` are written once, there. The
parser only says how each flag is spelled and parsed; `add_field` fills in the rest, and
`from_namespace` turns the parsed flags back into the dataclass.
"""
import argparse
import dataclasses


def option(default=dataclasses.MISSING, help=None):  # noqa: A002 - argparse's name
  """A dataclass field holding its default and its --help text (metadata["help"]).

  Args:
    default: the default (none: the flag is required, or checked by the caller).
    help: the flag's help text.

  Returns:
    dataclasses.Field.
  """
  return dataclasses.field(default=default, metadata={"help": help})


def add_field(parser: argparse.ArgumentParser, options_class, name: str, *flags, **kwargs):
  """Adds the flag for field `name` of `options_class`.

  Args:
    parser: the parser (or argument group).
    options_class: a dataclass whose field `name` has a default (or none: required
      elsewhere) and `metadata["help"]`.
    name: the field; the flag is --name-with-dashes unless `flags` are given.
    *flags: the option strings, e.g. ("-n", "--num-examples").
    **kwargs: add_argument's arguments (type, action, choices, ...); an explicit
      `default` or `help` here wins over the field's.

  Returns:
    the argparse Action.
  """
  field = {f.name: f for f in dataclasses.fields(options_class)}[name]
  if field.default is not dataclasses.MISSING:
    kwargs.setdefault("default", field.default)
  kwargs.setdefault("help", field.metadata.get("help"))
  flags = flags or ("--" + name.replace("_", "-"),)
  return parser.add_argument(*flags, dest=name, **kwargs)


def from_namespace(options_class, args: argparse.Namespace):
  """`options_class` from the parsed flags of the same names (other flags ignored).

  Raises:
    whatever options_class raises on a bad value (a UserError naming the flag).
  """
  names = {f.name for f in dataclasses.fields(options_class)}
  return options_class(**{k: v for k, v in vars(args).items() if k in names})
