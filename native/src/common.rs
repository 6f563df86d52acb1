//! What the three OTLP signals share: attribute maps to JSON, AnyValues, the resource and
//! scope columns, the walk over `resource_X { scope_X { record } }`, and rejections.

use std::collections::HashMap;

use crate::arrow::{Col, StrCol};
use crate::json;
use crate::wire::{boolean, int32, uint32, utf8, Fallback, Reader, Val, R};

/// Deepest AnyValue nesting decoded here (upb's limit is 100 message levels; deeper
/// requests go to the reference decoder, which answers exactly as it does today).
const MAX_DEPTH: u32 = 64;

/// Reasons kept per request (`Decoded.MAX_ERRORS` on the Python side).
pub const MAX_ERRORS: usize = 5;

/// One refused record: the Python side formats the message (it needs `repr()`).
pub struct Rejection {
    /// 0 span, 1 metric point, 2 metric without name or data, 3 log record.
    pub kind: u8,
    /// Span id in hex ("?" when empty); empty for other kinds.
    pub id: Vec<u8>,
    /// Span or metric name (UTF-8).
    pub name: Vec<u8>,
    pub error: String,
}

#[derive(Default)]
pub struct Outcome {
    pub rejected: u64,
    pub errors: Vec<Rejection>,
}

impl Outcome {
    pub fn reject(&mut self, kind: u8, id: &[u8], name: &[u8], error: impl FnOnce() -> String) {
        self.rejected += 1;
        if self.errors.len() < MAX_ERRORS {
            self.errors.push(Rejection { kind, id: id.to_vec(), name: name.to_vec(), error: error() });
        }
    }
}

/// Largest decoded output of one request the caller may allow, in bytes (offsets are i32).
/// Every record repeats its resource and scope columns, so a large resource times many
/// small records would otherwise grow without bound.
pub const OUTPUT_BYTES_MAX: usize = 1 << 30;

#[derive(Debug)]
pub enum Stop {
    Fallback,
    TooLarge,
}

impl From<Fallback> for Stop {
    fn from(_: Fallback) -> Self {
        Stop::Fallback
    }
}

pub type S<T> = Result<T, Stop>;

#[derive(Clone, Copy)]
pub struct Kv<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

fn parse_kv(raw: &[u8]) -> R<Kv<'_>> {
    let mut r = Reader::new(raw);
    let mut kv = Kv { key: b"", value: None };
    while let Some((f, v)) = r.field()? {
        match (f, v) {
            (1, Val::Len(b)) => kv.key = utf8(b)?,
            (2, Val::Len(b)) => {
                // A repeated singular message field merges in protobuf: not ours.
                if kv.value.is_some() {
                    return Err(Fallback);
                }
                kv.value = Some(b);
            }
            (3, Val::Varint(x)) => {
                int32(x)?;
            }
            (1..=3, _) => return Err(Fallback),
            _ => {}
        }
    }
    Ok(kv)
}

/// A parsed AnyValue (one member of the oneof, or none).
#[derive(Clone, Copy)]
pub enum Any<'a> {
    None,
    Str(&'a [u8]),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(&'a [u8]),
    Kvlist(&'a [u8]),
    Bytes(&'a [u8]),
}

pub fn parse_any(raw: &[u8]) -> R<Any<'_>> {
    let mut r = Reader::new(raw);
    let mut out = Any::None;
    let mut seen = false;
    while let Some((f, v)) = r.field()? {
        let val = match (f, v) {
            (1, Val::Len(b)) => Any::Str(utf8(b)?),
            (2, Val::Varint(x)) => Any::Bool(boolean(x)?),
            (3, Val::Varint(x)) => Any::Int(x as i64),
            (4, Val::I64(x)) => Any::Double(f64::from_bits(x)),
            (5, Val::Len(b)) => Any::Array(b),
            (6, Val::Len(b)) => Any::Kvlist(b),
            (7, Val::Len(b)) => Any::Bytes(b),
            (8, Val::Varint(x)) => {
                int32(x)?;
                Any::None
            }
            (1..=8, _) => return Err(Fallback),
            _ => continue,
        };
        // Several oneof members on the wire: last-wins and merge rules are upb's business.
        if seen {
            return Err(Fallback);
        }
        seen = true;
        out = val;
    }
    Ok(out)
}

/// JSON of an optional AnyValue at message depth `depth`.
fn write_value(out: &mut Vec<u8>, value: Option<&[u8]>, depth: u32) -> R<()> {
    match value {
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
        Some(raw) => write_any(out, parse_any(raw)?, depth),
    }
}

pub fn write_any(out: &mut Vec<u8>, v: Any<'_>, depth: u32) -> R<()> {
    if depth > MAX_DEPTH {
        return Err(Fallback);
    }
    match v {
        Any::None => out.extend_from_slice(b"null"),
        Any::Str(s) => json::string(out, s),
        Any::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        Any::Int(i) => json::int(out, i),
        Any::Double(x) => json::float(out, x),
        Any::Bytes(b) => {
            out.push(b'"');
            json::base64(out, b);
            out.push(b'"');
        }
        Any::Array(raw) => {
            out.push(b'[');
            let mut r = Reader::new(raw);
            let mut first = true;
            while let Some((f, v)) = r.field()? {
                match (f, v) {
                    (1, Val::Len(b)) => {
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        write_any(out, parse_any(b)?, depth + 2)?;
                    }
                    (1, _) => return Err(Fallback),
                    _ => {}
                }
            }
            out.push(b']');
        }
        Any::Kvlist(raw) => {
            let mut raws = Vec::new();
            collect_len(raw, 1, &mut raws)?;
            let mut kvs = Vec::with_capacity(raws.len());
            write_map(out, &raws, &mut kvs, depth + 2)?;
        }
    }
    Ok(())
}

/// Payloads of every occurrence of length-delimited field `field` in `raw`.
fn collect_len<'a>(raw: &'a [u8], field: u32, out: &mut Vec<&'a [u8]>) -> R<()> {
    let mut r = Reader::new(raw);
    while let Some((f, v)) = r.field()? {
        match (f, v) {
            (n, Val::Len(b)) if n == field => out.push(b),
            (n, _) if n == field => return Err(Fallback),
            _ => {}
        }
    }
    Ok(())
}

fn has_duplicates(kvs: &[Kv<'_>]) -> bool {
    let n = kvs.len();
    if n < 2 {
        return false;
    }
    if n <= 16 {
        // Length and last byte first: distinct keys of a span rarely share both.
        let sig = |k: &[u8]| (k.len(), k.last().copied());
        for i in 1..n {
            let (ki, si) = (kvs[i].key, sig(kvs[i].key));
            for kv in &kvs[..i] {
                if sig(kv.key) == si && kv.key == ki {
                    return true;
                }
            }
        }
        return false;
    }
    let mut seen = std::collections::HashSet::with_capacity(n);
    kvs.iter().any(|kv| !seen.insert(kv.key))
}

/// JSON object of repeated KeyValue `raws` (KeyValue messages at depth `depth`), as Python's
/// `{kv.key: value for kv in kvs}` builds it: a repeated key keeps its first position and
/// its last value. `kvs` is left holding the parsed pairs for lookups.
pub fn write_map<'a>(out: &mut Vec<u8>, raws: &[&'a [u8]], kvs: &mut Vec<Kv<'a>>, depth: u32) -> R<()> {
    kvs.clear();
    for raw in raws {
        kvs.push(parse_kv(raw)?);
    }
    out.push(b'{');
    if !has_duplicates(kvs) {
        for (i, kv) in kvs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(out, kv.key);
            out.push(b':');
            write_value(out, kv.value, depth + 1)?;
        }
    } else {
        let mut span: HashMap<&[u8], (usize, usize)> = HashMap::with_capacity(kvs.len());
        for (i, kv) in kvs.iter().enumerate() {
            span.entry(kv.key).and_modify(|e| e.1 = i).or_insert((i, i));
        }
        let mut sink = Vec::new();
        let mut first_out = true;
        for (i, kv) in kvs.iter().enumerate() {
            let (first, last) = span[kv.key];
            if first == i {
                if !first_out {
                    out.push(b',');
                }
                first_out = false;
                json::string(out, kv.key);
                out.push(b':');
                write_value(out, kvs[last].value, depth + 1)?;
            }
            if last != i {
                // Overwritten in the dict, but upb still validated it.
                sink.clear();
                write_value(&mut sink, kv.value, depth + 1)?;
            }
        }
    }
    out.push(b'}');
    Ok(())
}

/// The value of the last pair with `key` (Python's `dict.get` after duplicates).
pub fn lookup<'a>(kvs: &[Kv<'a>], key: &[u8]) -> Option<Option<&'a [u8]>> {
    kvs.iter().rev().find(|kv| kv.key == key).map(|kv| kv.value)
}

/// `str(value)` of a resource attribute (service.name / service.version), None when absent.
fn service_text(kvs: &[Kv<'_>], key: &[u8]) -> R<Option<Vec<u8>>> {
    let Some(Some(raw)) = lookup(kvs, key) else { return Ok(None) };
    Ok(match parse_any(raw)? {
        Any::None => None,
        Any::Str(s) => Some(s.to_vec()),
        Any::Int(i) => {
            let mut v = Vec::new();
            json::int(&mut v, i);
            Some(v)
        }
        Any::Bool(b) => Some(if b { b"True".to_vec() } else { b"False".to_vec() }),
        Any::Bytes(b) => {
            let mut v = Vec::new();
            json::base64(&mut v, b);
            Some(v)
        }
        // Python's repr of floats, lists and dicts: left to the reference decoder.
        Any::Double(_) | Any::Array(_) | Any::Kvlist(_) => return Err(Fallback),
    })
}

/// Columns shared by every record under one resource and scope.
#[derive(Default)]
pub struct Common<'a> {
    pub service_name: Option<Vec<u8>>,
    pub service_version: Option<Vec<u8>>,
    pub resource_attributes: Vec<u8>,
    pub schema_url: &'a [u8],
    pub scope_name: &'a [u8],
    pub scope_version: &'a [u8],
    pub scope_attributes: Option<Vec<u8>>,
}

fn check_entity_ref(raw: &[u8]) -> R<()> {
    let mut r = Reader::new(raw);
    while let Some((f, v)) = r.field()? {
        match (f, v) {
            (1..=4, Val::Len(b)) => {
                utf8(b)?;
            }
            (1..=4, _) => return Err(Fallback),
            _ => {}
        }
    }
    Ok(())
}

fn resource<'a>(raw: Option<&'a [u8]>, c: &mut Common<'a>, scratch: &mut Scratch<'a>) -> R<()> {
    scratch.attrs.clear();
    if let Some(raw) = raw {
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Len(b)) => scratch.attrs.push(b),
                (2, Val::Varint(x)) => {
                    uint32(x)?;
                }
                (3, Val::Len(b)) => check_entity_ref(b)?,
                (1..=3, _) => return Err(Fallback),
                _ => {}
            }
        }
    }
    c.resource_attributes.clear();
    write_map(&mut c.resource_attributes, &scratch.attrs, &mut scratch.kvs, 3)?;
    c.service_name = service_text(&scratch.kvs, b"service.name")?;
    c.service_version = service_text(&scratch.kvs, b"service.version")?;
    Ok(())
}

fn scope<'a>(raw: Option<&'a [u8]>, c: &mut Common<'a>, scratch: &mut Scratch<'a>) -> R<()> {
    c.scope_name = b"";
    c.scope_version = b"";
    scratch.attrs.clear();
    if let Some(raw) = raw {
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Len(b)) => c.scope_name = utf8(b)?,
                (2, Val::Len(b)) => c.scope_version = utf8(b)?,
                (3, Val::Len(b)) => scratch.attrs.push(b),
                (4, Val::Varint(x)) => {
                    uint32(x)?;
                }
                (1..=4, _) => return Err(Fallback),
                _ => {}
            }
        }
    }
    c.scope_attributes = if scratch.attrs.is_empty() {
        None
    } else {
        let mut v = Vec::new();
        write_map(&mut v, &scratch.attrs, &mut scratch.kvs, 4)?;
        Some(v)
    };
    Ok(())
}

/// Reusable buffers of one request (no allocation per record once warm).
#[derive(Default)]
pub struct Scratch<'a> {
    /// Output budget in bytes (at most OUTPUT_BYTES_MAX).
    pub limit: usize,
    /// Set by `walk` before the first record of a scope: (records, their bytes) in it.
    pub scope_hint: Option<(usize, usize)>,
    pub attrs: Vec<&'a [u8]>,
    pub kvs: Vec<Kv<'a>>,
    pub sub_attrs: Vec<&'a [u8]>,
    pub sub_kvs: Vec<Kv<'a>>,
    pub items: Vec<&'a [u8]>,
    pub sink: Vec<u8>,
    pub u64s: Vec<u64>,
    pub u64s_b: Vec<u64>,
    pub f64s: Vec<f64>,
    pub f64s_b: Vec<f64>,
}

/// The only (singular) occurrence of a message field; a second one would merge: not ours.
#[inline]
pub fn once<'a>(slot: &mut Option<&'a [u8]>, b: &'a [u8]) -> R<()> {
    if slot.is_some() {
        return Err(Fallback);
    }
    *slot = Some(b);
    Ok(())
}

/// Walk `request { 1: resource_X { 1: resource, 2: scope_X { 1: scope, 2: record, 3: url },
/// 3: url } }` and call `record` for each record with its resource and scope columns.
pub fn walk<'a>(
    body: &'a [u8],
    scratch: &mut Scratch<'a>,
    mut record: impl FnMut(&Common<'a>, &'a [u8], &mut Scratch<'a>) -> S<()>,
) -> S<()> {
    let mut common = Common::default();
    let mut top = Reader::new(body);
    while let Some((f, v)) = top.field()? {
        let rx = match (f, v) {
            (1, Val::Len(b)) => b,
            (1, _) => return Err(Stop::Fallback),
            _ => continue,
        };
        // First pass: the resource and url, wherever they sit among the scopes.
        let mut res = None;
        let mut url: &[u8] = b"";
        let mut r = Reader::new(rx);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Len(b)) => once(&mut res, b)?,
                (2, Val::Len(_)) => {}
                (3, Val::Len(b)) => url = utf8(b)?,
                (1..=3, _) => return Err(Stop::Fallback),
                _ => {}
            }
        }
        resource(res, &mut common, scratch)?;
        common.schema_url = url;
        let mut r = Reader::new(rx);
        while let Some((f, v)) = r.field()? {
            let Val::Len(sx) = v else { continue };
            if f != 2 {
                continue;
            }
            let mut sc = None;
            let (mut records, mut record_bytes) = (0, 0);
            let mut sr = Reader::new(sx);
            while let Some((f, v)) = sr.field()? {
                match (f, v) {
                    (1, Val::Len(b)) => once(&mut sc, b)?,
                    (2, Val::Len(b)) => {
                        records += 1;
                        record_bytes += b.len();
                    }
                    (3, Val::Len(b)) => {
                        utf8(b)?;
                    }
                    (1..=3, _) => return Err(Stop::Fallback),
                    _ => {}
                }
            }
            scope(sc, &mut common, scratch)?;
            scratch.scope_hint = Some((records, record_bytes));
            let mut sr = Reader::new(sx);
            while let Some((f, v)) = sr.field()? {
                if let (2, Val::Len(rec)) = (f, v) {
                    record(&common, rec, scratch)?;
                }
            }
        }
    }
    Ok(())
}

/// The eight service / resource / scope / attribute columns every raw table has.
#[derive(Default)]
pub struct Tail {
    pub service_name: StrCol,
    pub service_version: StrCol,
    pub attributes: StrCol,
    pub resource_attributes: StrCol,
    pub resource_schema_url: StrCol,
    pub scope_name: StrCol,
    pub scope_version: StrCol,
    pub scope_attributes: StrCol,
}

impl Tail {
    /// Room for `rows` more rows under `c` whose own attributes take about `attr_bytes`.
    pub fn reserve(&mut self, c: &Common<'_>, rows: usize, attr_bytes: usize) {
        let len = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        self.service_name.reserve(rows, rows * len(&c.service_name));
        self.service_version.reserve(rows, rows * len(&c.service_version));
        self.attributes.reserve(rows, attr_bytes);
        self.resource_attributes.reserve(rows, rows * c.resource_attributes.len());
        self.resource_schema_url.reserve(rows, rows * c.schema_url.len());
        self.scope_name.reserve(rows, rows * c.scope_name.len());
        self.scope_version.reserve(rows, rows * c.scope_version.len());
        self.scope_attributes.reserve(rows, rows * len(&c.scope_attributes));
    }

    /// Push the per-resource/scope columns of one row (attributes are written separately).
    pub fn push(&mut self, c: &Common<'_>) {
        self.service_name.opt(c.service_name.as_deref());
        self.service_version.opt(c.service_version.as_deref());
        self.resource_attributes.push(&c.resource_attributes);
        self.resource_schema_url.nonempty(c.schema_url);
        self.scope_name.nonempty(c.scope_name);
        self.scope_version.nonempty(c.scope_version);
        self.scope_attributes.opt(c.scope_attributes.as_deref());
    }

    pub fn bytes(&self) -> usize {
        self.service_name.data.len()
            + self.service_version.data.len()
            + self.attributes.data.len()
            + self.resource_attributes.data.len()
            + self.resource_schema_url.data.len()
            + self.scope_name.data.len()
            + self.scope_version.data.len()
            + self.scope_attributes.data.len()
    }

    /// `_RESOURCE_SCOPE` columns in schema order (service columns are placed by each table).
    pub fn resource_scope(self, cols: &mut Vec<Col>) -> (StrCol, StrCol) {
        cols.push(Col::Str(self.attributes));
        cols.push(Col::Str(self.resource_attributes));
        cols.push(Col::Str(self.resource_schema_url));
        cols.push(Col::Str(self.scope_name));
        cols.push(Col::Str(self.scope_version));
        cols.push(Col::Str(self.scope_attributes));
        (self.service_name, self.service_version)
    }
}

/// Over the output budget?
#[inline]
pub fn budget(bytes: usize, limit: usize) -> S<()> {
    if bytes > limit {
        Err(Stop::TooLarge)
    } else {
        Ok(())
    }
}

pub const MAX_TIME_NS: u64 = i64::MAX as u64;

/// `check_time`: why a unix-nano timestamp is out of range.
#[inline]
pub fn check_time(t: u64, what: &str) -> Option<String> {
    if t > MAX_TIME_NS {
        Some(format!("{what} {t} is outside 0..{MAX_TIME_NS}"))
    } else {
        None
    }
}

/// `check_id`: why an id of `size` bytes is invalid.
#[inline]
pub fn check_id(raw: &[u8], size: usize, what: &str, required: bool) -> Option<String> {
    if raw.is_empty() {
        return if required { Some(format!("{what} is empty")) } else { None };
    }
    if raw.len() != size {
        return Some(format!("{what} has {} bytes, expected {size}", raw.len()));
    }
    if required && raw.iter().all(|&b| b == 0) {
        return Some(format!("{what} is all zeros"));
    }
    None
}

/// `check_enum`: why an enum number is outside the known values.
#[inline]
pub fn check_enum(v: i32, known: usize, what: &str) -> Option<String> {
    if v >= 0 && (v as usize) < known {
        None
    } else {
        Some(format!("{what} {v} is not a known value"))
    }
}
