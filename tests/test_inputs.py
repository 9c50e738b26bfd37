"""Feeds generated from a signature or read from files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelport.errors import InputError
from modelport.inputs import generate_inputs, load_inputs, parse_dims
from modelport.model import TensorSpec

SPECS = [TensorSpec("x", 1, ("batch", "seq", 4)), TensorSpec("ids", 7, ("batch", 3)),
         TensorSpec("mask", 9, (None,))]


def test_generated_feeds_follow_the_signature_and_the_seed() -> None:
    feeds = generate_inputs(SPECS, dims={"batch": 8, "seq": 5}, seed=3)
    assert feeds["x"].shape == (8, 5, 4) and feeds["x"].dtype == np.float32
    assert feeds["ids"].shape == (8, 3) and feeds["ids"].dtype == np.int64
    assert feeds["mask"].shape == (1,) and feeds["mask"].dtype == np.bool_
    again = generate_inputs(SPECS, dims={"batch": 8, "seq": 5}, seed=3)
    other = generate_inputs(SPECS, dims={"batch": 8, "seq": 5}, seed=4)
    np.testing.assert_array_equal(feeds["x"], again["x"])
    assert not np.array_equal(feeds["x"], other["x"])


def test_batch_sets_every_free_leading_dimension() -> None:
    feeds = generate_inputs(SPECS, batch=6)
    assert feeds["x"].shape[0] == feeds["ids"].shape[0] == feeds["mask"].shape[0] == 6


def test_feeds_from_npz_and_npy(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.ones((2, 1, 4), np.float32))
    np.save(tmp_path / "ids.npy", np.zeros((2, 3), np.int64))
    feeds = load_inputs([tmp_path / "a.npz", f"ids={tmp_path / 'ids.npy'}"], SPECS)
    assert set(feeds) == {"x", "ids"} and feeds["ids"].dtype == np.int64
    with pytest.raises(InputError, match="say which input it is"):
        load_inputs([tmp_path / "ids.npy"], SPECS)


def test_pickled_arrays_are_never_loaded(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="without pickles"):
        load_inputs([tmp_path / "obj.npy"], SPECS[:1])


def test_parse_dims() -> None:
    assert parse_dims(["batch=8", "seq = 128"]) == {"batch": 8, "seq": 128}
    with pytest.raises(InputError, match="NAME=SIZE"):
        parse_dims(["batch"])


def test_an_empty_optional_input_is_fed_as_none() -> None:
    """An optional input with no element is ``None``: it must reach the backend, not vanish."""
    from onnx import TensorProto, helper

    import modelport

    optional = helper.make_optional_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    graph = helper.make_graph(
        [helper.make_node("OptionalHasElement", ["o"], ["has"])], "g",
        [helper.make_value_info("o", optional)],
        [helper.make_tensor_value_info("has", TensorProto.BOOL, [])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for backend in ("reference", "numpy"):
        session = modelport.get_backend(backend).prepare(model)
        assert session.run([None])["has"].item() is False
        assert session.run({"o": np.ones(2, np.float32)})["has"].item() is True
