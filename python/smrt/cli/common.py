"""What the CLI's commands share: flag parsing, the signature lookup and its error, and the
texts saved_model_cli prints for shapes and op sets."""

from __future__ import annotations

from collections.abc import Iterable

from smrt.saved_model import MetaGraphInfo, Shape, SignatureInfo, tag_set, tf_dims

from .errors import CliError


def tags_from_flag(flag: str) -> list[str]:
    """saved_model_cli's --tag_set parsing: comma-separated, blanks dropped."""
    tags = list(tag_set(flag))
    if not tags:
        raise CliError("--tag_set must name at least one tag")
    return tags


def signature_of(meta: MetaGraphInfo, key: str) -> SignatureInfo:
    """The SignatureDef ``--signature_def`` names; a CliError listing the others if missing."""
    try:
        return meta.signatures[key]
    except KeyError:
        raise CliError(
            f"no SignatureDef {key!r} in the MetaGraph with tags {list(meta.tags)}; "
            f"its SignatureDefs are: {', '.join(sorted(meta.signatures))}"
        ) from None


def shape_text(shape: Shape, separator: str = ", ") -> str:
    """A shape as saved_model_cli prints it: ``(-1, 28, 28)``, or ``unknown_rank``."""
    if shape is None:
        return "unknown_rank"
    return "(" + separator.join(map(str, tf_dims(shape))) + ")"


def set_text(ops: Iterable[str]) -> str:
    """Op names as the Python set saved_model_cli prints, sorted (it prints hash order)."""
    names = sorted(ops)
    return "{" + ", ".join(repr(op) for op in names) + "}" if names else "set()"
