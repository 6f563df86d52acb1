//! ExportLogsServiceRequest -> rows of table `logs` (mirrors `logs_from_proto`).

use crate::arrow::{Col, Prim, StrCol};
use crate::common::{
    OUTPUT_BYTES_MAX,
    budget, check_enum, check_id, check_time, once, parse_any, walk, write_any, write_map, Any, Common, Outcome,
    Scratch, Tail, S,
};
use crate::json;
use crate::wire::{int32, uint32, utf8, Fallback, Reader, Val};

const SEVERITIES: usize = 25;

#[derive(Default)]
pub struct Logs {
    pub rows: usize,
    time: Prim<i64>,
    observed_time: Prim<i64>,
    severity_number: Prim<i32>,
    severity_text: StrCol,
    body: StrCol,
    body_type: StrCol,
    event_name: StrCol,
    trace_id: StrCol,
    span_id: StrCol,
    flags: Prim<u32>,
    dropped_attributes_count: Prim<u32>,
    tail: Tail,
}

impl Logs {
    /// Columns in the order of `SCHEMAS["logs"]`.
    pub fn into_cols(self) -> Vec<Col> {
        let mut rest = Vec::with_capacity(6);
        let (service_name, service_version) = self.tail.resource_scope(&mut rest);
        let mut cols = vec![
            Col::I64(self.time),
            Col::I64(self.observed_time),
            Col::Str(service_name),
            Col::Str(service_version),
            Col::I32(self.severity_number),
            Col::Str(self.severity_text),
            Col::Str(self.body),
            Col::Str(self.body_type),
            Col::Str(self.event_name),
            Col::Str(self.trace_id),
            Col::Str(self.span_id),
            Col::U32(self.flags),
            Col::U32(self.dropped_attributes_count),
        ];
        cols.extend(rest);
        cols
    }

    fn record<'a>(&mut self, c: &Common<'a>, raw: &'a [u8], out: &mut Outcome, sc: &mut Scratch<'a>) -> S<()> {
        if let Some((rows, bytes)) = sc.scope_hint.take() {
            self.tail.reserve(c, rows, bytes / 2);
            self.body.reserve(rows, bytes / 2);
        }
        let (mut time, mut observed, mut severity) = (0u64, 0u64, 0i32);
        let (mut sev_text, mut event_name, mut trace_id, mut span_id): (&[u8], &[u8], &[u8], &[u8]) =
            (b"", b"", b"", b"");
        let (mut dropped, mut flags) = (0u32, 0u32);
        let mut body = None;
        sc.attrs.clear();
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::I64(x)) => time = x,
                (11, Val::I64(x)) => observed = x,
                (2, Val::Varint(x)) => severity = int32(x)?,
                (3, Val::Len(b)) => sev_text = utf8(b)?,
                (5, Val::Len(b)) => once(&mut body, b)?,
                (6, Val::Len(b)) => sc.attrs.push(b),
                (7, Val::Varint(x)) => dropped = uint32(x)?,
                (8, Val::I32(x)) => flags = x,
                (9, Val::Len(b)) => trace_id = b,
                (10, Val::Len(b)) => span_id = b,
                (12, Val::Len(b)) => event_name = utf8(b)?,
                (1..=3 | 5..=12, _) => return Err(Fallback.into()),
                _ => {}
            }
        }
        let Scratch { attrs, kvs, sink, limit, .. } = sc;
        let limit = *limit;
        let body = match body {
            Some(b) => parse_any(b)?,
            None => Any::None,
        };
        let err = check_id(trace_id, 16, "trace_id", false)
            .or_else(|| check_id(span_id, 8, "span_id", false))
            .or_else(|| check_time(time, "time_unix_nano"))
            .or_else(|| check_time(observed, "observed_time_unix_nano"))
            .or_else(|| check_enum(severity, SEVERITIES, "severity_number"));
        if let Some(err) = err {
            out.reject(3, b"", b"", || err);
            sink.clear();
            write_any(sink, body, 6)?;
            write_map(sink, attrs, kvs, 5)?;
            return Ok(());
        }
        let kind: Option<&[u8]> = match body {
            Any::None => None,
            Any::Str(_) | Any::Bytes(_) => Some(b"string"),
            Any::Bool(_) => Some(b"bool"),
            Any::Int(_) => Some(b"int"),
            Any::Double(_) => Some(b"double"),
            Any::Array(_) => Some(b"array"),
            Any::Kvlist(_) => Some(b"kvlist"),
        };
        match body {
            Any::None => self.body.null(),
            Any::Str(s) => self.body.push(s),
            Any::Bytes(b) => {
                json::base64(&mut self.body.data, b);
                self.body.end();
            }
            other => {
                write_any(&mut self.body.data, other, 6)?;
                self.body.end();
            }
        }
        self.body_type.opt(kind);
        write_map(&mut self.tail.attributes.data, attrs, kvs, 5)?;
        self.tail.attributes.end();
        self.time.opt((time != 0).then_some(time as i64));
        self.observed_time.opt((observed != 0).then_some(observed as i64));
        self.severity_number.push(severity);
        self.severity_text.nonempty(sev_text);
        self.event_name.nonempty(event_name);
        self.trace_id.hex_or_null(trace_id);
        self.span_id.hex_or_null(span_id);
        self.flags.push(flags);
        self.dropped_attributes_count.push(dropped);
        self.tail.push(c);
        self.rows += 1;
        budget(self.tail.bytes() + self.body.data.len(), limit)
    }
}

pub fn decode(body: &[u8], limit: usize, out: &mut Outcome) -> S<Logs> {
    let mut logs = Logs::default();
    let mut scratch = Scratch { limit: limit.min(OUTPUT_BYTES_MAX), ..Scratch::default() };
    walk(body, &mut scratch, |c, raw, sc| logs.record(c, raw, out, sc))?;
    Ok(logs)
}
