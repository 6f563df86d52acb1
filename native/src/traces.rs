//! ExportTraceServiceRequest -> rows of table `spans` (mirrors `traces_from_proto`).

use crate::arrow::{Col, Prim, StrCol};
use crate::common::{
    OUTPUT_BYTES_MAX,
    budget, check_enum, check_id, check_time, lookup, once, parse_any, walk, write_map, Any, Common, Kv, Outcome,
    Scratch, Tail, S,
};
use crate::json;
use crate::wire::{int32, uint32, utf8, Fallback, Reader, Val, R};

const SPAN_KINDS: [&[u8]; 6] = [b"UNSPECIFIED", b"INTERNAL", b"SERVER", b"CLIENT", b"PRODUCER", b"CONSUMER"];
const STATUS_CODES: [&[u8]; 3] = [b"UNSET", b"OK", b"ERROR"];

#[derive(Default)]
pub struct Spans {
    pub rows: usize,
    trace_id: StrCol,
    span_id: StrCol,
    parent_span_id: StrCol,
    trace_state: StrCol,
    flags: Prim<u32>,
    span_name: StrCol,
    span_kind: StrCol,
    start_time: Prim<i64>,
    end_time: Prim<i64>,
    duration_ns: Prim<i64>,
    status_code: StrCol,
    status_message: StrCol,
    http_route: StrCol,
    http_status_code: Prim<i32>,
    events: StrCol,
    links: StrCol,
    dropped_attributes_count: Prim<u32>,
    dropped_events_count: Prim<u32>,
    dropped_links_count: Prim<u32>,
    tail: Tail,
}

impl Spans {
    /// Columns in the order of `SCHEMAS["spans"]`.
    pub fn into_cols(self) -> Vec<Col> {
        let mut rest = Vec::with_capacity(6);
        let (service_name, service_version) = self.tail.resource_scope(&mut rest);
        let mut cols = vec![
            Col::Str(self.trace_id),
            Col::Str(self.span_id),
            Col::Str(self.parent_span_id),
            Col::Str(self.trace_state),
            Col::U32(self.flags),
            Col::Str(service_name),
            Col::Str(service_version),
            Col::Str(self.span_name),
            Col::Str(self.span_kind),
            Col::I64(self.start_time),
            Col::I64(self.end_time),
            Col::I64(self.duration_ns),
            Col::Str(self.status_code),
            Col::Str(self.status_message),
            Col::Str(self.http_route),
            Col::I32(self.http_status_code),
            Col::Str(self.events),
            Col::Str(self.links),
            Col::U32(self.dropped_attributes_count),
            Col::U32(self.dropped_events_count),
            Col::U32(self.dropped_links_count),
        ];
        cols.extend(rest);
        cols
    }

    /// Room for the `rows` spans of a scope (`bytes` of protobuf) before decoding them.
    fn reserve(&mut self, c: &Common<'_>, rows: usize, bytes: usize) {
        // Attribute JSON is about as long as the span's protobuf; ids double in hex.
        self.tail.reserve(c, rows, bytes + bytes / 4);
        self.trace_id.reserve(rows, 32 * rows);
        self.span_id.reserve(rows, 16 * rows);
        self.parent_span_id.reserve(rows, 16 * rows);
        self.trace_state.reserve(rows, 0);
        self.span_name.reserve(rows, 16 * rows);
        self.span_kind.reserve(rows, 8 * rows);
        self.status_code.reserve(rows, 5 * rows);
        self.status_message.reserve(rows, 0);
        self.http_route.reserve(rows, 16 * rows);
        self.events.reserve(rows, bytes / 8);
        self.links.reserve(rows, 0);
        for col in [&mut self.flags, &mut self.dropped_attributes_count, &mut self.dropped_events_count] {
            col.reserve(rows);
        }
        self.dropped_links_count.reserve(rows);
        for col in [&mut self.start_time, &mut self.end_time, &mut self.duration_ns] {
            col.reserve(rows);
        }
        self.http_status_code.reserve(rows);
    }

    fn bytes(&self) -> usize {
        self.tail.bytes() + self.events.data.len() + self.links.data.len() + self.span_name.data.len()
    }
}

#[derive(Default)]
struct SpanRaw<'a> {
    trace_id: &'a [u8],
    span_id: &'a [u8],
    trace_state: &'a [u8],
    parent_span_id: &'a [u8],
    name: &'a [u8],
    kind: i32,
    start: u64,
    end: u64,
    dropped_attributes: u32,
    dropped_events: u32,
    dropped_links: u32,
    status: Option<&'a [u8]>,
    flags: u32,
}

fn error(s: &SpanRaw<'_>, code: i32) -> Option<String> {
    check_id(s.trace_id, 16, "trace_id", true)
        .or_else(|| check_id(s.span_id, 8, "span_id", true))
        .or_else(|| check_id(s.parent_span_id, 8, "parent_span_id", false))
        .or_else(|| check_time(s.start, "start_time_unix_nano"))
        .or_else(|| check_time(s.end, "end_time_unix_nano"))
        .or_else(|| (s.end < s.start).then(|| "end_time_unix_nano is before start_time_unix_nano".to_string()))
        .or_else(|| (s.start == 0).then(|| "start_time_unix_nano is 0 (unset)".to_string()))
        .or_else(|| check_enum(s.kind, SPAN_KINDS.len(), "kind"))
        .or_else(|| check_enum(code, STATUS_CODES.len(), "status.code"))
}

/// `[{"time_unix_nano":..,"name":..,"attributes":{..},"dropped_attributes_count":..}, ...]`
fn write_events<'a>(out: &mut Vec<u8>, events: &[&'a [u8]], attrs: &mut Vec<&'a [u8]>, kvs: &mut Vec<Kv<'a>>) -> R<()> {
    out.push(b'[');
    for (i, ev) in events.iter().enumerate() {
        let (mut time, mut name, mut dropped): (u64, &[u8], u32) = (0, b"", 0);
        attrs.clear();
        let mut r = Reader::new(ev);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::I64(x)) => time = x,
                (2, Val::Len(b)) => name = utf8(b)?,
                (3, Val::Len(b)) => attrs.push(b),
                (4, Val::Varint(x)) => dropped = uint32(x)?,
                (1..=4, _) => return Err(Fallback),
                _ => {}
            }
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"time_unix_nano\":");
        json::uint(out, time);
        out.extend_from_slice(b",\"name\":");
        json::string(out, name);
        out.extend_from_slice(b",\"attributes\":");
        write_map(out, attrs, kvs, 6)?;
        out.extend_from_slice(b",\"dropped_attributes_count\":");
        json::uint(out, u64::from(dropped));
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// `[{"trace_id":..,"span_id":..,"trace_state":..,"attributes":{..},"dropped_attributes_count":..,"flags":..}]`
fn write_links<'a>(out: &mut Vec<u8>, links: &[&'a [u8]], attrs: &mut Vec<&'a [u8]>, kvs: &mut Vec<Kv<'a>>) -> R<()> {
    out.push(b'[');
    for (i, lk) in links.iter().enumerate() {
        let (mut trace_id, mut span_id, mut state): (&[u8], &[u8], &[u8]) = (b"", b"", b"");
        let (mut dropped, mut flags) = (0u32, 0u32);
        attrs.clear();
        let mut r = Reader::new(lk);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Len(b)) => trace_id = b,
                (2, Val::Len(b)) => span_id = b,
                (3, Val::Len(b)) => state = utf8(b)?,
                (4, Val::Len(b)) => attrs.push(b),
                (5, Val::Varint(x)) => dropped = uint32(x)?,
                (6, Val::I32(x)) => flags = x,
                (1..=6, _) => return Err(Fallback),
                _ => {}
            }
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"trace_id\":\"");
        json::hex(out, trace_id);
        out.extend_from_slice(b"\",\"span_id\":\"");
        json::hex(out, span_id);
        out.extend_from_slice(b"\",\"trace_state\":");
        json::string(out, state);
        out.extend_from_slice(b",\"attributes\":");
        write_map(out, attrs, kvs, 6)?;
        out.extend_from_slice(b",\"dropped_attributes_count\":");
        json::uint(out, u64::from(dropped));
        out.extend_from_slice(b",\"flags\":");
        json::uint(out, u64::from(flags));
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// `hot_http`: (http.route, HTTP status code) from the parsed span attributes.
fn hot_http(kvs: &[Kv<'_>]) -> R<(Option<Vec<u8>>, Option<i32>)> {
    let route = match lookup(kvs, b"http.route") {
        Some(Some(raw)) => match parse_any(raw)? {
            Any::Str(s) => Some(s.to_vec()),
            Any::Bytes(b) => {
                let mut v = Vec::new();
                json::base64(&mut v, b);
                Some(v)
            }
            _ => None,
        },
        _ => None,
    };
    for key in [&b"http.response.status_code"[..], b"http.status_code"] {
        let Some(Some(raw)) = lookup(kvs, key) else { continue };
        match parse_any(raw)? {
            Any::Int(i) if (0..1000).contains(&i) => return Ok((route, Some(i as i32))),
            Any::Str(s) if s.is_ascii() && (1..=3).contains(&s.len()) && s.iter().all(u8::is_ascii_digit) => {
                let n = s.iter().fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
                return Ok((route, Some(n)));
            }
            Any::Str(s) if s.is_ascii() => {}
            // str.isdigit() is true for other Unicode digits too: the reference decides.
            Any::Str(s) => {
                let chars = std::str::from_utf8(s).map_err(|_| Fallback)?.chars().count();
                if chars <= 3 {
                    return Err(Fallback);
                }
            }
            _ => {}
        }
    }
    Ok((route, None))
}

impl Spans {
    fn span<'a>(&mut self, c: &Common<'a>, raw: &'a [u8], out: &mut Outcome, sc: &mut Scratch<'a>) -> S<()> {
        if let Some((rows, bytes)) = sc.scope_hint.take() {
            self.reserve(c, rows, bytes);
        }
        let mut s = SpanRaw::default();
        sc.attrs.clear();
        sc.items.clear();
        let mut links: Vec<&'a [u8]> = Vec::new();
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Len(b)) => s.trace_id = b,
                (2, Val::Len(b)) => s.span_id = b,
                (3, Val::Len(b)) => s.trace_state = utf8(b)?,
                (4, Val::Len(b)) => s.parent_span_id = b,
                (5, Val::Len(b)) => s.name = utf8(b)?,
                (6, Val::Varint(x)) => s.kind = int32(x)?,
                (7, Val::I64(x)) => s.start = x,
                (8, Val::I64(x)) => s.end = x,
                (9, Val::Len(b)) => sc.attrs.push(b),
                (10, Val::Varint(x)) => s.dropped_attributes = uint32(x)?,
                (11, Val::Len(b)) => sc.items.push(b),
                (12, Val::Varint(x)) => s.dropped_events = uint32(x)?,
                (13, Val::Len(b)) => links.push(b),
                (14, Val::Varint(x)) => s.dropped_links = uint32(x)?,
                (15, Val::Len(b)) => once(&mut s.status, b)?,
                (16, Val::I32(x)) => s.flags = x,
                (1..=16, _) => return Err(Fallback.into()),
                _ => {}
            }
        }
        let (mut message, mut code): (&[u8], i32) = (b"", 0);
        if let Some(st) = s.status {
            let mut r = Reader::new(st);
            while let Some((f, v)) = r.field()? {
                match (f, v) {
                    (2, Val::Len(b)) => message = utf8(b)?,
                    (3, Val::Varint(x)) => code = int32(x)?,
                    (2..=3, _) => return Err(Fallback.into()),
                    _ => {}
                }
            }
        }
        let Scratch { attrs, kvs, sub_attrs, sub_kvs, items, sink, limit, .. } = sc;
        let limit = *limit;
        if let Some(err) = error(&s, code) {
            let mut id = Vec::new();
            json::hex(&mut id, s.span_id);
            if id.is_empty() {
                id.push(b'?');
            }
            out.reject(0, &id, s.name, || err);
            // Not stored, but upb validated all of it: so do we.
            sink.clear();
            write_map(sink, attrs, kvs, 5)?;
            write_events(sink, items, sub_attrs, sub_kvs)?;
            write_links(sink, &links, sub_attrs, sub_kvs)?;
            return Ok(());
        }
        write_map(&mut self.tail.attributes.data, attrs, kvs, 5)?;
        self.tail.attributes.end();
        let (route, status) = hot_http(kvs)?;
        if items.is_empty() {
            self.events.null();
        } else {
            write_events(&mut self.events.data, items, sub_attrs, sub_kvs)?;
            self.events.end();
        }
        if links.is_empty() {
            self.links.null();
        } else {
            write_links(&mut self.links.data, &links, sub_attrs, sub_kvs)?;
            self.links.end();
        }
        json::hex(&mut self.trace_id.data, s.trace_id);
        self.trace_id.end();
        json::hex(&mut self.span_id.data, s.span_id);
        self.span_id.end();
        self.parent_span_id.hex_or_null(s.parent_span_id);
        self.trace_state.nonempty(s.trace_state);
        self.flags.push(s.flags);
        self.span_name.push(s.name);
        self.span_kind.push(SPAN_KINDS[s.kind as usize]);
        self.start_time.push(s.start as i64);
        self.end_time.push(s.end as i64);
        self.duration_ns.push((s.end - s.start) as i64);
        self.status_code.push(STATUS_CODES[code as usize]);
        self.status_message.nonempty(message);
        self.http_route.opt(route.as_deref());
        self.http_status_code.opt(status);
        self.dropped_attributes_count.push(s.dropped_attributes);
        self.dropped_events_count.push(s.dropped_events);
        self.dropped_links_count.push(s.dropped_links);
        self.tail.push(c);
        self.rows += 1;
        budget(self.bytes(), limit)
    }
}

pub fn decode(body: &[u8], limit: usize, out: &mut Outcome) -> S<Spans> {
    let mut spans = Spans::default();
    let mut scratch = Scratch { limit: limit.min(OUTPUT_BYTES_MAX), ..Scratch::default() };
    walk(body, &mut scratch, |c, raw, sc| spans.span(c, raw, out, sc))?;
    Ok(spans)
}
