"""The compiled OTLP decoder against the Python reference: identical rows, rejections and
reasons on thousands of generated requests (traces, metrics, logs), malformed ones too;
random bytes never crash it; the output budget holds.

``compare`` is the contract: when the compiled decoder answers (it may decline and leave a
request to Python), its answer equals the reference's, record for record and reason for
reason. Well-formed requests of the shapes SDKs send must not be declined.

Over 450 lines: one generator of requests serves every comparison, so they stay in one module.
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from requires import missing

from collector import native
from collector.decode_proto import DECODER, MalformedRequest, decode_proto, decode_proto_python
from collector.native import NativeDecoder
from collector.salvage import _wrap, fields

SIGNALS = ("traces", "metrics", "logs")


@pytest.fixture(scope="module")
def compiled() -> NativeDecoder:
    if DECODER.decoder is None:
        missing(f"compiled OTLP decoder not loaded: {DECODER.notice}")
    return DECODER.decoder


def _canon(value: Any) -> Any:
    """Rows with floats as repr (NaN equals NaN, -0.0 differs from 0.0)."""
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in value.items()}
    return value


def _table(t: pa.Table) -> tuple[Any, Any]:
    """Schema and canonical rows (timestamps as their int64 nanoseconds)."""
    ints = t.cast(pa.schema([(f.name, pa.int64() if pa.types.is_timestamp(f.type) else f.type) for f in t.schema]))
    return t.schema, _canon(ints.to_pylist())


def reference(signal: str, body: bytes) -> Any:
    """The Python decoder's answer: a Decoded, or the exception it raised."""
    try:
        return decode_proto_python(signal, body)
    except MalformedRequest as exc:
        return exc
    except Exception as exc:  # the ingest step turns any decoder exception into a 400
        return exc


def compare(decoder: NativeDecoder, signal: str, body: bytes) -> bool:
    """Assert the compiled answer equals the reference; True when the compiled one answered."""
    got = decoder.decode(signal, body)
    if got is None:
        return False
    want = reference(signal, body)
    assert not isinstance(want, Exception), f"compiled decoder accepted what Python refuses: {want!r}"
    assert (got.accepted, got.rejected) == (want.accepted, want.rejected)
    assert got.errors == want.errors
    assert got.error_message() == want.error_message()
    assert list(got.tables) == list(want.tables)
    for name, table in want.tables.items():
        assert _table(got.tables[name]) == _table(table), name
    return True


# --------------------------------------------------------------------------- values

_KEYS = st.sampled_from(["a", "b", "k", "é", "x\n", 'q"', "db.name", ""])
_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "GET /api", "\x00\x1f\x7f", "ünï\u2028cødé", "\\", '"', "😀"]),
)
_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e15, 1e16, 1e-5, 1e-6, 5e-324, 1.7976931348623157e308, 0.1]),
)
_I64 = st.integers(-(2**63), 2**63 - 1)


def _any_scalar() -> st.SearchStrategy[AnyValue]:
    return st.one_of(
        _TEXT.map(lambda s: AnyValue(string_value=s)),
        _I64.map(lambda i: AnyValue(int_value=i)),
        _FLOAT.map(lambda f: AnyValue(double_value=f)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.binary(max_size=7).map(lambda b: AnyValue(bytes_value=b)),
        st.just(AnyValue()),
    )


def _nest(children: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    def array(values: list[AnyValue]) -> AnyValue:
        v = AnyValue()
        v.array_value.values.extend(values)
        return v

    def kvlist(pairs: list[tuple[str, AnyValue]]) -> AnyValue:
        v = AnyValue()
        v.kvlist_value.values.extend(KeyValue(key=k, value=x) for k, x in pairs)
        return v

    return st.one_of(
        st.lists(children, max_size=3).map(array),
        st.lists(st.tuples(_KEYS, children), max_size=3).map(kvlist),
    )


_ANY = st.recursive(_any_scalar(), _nest, max_leaves=6)


@st.composite
def _attrs(draw: st.DrawFn, hot: bool = False) -> list[KeyValue]:
    """KeyValues with repeated keys, absent values and (for spans) the hot HTTP keys."""
    out = []
    for key, value in draw(st.lists(st.tuples(_KEYS, _ANY), max_size=5)):
        kv = KeyValue(key=key)
        if draw(st.integers(0, 9)):
            kv.value.CopyFrom(value)
        out.append(kv)
    if hot:
        status_value = st.one_of(
            st.integers(-5, 1200).map(lambda i: AnyValue(int_value=i)),
            st.sampled_from(["200", "04", "2000", "", "abc", "99", "1e2"]).map(lambda s: AnyValue(string_value=s)),
            st.booleans().map(lambda b: AnyValue(bool_value=b)),
            st.just(AnyValue(double_value=200.0)),
            st.just(AnyValue(bytes_value=b"\x01")),
        )
        for key in ("http.route", "http.response.status_code", "http.status_code"):
            if draw(st.booleans()):
                value = draw(status_value if key != "http.route" else _ANY)
                out.insert(draw(st.integers(0, len(out))), KeyValue(key=key, value=value))
    return out


_SERVICE = st.one_of(
    _TEXT.map(lambda s: AnyValue(string_value=s)),
    st.integers(-5, 5).map(lambda i: AnyValue(int_value=i)),
    st.booleans().map(lambda b: AnyValue(bool_value=b)),
    st.binary(max_size=4).map(lambda b: AnyValue(bytes_value=b)),
    st.just(AnyValue()),
)
_TIME = st.one_of(
    st.integers(0, 2**64 - 1), st.integers(1, 2**62), st.sampled_from([0, 1, 2**63 - 1, 2**63, 2**64 - 1])
)
_ID16 = st.one_of(st.binary(min_size=16, max_size=16), st.just(b"\x00" * 16), st.binary(max_size=20))
_ID8 = st.one_of(st.binary(min_size=8, max_size=8), st.just(b"\x00" * 8), st.binary(max_size=10))


def _fill_resource(draw: st.DrawFn, rx: Any) -> None:
    if draw(st.booleans()):
        rx.resource.attributes.extend(draw(_attrs()))
        for key in ("service.name", "service.version"):
            if draw(st.booleans()):
                rx.resource.attributes.add(key=key).value.CopyFrom(draw(_SERVICE))
    rx.schema_url = draw(st.sampled_from(["", "https://opentelemetry.io/schemas/1.24.0"]))


def _fill_scope(draw: st.DrawFn, sx: Any) -> None:
    if draw(st.booleans()):
        sx.scope.name = draw(_TEXT)
        sx.scope.version = draw(st.sampled_from(["", "1.2.3"]))
        sx.scope.attributes.extend(draw(_attrs()))
    sx.schema_url = draw(st.sampled_from(["", "s"]))


# --------------------------------------------------------------------------- traces


@st.composite
def _span(draw: st.DrawFn) -> Span:
    start = draw(_TIME)
    end = draw(st.one_of(_TIME, st.integers(start, min(start + 10**9, 2**64 - 1))))
    span = Span(
        trace_id=draw(_ID16),
        span_id=draw(_ID8),
        parent_span_id=draw(st.one_of(st.just(b""), _ID8)),
        trace_state=draw(st.sampled_from(["", "rojo=00f067aa0ba902b7"])),
        name=draw(_TEXT),
        kind=draw(st.integers(-2, 7)),
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        flags=draw(st.integers(0, 2**32 - 1)),
        dropped_attributes_count=draw(st.integers(0, 2**32 - 1)),
        dropped_events_count=draw(st.integers(0, 3)),
        dropped_links_count=draw(st.integers(0, 3)),
    )
    span.attributes.extend(draw(_attrs(hot=True)))
    for _ in range(draw(st.integers(0, 2))):
        ev = span.events.add(time_unix_nano=draw(_TIME), name=draw(_TEXT))
        ev.attributes.extend(draw(_attrs()))
        ev.dropped_attributes_count = draw(st.integers(0, 5))
    for _ in range(draw(st.integers(0, 2))):
        link = span.links.add(trace_id=draw(_ID16), span_id=draw(_ID8), trace_state=draw(_TEXT))
        link.attributes.extend(draw(_attrs()))
        link.flags = draw(st.integers(0, 2**32 - 1))
    if draw(st.booleans()):
        span.status.code = draw(st.integers(-1, 4))
        span.status.message = draw(_TEXT)
    return span


@st.composite
def trace_requests(draw: st.DrawFn) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rs = req.resource_spans.add()
        _fill_resource(draw, rs)
        for _ in range(draw(st.integers(0, 2))):
            ss = rs.scope_spans.add()
            _fill_scope(draw, ss)
            ss.spans.extend(draw(st.lists(_span(), max_size=6)))
    return req


# --------------------------------------------------------------------------- metrics


def _point_head(draw: st.DrawFn, p: Any) -> None:
    p.time_unix_nano = draw(_TIME)
    p.start_time_unix_nano = draw(st.one_of(st.just(0), _TIME))
    p.attributes.extend(draw(_attrs()))
    p.flags = draw(st.integers(0, 2**32 - 1))


def _exemplars(draw: st.DrawFn, p: Any) -> None:
    for _ in range(draw(st.integers(0, 2))):
        ex = p.exemplars.add(time_unix_nano=draw(_TIME), trace_id=draw(_ID16), span_id=draw(_ID8))
        which = draw(st.integers(0, 2))
        if which == 1:
            ex.as_int = draw(_I64)
        elif which == 2:
            ex.as_double = draw(_FLOAT)
        ex.filtered_attributes.extend(draw(_attrs()))


@st.composite
def _metric(draw: st.DrawFn) -> Metric:
    m = Metric(name=draw(st.one_of(st.just(""), _TEXT, st.just("http.server.duration"))))
    m.description = draw(st.sampled_from(["", "latency"]))
    m.unit = draw(st.sampled_from(["", "ms"]))
    if draw(st.integers(0, 9)) == 0:
        m.metadata.extend(draw(_attrs()))
    kind = draw(st.sampled_from(["none", "gauge", "sum", "histogram", "exponential_histogram", "summary"]))
    if kind == "none":
        return m
    data = getattr(m, kind)
    data.SetInParent()
    if kind not in {"gauge", "summary"}:
        data.aggregation_temporality = draw(st.integers(-1, 3))
    if kind == "sum":
        data.is_monotonic = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        _fill_point(draw, kind, data.data_points.add())
    return m


def _fill_point(draw: st.DrawFn, kind: str, p: Any) -> None:
    """One data point of ``kind``: consistent or not, every optional field present or not."""
    _point_head(draw, p)
    if kind in ("gauge", "sum"):
        which = draw(st.integers(0, 2))
        if which == 1:
            p.as_int = draw(_I64)
        elif which == 2:
            p.as_double = draw(_FLOAT)
        _exemplars(draw, p)
    elif kind == "histogram":
        bounds = draw(st.lists(_FLOAT, max_size=4))
        if draw(st.booleans()):
            bounds = sorted({b for b in bounds if not math.isnan(b)})
        counts = draw(st.lists(st.integers(0, 2**64 - 1), max_size=5))
        if draw(st.booleans()):
            counts = draw(st.lists(st.integers(0, 1000), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
        p.explicit_bounds.extend(bounds)
        p.bucket_counts.extend(counts)
        p.count = sum(counts) % 2**64 if draw(st.booleans()) else draw(st.integers(0, 2**64 - 1))
        for f in ("sum", "min", "max"):
            if draw(st.booleans()):
                setattr(p, f, draw(_FLOAT))
        _exemplars(draw, p)
    elif kind == "exponential_histogram":
        p.scale = draw(st.integers(-12, 22))
        p.zero_count = draw(st.integers(0, 10))
        p.zero_threshold = draw(_FLOAT)
        pos = draw(st.lists(st.integers(0, 2**64 - 1), max_size=4))
        neg = draw(st.lists(st.integers(0, 100), max_size=3))
        p.positive.offset = draw(st.integers(-(2**31), 2**31 - 1))
        p.positive.bucket_counts.extend(pos)
        if neg or draw(st.booleans()):
            p.negative.offset = draw(st.integers(-5, 5))
            p.negative.bucket_counts.extend(neg)
        total = p.zero_count + sum(pos) + sum(neg)
        p.count = total if total < 2**64 and draw(st.booleans()) else draw(st.integers(0, 2**64 - 1))
        for f in ("sum", "min", "max"):
            if draw(st.booleans()):
                setattr(p, f, draw(_FLOAT))
        _exemplars(draw, p)
    else:
        p.count = draw(st.integers(0, 2**64 - 1))
        p.sum = draw(_FLOAT)
        for _ in range(draw(st.integers(0, 3))):
            p.quantile_values.add(quantile=draw(_FLOAT), value=draw(_FLOAT))


@st.composite
def metric_requests(draw: st.DrawFn) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rm = req.resource_metrics.add()
        _fill_resource(draw, rm)
        for _ in range(draw(st.integers(0, 2))):
            sm = rm.scope_metrics.add()
            _fill_scope(draw, sm)
            sm.metrics.extend(draw(st.lists(_metric(), max_size=4)))
    return req


# --------------------------------------------------------------------------- logs


@st.composite
def _log(draw: st.DrawFn) -> LogRecord:
    rec = LogRecord(
        time_unix_nano=draw(st.one_of(st.just(0), _TIME)),
        observed_time_unix_nano=draw(st.one_of(st.just(0), _TIME)),
        severity_number=draw(st.integers(-2, 27)),  # type: ignore[arg-type]
        severity_text=draw(st.sampled_from(["", "INFO", "WARN"])),
        trace_id=draw(st.one_of(st.just(b""), _ID16)),
        span_id=draw(st.one_of(st.just(b""), _ID8)),
        flags=draw(st.integers(0, 2**32 - 1)),
        dropped_attributes_count=draw(st.integers(0, 3)),
        event_name=draw(st.sampled_from(["", "login"])),
    )
    if draw(st.booleans()):
        rec.body.CopyFrom(draw(_ANY))
    rec.attributes.extend(draw(_attrs()))
    return rec


@st.composite
def log_requests(draw: st.DrawFn) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    for _ in range(draw(st.integers(1, 2))):
        rl = req.resource_logs.add()
        _fill_resource(draw, rl)
        for _ in range(draw(st.integers(0, 2))):
            sl = rl.scope_logs.add()
            _fill_scope(draw, sl)
            sl.log_records.extend(draw(st.lists(_log(), max_size=6)))
    return req


REQUESTS = {"traces": trace_requests(), "metrics": metric_requests(), "logs": log_requests()}


# --------------------------------------------------------------------------- tests

EXAMPLES = int(os.environ.get("DRIFTSCOPE_DIFF_EXAMPLES", "200"))
"""Generated requests per signal and test; raise it for a long differential run."""
_MANY = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DAMAGED = settings(max_examples=EXAMPLES * 2 // 3, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("signal", SIGNALS)
def test_well_formed_requests_decode_identically(compiled: NativeDecoder, signal: str) -> None:
    @_MANY
    @given(REQUESTS[signal])
    def check(req: Any) -> None:
        # Canonical protobuf encodings of everything above: none may be declined.
        assert compare(compiled, signal, req.SerializeToString()), "compiled decoder declined a well-formed request"

    check()


def _mutate(body: bytes, rng: random.Random) -> bytes:
    """A damaged copy: flipped bytes, a cut, a spliced-in invalid UTF-8 byte, or garbage."""
    data = bytearray(body)
    how = rng.randrange(5)
    if how == 0 and data:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif how == 1 and data:
        del data[rng.randrange(len(data)) :]
    elif how == 2 and data:
        data[rng.randrange(len(data))] = rng.choice([0xFF, 0xC0, 0xED, 0x80])
    elif how == 3:
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 6))
    else:
        data += rng.randbytes(rng.randint(1, 8))
    return bytes(data)


@pytest.mark.parametrize("signal", SIGNALS)
def test_malformed_requests_decode_identically_or_go_to_python(compiled: NativeDecoder, signal: str) -> None:
    answered = 0

    @_DAMAGED
    @given(REQUESTS[signal], st.randoms(use_true_random=False))
    def check(req: Any, rng: random.Random) -> None:
        nonlocal answered
        answered += compare(compiled, signal, _mutate(req.SerializeToString(), rng))

    check()
    # Many damaged bodies still parse (a flipped bit in a value): those must be answered.
    assert answered > 0


def test_invalid_utf8_goes_to_the_salvaging_python_path(compiled: NativeDecoder) -> None:
    req = ExportTraceServiceRequest()
    spans = req.resource_spans.add().scope_spans.add()
    for i, name in enumerate(["ok", "POISON", "fine"]):
        spans.spans.add(
            trace_id=b"\x01" * 16, span_id=bytes([i + 1]) * 8, name=name, start_time_unix_nano=5, end_time_unix_nano=6
        )
    body = req.SerializeToString().replace(b"POISON", b"POI\xffON")
    assert compiled.decode("traces", body) is None
    decoded = decode_proto("traces", body)
    assert (decoded.accepted, decoded.rejected) == (2, 1)
    assert decoded.errors == ["span does not parse (invalid UTF-8 in a string field or malformed bytes)"]


@pytest.mark.parametrize("signal", SIGNALS)
@_DAMAGED
@given(body=st.binary(max_size=300))
def test_random_bytes_never_crash_and_agree(compiled: NativeDecoder, signal: str, body: bytes) -> None:
    compare(compiled, signal, body)


def test_fuzz_many_mutations_without_crash(compiled: NativeDecoder) -> None:
    """20k damaged bodies through the compiled decoder alone (a crash would kill pytest)."""
    rng = random.Random(23)
    bodies: dict[str, list[bytes]] = {signal: [] for signal in SIGNALS}
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(20):
        span = ss.spans.add(trace_id=bytes([i + 1]) * 16, span_id=bytes([i + 1]) * 8, name=f"op{i}")
        span.start_time_unix_nano, span.end_time_unix_nano = 10, 20
        span.attributes.add(key="k").value.array_value.values.add().kvlist_value.values.add(key="n").value.int_value = i
        span.events.add(name="e").attributes.add(key="x").value.double_value = 0.5
    bodies["traces"].append(req.SerializeToString())
    mreq = ExportMetricsServiceRequest()
    ms = mreq.resource_metrics.add().scope_metrics.add()
    h = ms.metrics.add(name="h").histogram
    h.aggregation_temporality = 2
    hp = h.data_points.add(time_unix_nano=5, count=3)
    hp.explicit_bounds.extend([1.0, 2.0])
    hp.bucket_counts.extend([1, 1, 1])
    e = ms.metrics.add(name="e").exponential_histogram.data_points.add(time_unix_nano=5, count=1, zero_count=1)
    e.positive.bucket_counts.extend([0, 0])
    ms.metrics.add(name="s").summary.data_points.add(time_unix_nano=5).quantile_values.add(quantile=0.5, value=1)
    bodies["metrics"].append(mreq.SerializeToString())
    lreq = ExportLogsServiceRequest()
    lr = lreq.resource_logs.add().scope_logs.add().log_records.add(time_unix_nano=5, severity_number=9)
    lr.body.kvlist_value.values.add(key="msg").value.string_value = "hello"
    bodies["logs"].append(lreq.SerializeToString())
    handled = 0
    for i in range(20_000):
        signal = SIGNALS[i % 3]
        body = bodies[signal][0]
        for _ in range(rng.randint(1, 3)):
            body = _mutate(body, rng)
        got = compiled.decode(signal, body)
        handled += got is not None
        if i % 50 == 0:  # the full comparison on a sample (the reference is slower)
            compare(compiled, signal, body)
    assert handled > 1000


def test_output_budget_refuses_amplification(compiled: NativeDecoder) -> None:
    """A large resource over many small spans is refused, not multiplied without bound."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="blob").value.string_value = "x" * 100_000
    ss = rs.scope_spans.add()
    for i in range(200):
        ss.spans.add(
            trace_id=b"\x01" * 16, span_id=(i + 1).to_bytes(8, "big"), start_time_unix_nano=1, end_time_unix_nano=2
        )
    body = req.SerializeToString()
    assert len(body) < 200_000
    with pytest.raises(native.TooLarge, match="more than 1 MiB"):
        compiled.decode("traces", body, output_bytes_max=1 << 20)
    decoded = compiled.decode("traces", body, output_bytes_max=64 << 20)
    assert decoded is not None and decoded.accepted == 200


def test_declined_constructs_are_left_to_python(compiled: NativeDecoder) -> None:
    """A float service.name (Python's repr) and a repeated singular message are declined."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.double_value = 1e16
    rs.scope_spans.add().spans.add(
        trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=1, end_time_unix_nano=2
    )
    body = req.SerializeToString()
    assert compiled.decode("traces", body) is None
    decoded = decode_proto("traces", body)
    assert decoded.tables["spans"].column("service_name").to_pylist() == ["1e+16"]
    span = Span(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, start_time_unix_nano=1, end_time_unix_nano=2)
    span.status.code = 2
    # Two Span messages back to back are one Span whose status field occurs twice (merged).
    twice = span.SerializeToString() + Span(status={"message": "m"}).SerializeToString()
    body = _wrap(1, _wrap(2, _wrap(2, twice)))
    assert compiled.decode("traces", body) is None
    decoded = decode_proto("traces", body)
    assert decoded.tables["spans"].select(["status_code", "status_message"]).to_pylist() == [
        {"status_code": "ERROR", "status_message": "m"}
    ]


def test_sdk_shaped_requests_are_decoded_by_the_compiled_path(compiled: NativeDecoder) -> None:
    from benchmarks.ingest import build_dataset

    data = build_dataset(1500, 512)
    for body in data.protobuf:
        assert compare(compiled, "traces", body)


def _reencode(body: bytes, rng: random.Random, depth: int = 0) -> bytes:
    """The same message with another legal encoding: fields reordered (each field number's
    occurrences kept in order), unknown fields of every wire type inserted, in the request,
    its resource_X, scope_X and the records themselves."""
    items = list(fields(body))
    keys = {number: rng.random() for number, _, _ in items}
    items = [item for _, item in sorted(enumerate(items), key=lambda p: (keys[p[1][0]], p[0]))]
    out: list[bytes] = []
    for number, raw, payload in items:
        nested = (depth == 0 and number == 1) or (depth in (1, 2) and number == 2)
        out.append(_wrap(number, _reencode(payload, rng, depth + 1)) if nested else raw)
        if rng.random() < 0.3:
            unknown = 1000 + rng.randrange(50)
            out.append(
                rng.choice(
                    [
                        bytes([(unknown << 3 | 0) & 0x7F | 0x80, unknown >> 4]) + b"\x96\x01",
                        bytes([(unknown << 3 | 1) & 0x7F | 0x80, unknown >> 4]) + rng.randbytes(8),
                        _wrap(unknown, rng.randbytes(rng.randrange(5))),
                        bytes([(unknown << 3 | 5) & 0x7F | 0x80, unknown >> 4]) + rng.randbytes(4),
                    ]
                )
            )
    return b"".join(out)


@pytest.mark.parametrize("signal", SIGNALS)
def test_other_legal_encodings_decode_identically(compiled: NativeDecoder, signal: str) -> None:
    """Field order and unknown fields are the sender's business: same rows, never declined."""

    @_DAMAGED
    @given(REQUESTS[signal], st.randoms(use_true_random=False))
    def check(req: Any, rng: random.Random) -> None:
        body = _reencode(req.SerializeToString(), rng)
        assert compare(compiled, signal, body), "compiled decoder declined a legal re-encoding"

    check()


def test_without_the_library_the_python_decoder_is_chosen_with_a_notice(tmp_path: Path) -> None:
    absent = tmp_path / "_otlp_native.so"
    loaded = native.load("auto", absent)
    assert loaded.decoder is None
    assert "Python" in loaded.notice and "not built" in loaded.notice and "scripts/setup" in loaded.notice
    assert native.load("python").decoder is None
    with pytest.raises(OSError):
        native.load("native", absent)
    with pytest.raises(ValueError, match="DRIFTSCOPE_DECODER"):
        native.load("fast")
    absent.write_bytes(b"not a shared library")
    assert native.load("auto", absent).decoder is None
