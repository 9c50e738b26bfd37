"""If, Loop and Scan: subgraphs run by the interpreter with the enclosing scope visible.

Their graph attributes arrive already planned (``interpreter.Plan``). A framework may declare
its own control flow for tracing (a ``cond`` override: jax's ``lax.cond``); in eager mode the
condition is a host value and Python decides.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.ops.context import host_value, native, truth
from modelport.ops.registry import op
from modelport.ops.shape import shape_of

VERSIONS = (1, 11, 13, 16, 19, 21, 23, 24, 25)


@op("If", *VERSIONS)
def if_(ctx: Any, cond: Any, *, then_branch: Any, else_branch: Any) -> Any:
    traced_cond = native(ctx, "cond")
    if ctx.fw.is_native(cond) and traced_cond is not None:
        # The framework's own conditional: both branches are traced, one runs.
        return traced_cond(cond, lambda: then_branch.run(ctx.fw, {}, outer=ctx.scope),
                           lambda: else_branch.run(ctx.fw, {}, outer=ctx.scope))
    branch = then_branch if truth(ctx, cond) else else_branch
    return tuple(branch.run(ctx.fw, {}, outer=ctx.scope))


@op("Loop", *VERSIONS)
def loop(ctx: Any, trip_count: Any, cond: Any, *carried: Any, body: Any) -> Any:
    xp = ctx.xp
    limit = None if trip_count is None else int(host_value(ctx, trip_count))
    keep_going = True if cond is None else truth(ctx, cond)
    names = body.inputs
    n_carried = len(carried)
    state = list(carried)
    scans: list[list[Any]] = []
    i = 0
    while keep_going and (limit is None or i < limit):
        feeds = {names[0]: np.array(i, dtype=np.int64)}
        if len(names) > 1 and names[1]:
            feeds[names[1]] = np.array(keep_going)
        feeds.update(zip(names[2:], state, strict=False))
        outs = body.run(ctx.fw, feeds, outer=ctx.scope)
        keep_going = truth(ctx, outs[0])
        state = list(outs[1:1 + n_carried])
        for j, value in enumerate(outs[1 + n_carried:]):
            if len(scans) <= j:
                scans.append([])
            scans[j].append(value)
        i += 1
    n_scans = len(body.outputs) - 1 - n_carried
    stacked = [_stack(ctx, s) for s in scans] + [
        xp.asarray(np.zeros((0,), np.float32)) for _ in range(n_scans - len(scans))]
    return tuple(state + stacked)


def _stack(ctx: Any, values: list[Any]) -> Any:
    if all(isinstance(v, np.ndarray) for v in values):
        return np.stack(values)
    return ctx.xp.stack([ctx.fw.asarray(v) if isinstance(v, np.ndarray) else v
                         for v in values])


@op("Scan", 8, host=(0,))
def scan_8(ctx: Any, sequence_lens: Any, *inputs: Any, body: Any, num_scan_inputs: int,
           directions: list[int] | None = None) -> Any:
    """Version 8: every input has a batch axis first and the scan runs along axis 1, each
    batch row to its own ``sequence_lens`` (scan outputs are 0 past it): one version-9 scan
    per row, stacked."""
    xp = ctx.xp
    n_state = len(inputs) - num_scan_inputs
    batch = shape_of(inputs[0])[0]
    full = shape_of(inputs[n_state])[1] if num_scan_inputs else 0
    lengths = [full] * batch if sequence_lens is None else \
        [int(n) for n in np.asarray(sequence_lens).reshape(-1)]
    rows = []
    for b in range(batch):
        row = [x[b] for x in inputs[:n_state]] + [x[b, :lengths[b]] for x in inputs[n_state:]]
        outs = list(scan(ctx, *row, body=body, num_scan_inputs=num_scan_inputs,
                         scan_input_directions=directions))
        for j in range(n_state, len(outs)):
            short = full - lengths[b]
            if short:
                padding = xp.zeros((short, *shape_of(outs[j])[1:]), dtype=outs[j].dtype)
                outs[j] = xp.concat([outs[j], padding], axis=0)
        rows.append(outs)
    return tuple(xp.stack([r[j] for r in rows], axis=0) for j in range(len(rows[0])))


@op("Scan", 9, 11, 16, 19, 21, 23, 24, 25)
def scan(ctx: Any, *inputs: Any, body: Any, num_scan_inputs: int,
         scan_input_axes: list[int] | None = None,
         scan_input_directions: list[int] | None = None,
         scan_output_axes: list[int] | None = None,
         scan_output_directions: list[int] | None = None) -> Any:
    xp = ctx.xp
    n_state = len(inputs) - num_scan_inputs
    state = list(inputs[:n_state])
    sequences = list(inputs[n_state:])
    in_axes = scan_input_axes or [0] * num_scan_inputs
    in_dirs = scan_input_directions or [0] * num_scan_inputs
    sequences = [xp.moveaxis(s, int(a) % len(s.shape), 0) for s, a in zip(sequences, in_axes,
                                                                         strict=True)]
    steps = int(sequences[0].shape[0]) if sequences else 0
    names = body.inputs
    outputs: list[list[Any]] = []
    for t in range(steps):
        feeds = dict(zip(names[:n_state], state, strict=True))
        for name, seq, direction in zip(names[n_state:], sequences, in_dirs, strict=True):
            feeds[name] = seq[steps - 1 - t if direction else t]
        outs = body.run(ctx.fw, feeds, outer=ctx.scope)
        state = list(outs[:n_state])
        for j, value in enumerate(outs[n_state:]):
            if len(outputs) <= j:
                outputs.append([])
            outputs[j].append(value)
    n_out = len(body.outputs) - n_state
    out_axes = scan_output_axes or [0] * n_out
    out_dirs = scan_output_directions or [0] * n_out
    results = []
    for values, axis, direction in zip(outputs, out_axes, out_dirs, strict=False):
        stacked = _stack(ctx, values[::-1] if direction else values)
        module = np if isinstance(stacked, np.ndarray) else xp
        results.append(module.moveaxis(stacked, 0, int(axis) % len(stacked.shape)))
    return tuple(state + results)
