"""The fused network's Triton source (see `bandfusion.models.triton_kernel`, which compiles it).

Imported only where Triton is installed. One program carries BLOCK pixels through every layer:
the first in fp32 FMAs band by band, reading the (bands, n) pixels as they lie; the later ones as
tensor-core dots in the weights' dtype. When certifying it also sums the unrolled bound, one
narrow dot a layer, and marks the labels whose logits it cannot separate.
"""

import triton.language as tl


def fused_labels(  # type: ignore[no-untyped-def]
    pixels, n_pixels, stride, mean, low, high, w_first, b_first, w_later, b_later, w_last, b_last,
    bound_first, bound_later, bound_constant, scales, bound_scales, headroom,
    margin, underflow, labels, doubt, logits_out, bound_out,
    BANDS: tl.constexpr, HIDDEN: tl.constexpr, LATER: tl.constexpr,
    CLASSES: tl.constexpr, CLASSES_PADDED: tl.constexpr, MASK: tl.constexpr, CLAMP: tl.constexpr,
    CERTIFY: tl.constexpr, WITH_LOGITS: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    """Labels (and doubt, and for checking the logits and bound) of BLOCK pixels."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = rows < n_pixels
    units = tl.arange(0, HIDDEN)
    classes = tl.arange(0, CLASSES_PADDED)
    # First layer, in fp32 FMAs band by band; pixels are read as they lie, (bands, n).
    y = tl.zeros((BLOCK, HIDDEN), tl.float32)
    bound = tl.zeros((BLOCK, CLASSES_PADDED), tl.float32)
    for band in tl.static_range(BANDS):
        value = tl.load(pixels + band * stride.to(tl.int64) + rows, mask=inside, other=0)
        if MASK == 0xFFFF:
            value = value.to(tl.int32) & MASK
        elif MASK != 0:
            value = value.to(tl.int64) & MASK
        centred = value.to(tl.float32) - tl.load(mean + band)
        if CLAMP:  # the clamped network's range; comparisons leave a NaN pixel NaN
            floor, ceiling = tl.load(low + band), tl.load(high + band)
            centred = tl.where(centred < floor, floor, centred)
            centred = tl.where(centred > ceiling, ceiling, centred)
        y += centred[:, None] * tl.load(w_first + band * HIDDEN + units)[None, :]
        if CERTIFY:
            coefficients = tl.load(bound_first + band * CLASSES_PADDED + classes)
            bound += tl.abs(centred)[:, None] * coefficients[None, :]
    x = tl.maximum(y + tl.load(b_first + units)[None, :], 0.0)
    # Later layers on the tensor cores.
    square = units[:, None] * HIDDEN + units[None, :]
    narrow = units[:, None] * CLASSES_PADDED + classes[None, :]
    for layer in tl.static_range(LATER):
        weight = tl.load(w_later + layer * HIDDEN * HIDDEN + square)
        half = x.to(weight.dtype, fp_downcast_rounding="rtne")
        y = tl.dot(half, weight) * tl.load(scales + layer)
        if CERTIFY:
            terms = tl.load(bound_later + layer * HIDDEN * CLASSES_PADDED + narrow)
            bound += tl.dot(half, terms) * tl.load(bound_scales + layer)
        x = tl.maximum(y + tl.load(b_later + layer * HIDDEN + units)[None, :], 0.0)
    weight = tl.load(w_last + narrow)
    half = x.to(weight.dtype, fp_downcast_rounding="rtne")
    logits = tl.dot(half, weight) * tl.load(scales + LATER)
    logits += tl.load(b_last + classes)[None, :]
    real = (classes < CLASSES)[None, :]
    logits = tl.where(real, logits, float("-inf"))
    label = tl.argmax(logits, axis=1, tie_break_left=True)
    tl.store(labels + rows, label.to(labels.dtype.element_ty), mask=inside)
    if CERTIFY:
        terms = tl.load(bound_later + LATER * HIDDEN * CLASSES_PADDED + narrow)
        bound += tl.dot(half, terms) * tl.load(bound_scales + LATER)
        bound = bound * headroom + tl.load(bound_constant + classes)[None, :]
        # Non-finite logits or bounds (an overflow, a NaN pixel) make the sum non-finite.
        check = tl.sum(tl.where(real, logits + bound, 0.0), axis=1)
        worst = tl.max(tl.where(real, bound, 0.0), axis=1)
        best = tl.max(logits, axis=1)
        near = real & (best[:, None] - logits <= worst[:, None] * margin + underflow)
        contenders = tl.sum(near.to(tl.int32), axis=1)
        in_doubt = (contenders != 1) | (check - check != 0)
        tl.store(doubt + rows, in_doubt.to(tl.uint8), mask=inside)
        if WITH_LOGITS:
            tl.store(bound_out + rows, worst, mask=inside)
    if WITH_LOGITS:
        where = rows[:, None] * CLASSES_PADDED + classes[None, :]
        tl.store(logits_out + where, logits, mask=inside[:, None])
