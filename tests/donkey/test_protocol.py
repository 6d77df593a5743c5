"""The pure codec: round trips, arbitrary chunking, decimal commas, malformed input."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from donkeyrl.donkey import protocol as P

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
safe_text = st.text(st.characters(blacklist_characters="{}\n", blacklist_categories=("Cs",)),
                    max_size=20)


def client_messages() -> st.SearchStrategy[P.Message]:
    return st.one_of(
        st.builds(P.Control, finite, finite, finite),
        st.just(P.ResetCar()), st.just(P.GetSceneNames()), st.just(P.ExitScene()),
        st.just(P.QuitApp()), st.just(P.GetProtocolVersion()),
        st.builds(P.LoadScene, safe_text),
        st.builds(P.RegenRoad, st.integers(0, 4), st.integers(0, 2**31), finite),
        st.builds(P.NodePositionRequest, st.integers(0, 10**6)),
        st.builds(P.CamConfig, fov=finite, img_w=st.integers(0, 640), img_h=st.integers(0, 480),
                  img_enc=st.sampled_from(["JPG", "PNG"])),
        st.builds(P.CarConfig, body_style=st.sampled_from(["donkey", "f1"]), car_name=safe_text),
    )


def sim_messages() -> st.SearchStrategy[P.Message]:
    return st.one_of(
        st.just(P.SceneSelectionReady()), st.just(P.CarLoaded()),
        st.builds(P.SceneNames, st.lists(safe_text, max_size=5).map(tuple)),
        st.builds(P.Telemetry, steering_angle=finite, throttle=finite, speed=finite,
                  image=st.text("abcXYZ+/=", max_size=50), hit=st.sampled_from(["none", "wall"]),
                  cte=finite, pos_x=finite, activeNode=st.integers(0, 1000),
                  extended=st.booleans()).map(lambda t: t if t.extended else P.replace(t, cte=0.0, pos_x=0.0)),
        st.builds(P.StartingLine, st.integers(0, 3), finite),
        st.builds(P.NodePosition, st.integers(0, 999), finite, finite, finite),
        st.builds(P.ProtocolVersion, st.just("2")),
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@settings(max_examples=150, deadline=None)
@given(st.lists(client_messages(), min_size=1, max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_client_stream_round_trip_any_chunking(msgs, cuts):
    data = b"".join(P.encode_client(m) for m in msgs)
    assert b"\n" not in data
    dec = P.ClientStreamDecoder()
    out = [item for chunk in chunked(data, cuts) for item in dec.feed(chunk)]
    assert out == msgs
    assert dec.buffered == 0


@settings(max_examples=150, deadline=None)
@given(st.lists(sim_messages(), min_size=1, max_size=8), st.lists(st.integers(0, 10**6), max_size=12))
def test_sim_stream_round_trip_any_chunking(msgs, cuts):
    data = b"".join(P.encode_sim(m) for m in msgs)
    dec = P.SimStreamDecoder()
    out = [item for chunk in chunked(data, cuts) for item in dec.feed(chunk)]
    assert out == msgs


def test_client_encoding_is_flat_with_string_values():
    raw = P.encode_client(P.Control(0.25, 1.0, 0.0))
    obj = json.loads(raw)
    assert obj == {"msg_type": "control", "steering": "0.25", "throttle": "1.0", "brake": "0.0"}
    assert not raw.endswith(b"\n")
    with pytest.raises(ValueError, match="breaks the simulator"):
        P.encode_client(P.LoadScene("bad{name"))
    with pytest.raises(ValueError, match="non-finite"):
        P.encode_client(P.Control(float("nan"), 0.0, 0.0))
    with pytest.raises(ValueError, match="not a client"):
        P.encode_client(P.CarLoaded())


def test_decimal_commas_are_repaired():
    line = (b'{"msg_type":"telemetry","cte":-0,42,"speed":1,5E-2,"pos_x":3,"hit":"none",'
            b'"steering_angle":"0,25","time":12,5}\n')
    (msg,) = P.SimStreamDecoder().feed(line)
    assert isinstance(msg, P.Telemetry)
    assert msg.cte == pytest.approx(-0.42)
    assert msg.speed == pytest.approx(0.015)
    assert msg.pos_x == 3.0 and msg.time == pytest.approx(12.5)
    assert msg.steering_angle == pytest.approx(0.25)
    assert msg.extended


def test_unknown_fields_and_types_are_kept_not_errors():
    dec = P.SimStreamDecoder()
    items = dec.feed(b'{"msg_type":"ping"}\n{"msg_type":"telemetry","lidar":[{"d":1}],"image_b":"xx"}\n')
    assert items[0] == P.Unknown(type_name="ping")
    assert items[1].extra == {"lidar": [{"d": 1}]} and items[1].imageb == "xx"
    assert not items[1].extended  # no cte: not extended telemetry


@pytest.mark.parametrize("line, reason", [
    (b"garbage", "invalid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"cte": 1}', "msg_type"),
    (b'{"msg_type":"telemetry","cte":"abc"}', "telemetry: field 'cte' must be a number"),
    (b'{"msg_type":"telemetry","cte":NaN}', "must be finite"),
    (b'{"msg_type":"scene_names","scene_names":"x"}', "list of strings"),
    (b"\xff\xfe{", "invalid JSON"),
])
def test_malformed_lines_give_specific_errors_and_decoding_continues(line, reason):
    dec = P.SimStreamDecoder()
    items = dec.feed(line + b"\n" + P.encode_sim(P.CarLoaded()))
    assert isinstance(items[0], P.ProtocolError)
    assert reason in str(items[0])
    assert items[1] == P.CarLoaded()


def test_error_shows_shortened_offending_bytes():
    dec = P.SimStreamDecoder()
    (err,) = dec.feed(b"x" * 5000 + b"\n")
    assert isinstance(err, P.ProtocolError)
    assert len(err.data) <= P.SNIPPET and b"more" not in err.data and b"bytes)" in err.data


def test_huge_line_is_dropped_and_buffer_stays_bounded():
    dec = P.SimStreamDecoder(max_message=1000)
    errors = []
    for _ in range(50):
        errors += dec.feed(b"y" * 400)
        assert dec.buffered <= 1000
    items = dec.feed(b"tail\n" + P.encode_sim(P.CarLoaded()))
    assert sum(isinstance(e, P.ProtocolError) for e in errors) == 1
    assert items == [P.CarLoaded()]  # resynchronised at the newline, the tail was dropped


def test_client_stream_garbage_huge_and_unterminated():
    dec = P.ClientStreamDecoder(max_message=200)
    items = dec.feed(b'junk{"msg_type":"control","steering":"x"}{"msg_type":"reset_car"'
                     + b'{"msg_type":"exit_scene"}')
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["ProtocolError", "ProtocolError", "ProtocolError", "ExitScene"]
    assert "outside any JSON object" in str(items[0])
    assert "steering" in str(items[1]) and "unterminated" in str(items[2])
    items = dec.feed(b"{" + b"a" * 1000)
    assert len(items) == 1 and "longer than 200" in str(items[0])
    assert dec.buffered == 0
    assert dec.feed(b"aaaa}" + P.encode_client(P.ResetCar())) == [P.ResetCar()]


def test_client_decoder_accepts_bare_numbers_and_newlines():
    dec = P.ClientStreamDecoder()
    items = dec.feed(b'{"msg_type":"control","steering":0.5,"throttle":1,"brake":0}\n\n')
    assert items == [P.Control(0.5, 1.0, 0.0)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_decoders_never_raise_on_random_bytes(a, b):
    for dec in (P.SimStreamDecoder(max_message=128), P.ClientStreamDecoder(max_message=128)):
        for item in dec.feed(a) + dec.feed(b):
            assert isinstance(item, (P.Message, P.ProtocolError))
        assert dec.buffered <= 128 + 300


def test_image_round_trip():
    rng = np.random.default_rng(0)
    img = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    assert np.array_equal(P.decode_image(P.encode_image(img, "PNG")), img)
    jpg = P.decode_image(P.encode_image(img, "JPG"))
    assert jpg.shape == (12, 16, 3)
    grey = P.decode_image(P.encode_image(img[:, :, :1], "PNG"))
    assert grey.shape == (12, 16, 1)
    with pytest.raises(P.ProtocolError, match="undecodable image"):
        P.decode_image("bm90IGFuIGltYWdl")
