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


def _string_model() -> object:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("StringConcat", ["text", "text"], ["twice"])],
        "strings", [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("twice", TensorProto.STRING, ["n"])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


STRING_FEEDS = {
    "str array": np.array(["red", "blue"]), "bytes array": np.array([b"red", b"blue"]),
    "list of str": ["red", "blue"], "list of bytes": [b"red", b"blue"],
    "object array": np.array(["red", b"blue"], dtype=object),
}


@pytest.mark.parametrize("backend", ["onnxruntime", "reference", "numpy", "torch", "jax",
                                     "tensorflow"])
@pytest.mark.parametrize("feed", STRING_FEEDS)
def test_string_inputs_from_str_and_bytes(backend: str, feed: str) -> None:
    import modelport

    session = modelport.get_backend(backend).prepare(_string_model())
    out = session.run({"text": STRING_FEEDS[feed]})["twice"]
    assert [str(s) for s in out] == ["redred", "blueblue"]


@pytest.mark.parametrize(("value", "message"), [
    (np.array([1, 2]), "has dtype int64, expected STRING: give str or bytes"),
    (np.array([b"\xff"]), "element (0,) is not UTF-8"),
    (np.array(["a", 3], dtype=object), "element (1,) is a int, not a string"),
])
def test_string_input_errors_say_what_a_string_input_takes(value: object, message: str) -> None:
    from modelport.inputs import check_feeds

    with pytest.raises(InputError) as info:
        check_feeds([TensorSpec("text", 8, ("n",))], {"text": value})
    assert message in str(info.value)


@pytest.mark.parametrize(("elem_type", "advice"), [
    (16, ".astype(ml_dtypes.bfloat16)"), (1, ".astype(np.float32)")])
def test_a_wrong_dtype_gets_advice_that_runs(elem_type: int, advice: str) -> None:
    import ml_dtypes

    from modelport.inputs import check_feeds

    with pytest.raises(InputError) as info:
        check_feeds([TensorSpec("x", elem_type, (2,))], {"x": np.zeros(2, np.int8)})
    assert advice in str(info.value)
    converted = eval(f"np.zeros(2, np.int8){advice}", {"np": np, "ml_dtypes": ml_dtypes})
    check_feeds([TensorSpec("x", elem_type, (2,))], {"x": converted})
