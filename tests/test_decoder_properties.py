"""Property tests: the protobuf and OTLP/JSON decoders agree on arbitrary spans, and every
span is either stored (with sane derived columns) or rejected with a reason."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_json import proto_to_json_bytes

from collector.decode_json import decode_json
from collector.decode_proto import decode_proto

_text = st.text(max_size=30)
_scalar = st.one_of(
    _text.map(lambda s: AnyValue(string_value=s)),
    st.integers(-(2**63), 2**63 - 1).map(lambda i: AnyValue(int_value=i)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: AnyValue(double_value=f)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
)


def _array(values: list[AnyValue]) -> AnyValue:
    v = AnyValue()
    v.array_value.values.extend(values)
    return v


_value = st.one_of(_scalar, st.lists(_scalar, max_size=3).map(_array))
_attrs = st.dictionaries(_text, _value, max_size=4).map(lambda d: [KeyValue(key=k, value=v) for k, v in d.items()])
_time = st.integers(0, 2**64 - 1)


@st.composite
def _spans(draw: st.DrawFn) -> Span:
    start = draw(st.one_of(_time, st.integers(1, 2**62)))
    end = draw(st.one_of(_time, st.integers(start, min(start + 10**12, 2**64 - 1))))
    span = Span(
        trace_id=draw(st.one_of(st.binary(min_size=16, max_size=16), st.binary(max_size=20))),
        span_id=draw(st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10))),
        parent_span_id=draw(st.one_of(st.just(b""), st.binary(min_size=8, max_size=8), st.binary(max_size=9))),
        name=draw(_text),
        kind=draw(st.integers(0, 5)),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
    )
    span.attributes.extend(draw(_attrs))
    span.status.code = draw(st.integers(0, 2))
    return span


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_spans(), min_size=1, max_size=8), _attrs)
def test_protobuf_and_json_decoders_agree(spans: list[Span], resource_attrs: list[KeyValue]) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend(resource_attrs)
    rs.scope_spans.add().spans.extend(spans)
    from_proto = decode_proto("traces", req.SerializeToString())
    from_json = decode_json("traces", proto_to_json_bytes(req, enums_as_integers=False))
    assert from_proto.accepted + from_proto.rejected == len(spans)
    assert (from_json.accepted, from_json.rejected) == (from_proto.accepted, from_proto.rejected)
    assert len(from_proto.errors) == min(from_proto.rejected, 5)
    if from_proto.accepted:
        a, b = from_proto.tables["spans"], from_json.tables["spans"]
        assert a.equals(b)
        rows = a.drop_columns(["start_time", "end_time"]).to_pylist()
        for row in rows:
            assert row["duration_ns"] >= 0
            assert len(row["trace_id"]) == 32 and len(row["span_id"]) == 16
            assert row["span_kind"] in ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
    else:
        assert "spans" not in from_json.tables


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=12), st.integers(1, 3))
def test_invalid_utf8_costs_only_the_records_that_carry_it(poisoned: list[bool], scopes: int) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "svc"
    scope_spans = [rs.scope_spans.add() for _ in range(scopes)]
    for i, bad in enumerate(poisoned):
        span = scope_spans[i % scopes].spans.add(
            trace_id=b"\x01" * 16,
            span_id=(i + 1).to_bytes(8, "big"),
            name="POISON" if bad else f"ok-{i}",
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
        span.attributes.add(key="k").value.string_value = "v"
    body = req.SerializeToString().replace(b"POISON", b"POI\xffON")
    decoded = decode_proto("traces", body)
    assert (decoded.accepted, decoded.rejected) == (poisoned.count(False), poisoned.count(True))
    if decoded.accepted:
        names = sorted(decoded.tables["spans"].column("span_name").to_pylist())
        assert names == sorted(f"ok-{i}" for i, bad in enumerate(poisoned) if not bad)
