"""Spectral operators: DFT, STFT and MelWeightMatrix (the windows have function bodies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.ops.registry import op
from modelport.ops.shape import normalize_axis, shape_of


def _dft(ctx: Any, x: Any, length: int | None, axis: int, inverse: bool, onesided: bool) -> Any:
    """Complex-as-last-axis DFT along ``axis`` of ``x`` ([..., 1] real or [..., 2] complex)."""
    xp = ctx.xp
    # In double precision whatever the input: the spec's reference does, and float32 FFTs
    # leave near-zero bins far outside its tolerance.
    wide = xp.astype(x, xp.float64)
    signal = xp.astype(wide[..., 0], xp.complex128)
    if shape_of(x)[-1] == 2:
        signal = signal + xp.astype(wide[..., 1], xp.complex128) * xp.asarray(
            1j, dtype=xp.complex128)
    if inverse and onesided:  # a one-sided spectrum back to its real signal
        n = length or 2 * (shape_of(signal)[axis] - 1)
        real = xp.fft.irfft(signal, n=n, axis=axis)
        return xp.astype(xp.expand_dims(real, axis=-1), x.dtype)
    n = length or shape_of(signal)[axis]
    spectrum = (xp.fft.ifft if inverse else xp.fft.fft)(signal, n=n, axis=axis)
    if onesided:
        spectrum = xp.take(spectrum, xp.arange(n // 2 + 1), axis=axis)
    return xp.astype(xp.stack([xp.real(spectrum), xp.imag(spectrum)], axis=-1), x.dtype)


@op("DFT", 17, host=(1,))
def dft_17(ctx: Any, x: Any, dft_length: Any = None, *, axis: int = 1, inverse: int = 0,
           onesided: int = 0) -> Any:
    length = None if dft_length is None else int(np.asarray(dft_length).reshape(-1)[0])
    return _dft(ctx, x, length, normalize_axis(axis, len(x.shape) - 1), bool(inverse),
                bool(onesided))


@op("DFT", 20, host=(1, 2))
def dft(ctx: Any, x: Any, dft_length: Any = None, axis: Any = None, *, inverse: int = 0,
        onesided: int = 0) -> Any:
    length = None if dft_length is None or np.size(dft_length) == 0 \
        else int(np.asarray(dft_length).reshape(-1)[0])
    chosen = -2 if axis is None else int(np.asarray(axis).reshape(-1)[0])
    return _dft(ctx, x, length, normalize_axis(chosen, len(x.shape)) if chosen < 0 else chosen,
                bool(inverse), bool(onesided))


@op("STFT", 17, host=(1, 3))
def stft(ctx: Any, signal: Any, frame_step: Any, window: Any = None, frame_length: Any = None,
         *, onesided: int = 1) -> Any:
    xp = ctx.xp
    step = int(np.asarray(frame_step).reshape(-1)[0])
    length = (int(np.asarray(frame_length).reshape(-1)[0]) if frame_length is not None
              else shape_of(window)[0])
    total = shape_of(signal)[1]
    frames = [signal[:, s:s + length] for s in range(0, total - length + 1, step)]
    stacked = xp.stack(frames, axis=1)  # batch, frames, length, 1 or 2
    if window is not None:
        stacked = stacked * xp.reshape(window, (1, 1, length, 1))
    return _dft(ctx, stacked, length, 2, False, bool(onesided))


@op("MelWeightMatrix", 17, host=(0, 1, 2, 3, 4))
def mel_weight_matrix(ctx: Any, num_mel_bins: Any, dft_length: Any, sample_rate: Any,
                      lower_edge_hertz: Any, upper_edge_hertz: Any, *,
                      output_datatype: int = 1) -> Any:
    bins, length, rate = int(num_mel_bins), int(dft_length), int(sample_rate)
    low, high = float(lower_edge_hertz), float(upper_edge_hertz)
    spectrogram_bins = length // 2 + 1

    def to_mel(hz: float) -> float:
        return 2595 * np.log10(1 + hz / 700)

    # bins + 2 points a step of (high - low) / (bins + 2) apart, as the spec's reference and
    # onnxruntime space them: the top edge itself is never reached
    mel = to_mel(low) + np.arange(bins + 2) * (to_mel(high) - to_mel(low)) / (bins + 2)
    hz = 700 * (10 ** (mel / 2595) - 1)
    edges = np.floor((length + 1) * hz / rate).astype(np.int64)
    out = np.zeros((spectrogram_bins, bins))
    for i in range(bins):
        lo, center, hi = edges[i], edges[i + 1], edges[i + 2]
        if center > lo:
            out[lo:center, i] = (np.arange(lo, center) - lo) / (center - lo)
        out[center, i] = 1
        if hi > center:
            out[center:hi, i] = (hi - np.arange(center, hi)) / (hi - center)
    import onnx.helper

    return out.astype(onnx.helper.tensor_dtype_to_np_dtype(output_datatype))


@op("BitCast", 26)
def bit_cast(ctx: Any, x: Any, *, to: int) -> Any:
    return ctx.k.bit_cast(x, ctx.dtype(to))
