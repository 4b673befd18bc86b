"""DAT's option files (zhengchen1999/DAT ``options/Train``, ``options/Test``) read as they are.

Called by :func:`restoration.options.upstream.translate_upstream`; each translation leaves one notice.
``model_type: DATModel`` itself is an alias of SRModel (its notice is in
:data:`restoration.options.upstream.MODEL_ALIASES`): DAT's ``basicsr/models/dat_model.py`` is BasicSR's SRModel
with one more test-time path, ``val.use_chop``. What its files add, and their translation here:

* ``datasets.<phase>.task: SR`` in every dataset of its train and test files: a tag no DAT code reads -> dropped
  (one notice for the file);
* ``val.use_chop: false`` (every official test file): whole images, as here -> dropped;
* ``val.use_chop: true`` ("to save memory, if img too large"): DAT cuts each axis into ``size // 200 + 1``
  equal pieces (the image mirror-padded to a multiple of that count), runs each piece with 16 extra pixels on its
  inner sides and keeps the piece without them. Pieces are at most 200 + 2 * 16 = 232 pixels, so the translation
  is ``val.tile {tile_size: 232, tile_overlap: 32}``: tiles of the same largest size (the same peak memory),
  stepping by 200. The seams differ: our tiles sit at other places (a fixed step, the last one flush with the
  edge, where DAT divides the side evenly) and are blended over the overlap where DAT cuts in its middle; an image
  side below 232 is one tile here while DAT cuts it from 200 on. A translation rather than a refusal because the
  switch exists to bound memory, which the tiles do, and the official scores are measured without it.

DAT's test files' other keys (``SingleImageDataset`` with ``dataroot_lq`` only, ``suffix``, ``strict_load_g``)
are ours already.
"""

from __future__ import annotations

from typing import Any, Mapping

from restoration.errors import value_repr

__all__ = ["DAT_CHOP_PIECE", "DAT_CHOP_SHAVE", "translate_dat"]

#: The largest piece side of DAT's partition, without its margins (``size // 200 + 1`` pieces per side).
DAT_CHOP_PIECE = 200
#: The margin DAT adds to each inner side of a piece and cuts off again (``shave_h`` / ``shave_w``).
DAT_CHOP_SHAVE = 16


def _drop_task(opt: dict[str, Any], notices: list[str]) -> None:
    datasets = opt.get("datasets")
    phases = [str(phase) for phase, dopt in (datasets.items() if isinstance(datasets, Mapping) else ())
              if isinstance(dopt, dict) and "task" in dopt]
    if not phases:
        return
    values = sorted({value_repr(datasets[phase].pop("task")) for phase in phases})
    names = ", ".join(f"datasets.{phase}.task" for phase in phases)
    notices.append(f"{names} ({'/'.join(values)}) ignored: DAT's dataset tag, which no DAT code reads either")


def _translate_chop(opt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    val = opt.get("val")
    if not isinstance(val, dict) or "use_chop" not in val:
        return
    chop = val["use_chop"]
    if not isinstance(chop, bool):
        problems.append(f"'val.use_chop' (DAT's test-time partition) is true or false, got {value_repr(chop)}")
        return
    if not chop:
        del val["use_chop"]
        notices.append("val.use_chop: false ignored (whole images, as here)")
        return
    if val.get("tile"):
        problems.append("'val.use_chop' true (DAT's test-time partition) and 'val.tile' are both set; keep only "
                        "val.tile")
        return
    del val["use_chop"]
    size, overlap = DAT_CHOP_PIECE + 2 * DAT_CHOP_SHAVE, 2 * DAT_CHOP_SHAVE
    val["tile"] = {"tile_size": size, "tile_overlap": overlap}
    notices.append(f"val.use_chop: true (DAT's partition into pieces of at most {DAT_CHOP_PIECE} px with "
                   f"{DAT_CHOP_SHAVE}-px margins) is val.tile {{tile_size: {size}, tile_overlap: {overlap}}} here: "
                   "tiles of the same largest size, but the seams differ from DAT's (other places, blended over "
                   "the overlap instead of cut)")


def translate_dat(opt: dict[str, Any], notices: list[str], problems: list[str]) -> None:
    """DAT's ``datasets.*.task`` and ``val.use_chop`` in ``opt`` (in place), for a file whose ``model_type``
    is DATModel; one notice per translation, one problem per value that cannot be translated."""
    if opt.get("model_type") != "DATModel":
        return
    _drop_task(opt, notices)
    _translate_chop(opt, notices, problems)
