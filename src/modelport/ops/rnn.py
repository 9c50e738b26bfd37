"""Recurrent layers: RNN, GRU and LSTM, unrolled over time with the namespace's matmul."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelport.ops import elementwise
from modelport.ops.registry import op

VERSIONS = (7, 14, 22)


def _activation(ctx: Any, name: str, alpha: float | None, beta: float | None) -> Callable[
        [Any], Any]:
    xp = ctx.xp
    name = name.lower()
    table: dict[str, Callable[[Any], Any]] = {
        "sigmoid": lambda x: 1 / (1 + xp.exp(-x)),
        "tanh": xp.tanh,
        "relu": lambda x: elementwise.relu(ctx, x),
        "leakyrelu": lambda x: xp.where(x >= 0, x, (alpha if alpha is not None else 0.01) * x),
        "thresholdedrelu": lambda x: elementwise.thresholded_relu(
            ctx, x, alpha=alpha if alpha is not None else 1.0),
        "scaledtanh": lambda x: (alpha or 1.0) * xp.tanh((beta or 1.0) * x),
        "hardsigmoid": lambda x: xp.clip((alpha if alpha is not None else 0.2) * x
                                         + (beta if beta is not None else 0.5), 0, 1),
        "elu": lambda x: xp.where(x >= 0, x, (alpha if alpha is not None else 1.0)
                                  * (xp.exp(x) - 1)),
        "softsign": lambda x: x / (1 + xp.abs(x)),
        "softplus": lambda x: xp.log(1 + xp.exp(x)),
        "affine": lambda x: (alpha or 1.0) * x + (beta or 0.0),
    }
    return table[name]


def _activations(ctx: Any, names: list[str] | None, alphas: list[float] | None,
                 betas: list[float] | None, defaults: list[str],
                 directions: int) -> list[list[Callable[[Any], Any]]]:
    names = names or defaults * directions
    alphas, betas = list(alphas or []), list(betas or [])
    per = len(defaults)
    return [[_activation(ctx, names[d * per + i],
                         alphas[d * per + i] if d * per + i < len(alphas) else None,
                         betas[d * per + i] if d * per + i < len(betas) else None)
             for i in range(per)] for d in range(directions)]


def _recur(ctx: Any, x: Any, sequence_lens: Any, direction: str, layout: int, n_states: int,
           initial: list[Any], cell: Callable[[int, Any, list[Any]], list[Any]],
           hidden: int) -> tuple[Any, ...]:
    """Unroll ``cell`` over time for each direction; returns Y and the final states.

    A reverse pass reads each sequence backwards within its own length (``sequence_lens``),
    and its outputs are put back at the time steps they belong to.
    """
    xp = ctx.xp
    if layout:
        x = xp.permute_dims(x, (1, 0, 2))
    steps, batch = int(x.shape[0]), int(x.shape[1])
    lens = np.full(batch, steps) if sequence_lens is None else np.asarray(sequence_lens)
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    ys: list[Any] = []
    finals: list[list[Any]] = [[] for _ in range(n_states)]
    for d, name in enumerate(dirs):
        states = [s[d] for s in initial]
        outputs = []
        for pos in range(steps):
            source = np.where(pos < lens, lens - 1 - pos, pos)
            xt = _rows(ctx, x, source[None, :])[0] if name == "reverse" else x[pos]
            new = cell(d, xt, states)
            valid = xp.reshape(xp.asarray(pos < lens), (batch, 1))
            states = [xp.where(valid, n, s) for n, s in zip(new, states, strict=True)]
            outputs.append(xp.where(valid, new[0], xp.zeros_like(new[0])))
        y = xp.stack(outputs)
        if name == "reverse":
            back = np.stack([np.where(t < lens, lens - 1 - t, t) for t in range(steps)])
            y = _rows(ctx, y, back)
        ys.append(y)
        for i, s in enumerate(states):
            finals[i].append(s)
    y = xp.stack(ys, axis=1)  # [seq, dirs, batch, hidden]
    results = [xp.stack(f) for f in finals]  # [dirs, batch, hidden]
    if layout:
        y = xp.permute_dims(y, (2, 0, 1, 3))
        results = [xp.permute_dims(r, (1, 0, 2)) for r in results]
    return (y, *results)


def _rows(ctx: Any, x: Any, steps: np.ndarray) -> Any:
    """``out[t, b] = x[steps[t, b], b]`` for x of shape [time, batch, features]."""
    xp = ctx.xp
    index = np.broadcast_to(steps[:, :, None], (*steps.shape, int(x.shape[2])))
    return xp.take_along_axis(x, xp.asarray(np.ascontiguousarray(index)), axis=0)


def _layer(ctx: Any, x: Any, b: Any, direction: str, layout: int, gates: int, hidden: int,
           activations: list[str] | None, alphas: list[float] | None,
           betas: list[float] | None, defaults: list[str]) -> tuple[int, int, Any, Any]:
    """What every recurrent layer works out first: directions, batch, activations, bias."""
    dirs = 2 if direction == "bidirectional" else 1
    batch = int(x.shape[0 if layout else 1])
    acts = _activations(ctx, activations, alphas, betas, defaults, dirs)
    return dirs, batch, acts, _split_bias(ctx, b, gates, hidden, dirs, x.dtype)


def _initial(ctx: Any, value: Any, dirs: int, batch: int, hidden: int, layout: int,
             dtype: Any) -> Any:
    if value is None:
        return ctx.xp.zeros((dirs, batch, hidden), dtype=dtype)
    return ctx.xp.permute_dims(value, (1, 0, 2)) if layout else value


def _split_bias(ctx: Any, b: Any, gates: int, hidden: int, dirs: int, dtype: Any) -> Any:
    if b is None:
        return ctx.xp.zeros((dirs, 2 * gates * hidden), dtype=dtype)
    return b


@op("RNN", *VERSIONS, host=(4,))
def rnn(ctx: Any, x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
        initial_h: Any = None, *, activation_alpha: list[float] | None = None,
        activation_beta: list[float] | None = None, activations: list[str] | None = None,
        clip: float | None = None, direction: str = "forward", hidden_size: int,
        layout: int = 0) -> Any:
    xp = ctx.xp
    dirs, batch, acts, bias = _layer(ctx, x, b, direction, layout, 1, hidden_size, activations,
                                     activation_alpha, activation_beta, ["Tanh"])

    def cell(d: int, xt: Any, states: list[Any]) -> list[Any]:
        pre = xp.matmul(xt, xp.matrix_transpose(w[d])) + xp.matmul(
            states[0], xp.matrix_transpose(r[d])) + bias[d, :hidden_size] + bias[d, hidden_size:]
        if clip is not None:
            pre = xp.clip(pre, -clip, clip)
        return [acts[d][0](pre)]

    h0 = _initial(ctx, initial_h, dirs, batch, hidden_size, layout, x.dtype)
    return _outputs(ctx, _recur(ctx, x, sequence_lens, direction, layout, 1, [h0], cell,
                                hidden_size))


@op("GRU", *VERSIONS, host=(4,))
def gru(ctx: Any, x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
        initial_h: Any = None, *, activation_alpha: list[float] | None = None,
        activation_beta: list[float] | None = None, activations: list[str] | None = None,
        clip: float | None = None, direction: str = "forward", hidden_size: int,
        layout: int = 0, linear_before_reset: int = 0) -> Any:
    xp = ctx.xp
    n = hidden_size
    dirs, batch, acts, bias = _layer(ctx, x, b, direction, layout, 3, n, activations,
                                     activation_alpha, activation_beta, ["Sigmoid", "Tanh"])

    def cell(d: int, xt: Any, states: list[Any]) -> list[Any]:
        f, g = acts[d]
        h = states[0]
        wx = xp.matmul(xt, xp.matrix_transpose(w[d])) + bias[d, :3 * n]
        rb = bias[d, 3 * n:]
        rh = xp.matmul(h, xp.matrix_transpose(r[d]))
        z = _clip(ctx, wx[:, :n] + rh[:, :n] + rb[:n], clip)
        reset = _clip(ctx, wx[:, n:2 * n] + rh[:, n:2 * n] + rb[n:2 * n], clip)
        z, reset = f(z), f(reset)
        if linear_before_reset:
            candidate = wx[:, 2 * n:] + reset * (rh[:, 2 * n:] + rb[2 * n:])
        else:
            candidate = wx[:, 2 * n:] + xp.matmul(reset * h, xp.matrix_transpose(
                r[d][2 * n:])) + rb[2 * n:]
        candidate = g(_clip(ctx, candidate, clip))
        return [(1 - z) * candidate + z * h]

    h0 = _initial(ctx, initial_h, dirs, batch, n, layout, x.dtype)
    return _outputs(ctx, _recur(ctx, x, sequence_lens, direction, layout, 1, [h0], cell, n))


@op("LSTM", *VERSIONS, host=(4,))
def lstm(ctx: Any, x: Any, w: Any, r: Any, b: Any = None, sequence_lens: Any = None,
         initial_h: Any = None, initial_c: Any = None, p: Any = None, *,
         activation_alpha: list[float] | None = None,
         activation_beta: list[float] | None = None, activations: list[str] | None = None,
         clip: float | None = None, direction: str = "forward", hidden_size: int,
         input_forget: int = 0, layout: int = 0) -> Any:
    xp = ctx.xp
    n = hidden_size
    dirs, batch, acts, bias = _layer(ctx, x, b, direction, layout, 4, n, activations,
                                     activation_alpha, activation_beta,
                                     ["Sigmoid", "Tanh", "Tanh"])
    peep = xp.zeros((dirs, 3 * n), dtype=x.dtype) if p is None else p

    def cell(d: int, xt: Any, states: list[Any]) -> list[Any]:
        f, g, h_act = acts[d]
        h, c = states
        gates = (xp.matmul(xt, xp.matrix_transpose(w[d])) + xp.matmul(
            h, xp.matrix_transpose(r[d])) + bias[d, :4 * n] + bias[d, 4 * n:])
        i = f(_clip(ctx, gates[:, :n] + peep[d, :n] * c, clip))
        forget = f(_clip(ctx, gates[:, 2 * n:3 * n] + peep[d, 2 * n:] * c, clip))
        if input_forget:
            forget = 1 - i
        candidate = g(_clip(ctx, gates[:, 3 * n:], clip))
        c_new = forget * c + i * candidate
        o = f(_clip(ctx, gates[:, n:2 * n] + peep[d, n:2 * n] * c_new, clip))
        return [o * h_act(c_new), c_new]

    h0 = _initial(ctx, initial_h, dirs, batch, n, layout, x.dtype)
    c0 = _initial(ctx, initial_c, dirs, batch, n, layout, x.dtype)
    return _outputs(ctx, _recur(ctx, x, sequence_lens, direction, layout, 2, [h0, c0], cell, n))


def _clip(ctx: Any, value: Any, clip: float | None) -> Any:
    return value if clip is None else ctx.xp.clip(value, -clip, clip)


def _outputs(ctx: Any, results: tuple[Any, ...]) -> tuple[Any, ...]:
    return results[:ctx.n_outputs] if ctx.n_outputs < len(results) else results


# Versions 1 and 3 add ``output_sequence``, which says whether the exporter wanted Y; the
# node's outputs say that already, so it changes nothing computed. (GRU-1 has no
# linear_before_reset, which is its default, 0.)
def _without_output_sequence(fn: Any) -> Any:
    def old(ctx: Any, *inputs: Any, output_sequence: int = 0, **attributes: Any) -> Any:
        return fn(ctx, *inputs, **attributes)

    old.__name__ = f"{fn.__name__}_1"
    return old


op("RNN", 1)(_without_output_sequence(rnn))
op("GRU", 1, 3)(_without_output_sequence(gru))
op("LSTM", 1)(_without_output_sequence(lstm))
