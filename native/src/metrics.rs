//! ExportMetricsServiceRequest -> rows of the four metric tables (mirrors `metrics_from_proto`).

use crate::arrow::{BoolCol, Col, ListCol, Prim, StrCol};
use crate::common::{
    OUTPUT_BYTES_MAX,
    budget, check_enum, check_time, once, walk, write_map, Common, Kv, Outcome, Scratch, Tail, S,
};
use crate::json;
use crate::wire::{boolean, fixed64s, int32, sint32, uint32, utf8, varints, Fallback, Reader, Val, R};

const TEMPORALITIES: [&[u8]; 3] = [b"unspecified", b"delta", b"cumulative"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Sum,
    Histogram,
    ExpHistogram,
    Summary,
}

/// Columns every metric table starts and ends with.
#[derive(Default)]
struct Head {
    rows: usize,
    metric_name: StrCol,
    metric_description: StrCol,
    metric_unit: StrCol,
    time: Prim<i64>,
    start_time: Prim<i64>,
    flags: Prim<u32>,
    exemplars: StrCol,
    tail: Tail,
}

impl Head {
    fn push(&mut self, m: &MetricRaw<'_>, p: &Point, c: &Common<'_>, attrs: &[u8], exemplars: Option<&[u8]>) {
        self.metric_name.push(m.name);
        self.metric_description.nonempty(m.description);
        self.metric_unit.nonempty(m.unit);
        self.time.push(p.time as i64);
        self.start_time.opt((p.start != 0).then_some(p.start as i64));
        self.flags.push(p.flags);
        self.exemplars.opt(exemplars);
        self.tail.attributes.push(attrs);
        self.tail.push(c);
        self.rows += 1;
    }

    fn bytes(&self) -> usize {
        self.tail.bytes()
            + self.metric_name.data.len()
            + self.metric_description.data.len()
            + self.metric_unit.data.len()
            + self.exemplars.data.len()
    }

    /// (leading columns, flags, exemplars, trailing columns) in schema order.
    fn split(self) -> (Vec<Col>, Col, Col, Vec<Col>) {
        let mut rest = Vec::with_capacity(6);
        let (service_name, service_version) = self.tail.resource_scope(&mut rest);
        let lead = vec![
            Col::Str(self.metric_name),
            Col::Str(self.metric_description),
            Col::Str(self.metric_unit),
            Col::Str(service_name),
            Col::Str(service_version),
            Col::I64(self.time),
            Col::I64(self.start_time),
        ];
        (lead, Col::U32(self.flags), Col::Str(self.exemplars), rest)
    }
}

#[derive(Default)]
pub struct Numbers {
    head: Head,
    value: Prim<f64>,
    value_int: Prim<i64>,
    kind: StrCol,
    temporality: StrCol,
    is_monotonic: BoolCol,
}

#[derive(Default)]
pub struct Histograms {
    head: Head,
    count: Prim<u64>,
    sum: Prim<f64>,
    min: Prim<f64>,
    max: Prim<f64>,
    bounds: ListCol<f64>,
    bucket_counts: ListCol<u64>,
    temporality: StrCol,
}

#[derive(Default)]
pub struct ExpHistograms {
    head: Head,
    count: Prim<u64>,
    sum: Prim<f64>,
    min: Prim<f64>,
    max: Prim<f64>,
    scale: Prim<i32>,
    zero_count: Prim<u64>,
    zero_threshold: Prim<f64>,
    positive_offset: Prim<i32>,
    positive_counts: ListCol<u64>,
    negative_offset: Prim<i32>,
    negative_counts: ListCol<u64>,
    temporality: StrCol,
}

#[derive(Default)]
pub struct Summaries {
    head: Head,
    count: Prim<u64>,
    sum: Prim<f64>,
    quantiles: ListCol<f64>,
    quantile_values: ListCol<f64>,
}

#[derive(Default)]
pub struct Metrics {
    pub numbers: Numbers,
    pub histograms: Histograms,
    pub exp_histograms: ExpHistograms,
    pub summaries: Summaries,
}

impl Numbers {
    pub fn rows(&self) -> usize {
        self.head.rows
    }
    pub fn into_cols(self) -> Vec<Col> {
        let (mut cols, flags, exemplars, rest) = self.head.split();
        cols.extend([
            Col::F64(self.value),
            Col::I64(self.value_int),
            Col::Str(self.kind),
            Col::Str(self.temporality),
            Col::Bool(self.is_monotonic),
            flags,
            exemplars,
        ]);
        cols.extend(rest);
        cols
    }
}

impl Histograms {
    pub fn rows(&self) -> usize {
        self.head.rows
    }
    pub fn into_cols(self) -> Vec<Col> {
        let (mut cols, flags, exemplars, rest) = self.head.split();
        cols.extend([
            Col::U64(self.count),
            Col::F64(self.sum),
            Col::F64(self.min),
            Col::F64(self.max),
            Col::ListF64(self.bounds),
            Col::ListU64(self.bucket_counts),
            Col::Str(self.temporality),
            flags,
            exemplars,
        ]);
        cols.extend(rest);
        cols
    }
}

impl ExpHistograms {
    pub fn rows(&self) -> usize {
        self.head.rows
    }
    pub fn into_cols(self) -> Vec<Col> {
        let (mut cols, flags, exemplars, rest) = self.head.split();
        cols.extend([
            Col::U64(self.count),
            Col::F64(self.sum),
            Col::F64(self.min),
            Col::F64(self.max),
            Col::I32(self.scale),
            Col::U64(self.zero_count),
            Col::F64(self.zero_threshold),
            Col::I32(self.positive_offset),
            Col::ListU64(self.positive_counts),
            Col::I32(self.negative_offset),
            Col::ListU64(self.negative_counts),
            Col::Str(self.temporality),
            flags,
            exemplars,
        ]);
        cols.extend(rest);
        cols
    }
}

impl Summaries {
    pub fn rows(&self) -> usize {
        self.head.rows
    }
    pub fn into_cols(self) -> Vec<Col> {
        let (mut cols, flags, _exemplars, rest) = self.head.split();
        cols.extend([
            Col::U64(self.count),
            Col::F64(self.sum),
            Col::ListF64(self.quantiles),
            Col::ListF64(self.quantile_values),
            flags,
        ]);
        cols.extend(rest);
        cols
    }
}

struct MetricRaw<'a> {
    name: &'a [u8],
    description: &'a [u8],
    unit: &'a [u8],
}

#[derive(Default)]
struct Point<'a> {
    time: u64,
    start: u64,
    flags: u32,
    count: u64,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    /// Number points: the last member of the value oneof seen (None: as_double 0.0).
    as_int: Option<i64>,
    as_double: f64,
    scale: i32,
    zero_count: u64,
    zero_threshold: f64,
    positive: Option<&'a [u8]>,
    negative: Option<&'a [u8]>,
}

/// Buffers a point is parsed into.
#[derive(Default)]
struct PointBufs<'a> {
    attrs: Vec<&'a [u8]>,
    exemplars: Vec<&'a [u8]>,
    quantiles: Vec<&'a [u8]>,
    counts: Vec<u64>,
    bounds: Vec<u64>,
    positive: Vec<u64>,
    negative: Vec<u64>,
    q: Vec<f64>,
    qv: Vec<f64>,
    attrs_json: Vec<u8>,
    exemplars_json: Vec<u8>,
    sub_attrs: Vec<&'a [u8]>,
    kvs: Vec<Kv<'a>>,
}

fn parse_point<'a>(kind: Kind, raw: &'a [u8], b: &mut PointBufs<'a>) -> R<Point<'a>> {
    let mut p = Point::default();
    b.attrs.clear();
    b.exemplars.clear();
    b.quantiles.clear();
    b.counts.clear();
    b.bounds.clear();
    let mut r = Reader::new(raw);
    while let Some((f, v)) = r.field()? {
        use Kind::*;
        match (kind, f, v) {
            (_, 2, Val::I64(x)) => p.start = x,
            (_, 3, Val::I64(x)) => p.time = x,
            (_, 2 | 3, _) => return Err(Fallback),
            (Gauge | Sum, 7, Val::Len(x)) => b.attrs.push(x),
            (Gauge | Sum, 4, Val::I64(x)) => {
                p.as_double = f64::from_bits(x);
                p.as_int = None;
            }
            (Gauge | Sum, 6, Val::I64(x)) => p.as_int = Some(x as i64),
            (Gauge | Sum, 5, Val::Len(x)) => b.exemplars.push(x),
            (Gauge | Sum, 8, Val::Varint(x)) => p.flags = uint32(x)?,
            (Gauge | Sum, 4..=8, _) => return Err(Fallback),
            (Histogram, 9, Val::Len(x)) => b.attrs.push(x),
            (Histogram, 4, Val::I64(x)) => p.count = x,
            (Histogram, 5, Val::I64(x)) => p.sum = Some(f64::from_bits(x)),
            (Histogram, 6, v) => fixed64s(v, &mut b.counts)?,
            (Histogram, 7, v) => fixed64s(v, &mut b.bounds)?,
            (Histogram, 8, Val::Len(x)) => b.exemplars.push(x),
            (Histogram, 10, Val::Varint(x)) => p.flags = uint32(x)?,
            (Histogram, 11, Val::I64(x)) => p.min = Some(f64::from_bits(x)),
            (Histogram, 12, Val::I64(x)) => p.max = Some(f64::from_bits(x)),
            (Histogram, 4..=12, _) => return Err(Fallback),
            (ExpHistogram, 1, Val::Len(x)) => b.attrs.push(x),
            (ExpHistogram, 4, Val::I64(x)) => p.count = x,
            (ExpHistogram, 5, Val::I64(x)) => p.sum = Some(f64::from_bits(x)),
            (ExpHistogram, 6, Val::Varint(x)) => p.scale = sint32(x)?,
            (ExpHistogram, 7, Val::I64(x)) => p.zero_count = x,
            (ExpHistogram, 8, Val::Len(x)) => once(&mut p.positive, x)?,
            (ExpHistogram, 9, Val::Len(x)) => once(&mut p.negative, x)?,
            (ExpHistogram, 10, Val::Varint(x)) => p.flags = uint32(x)?,
            (ExpHistogram, 11, Val::Len(x)) => b.exemplars.push(x),
            (ExpHistogram, 12, Val::I64(x)) => p.min = Some(f64::from_bits(x)),
            (ExpHistogram, 13, Val::I64(x)) => p.max = Some(f64::from_bits(x)),
            (ExpHistogram, 14, Val::I64(x)) => p.zero_threshold = f64::from_bits(x),
            (ExpHistogram, 1 | 4..=14, _) => return Err(Fallback),
            (Summary, 7, Val::Len(x)) => b.attrs.push(x),
            (Summary, 4, Val::I64(x)) => p.count = x,
            (Summary, 5, Val::I64(x)) => p.sum = Some(f64::from_bits(x)),
            (Summary, 6, Val::Len(x)) => b.quantiles.push(x),
            (Summary, 8, Val::Varint(x)) => p.flags = uint32(x)?,
            (Summary, 4..=8, _) => return Err(Fallback),
            _ => {}
        }
    }
    Ok(p)
}

/// (offset, counts) of an exponential histogram's Buckets message.
fn buckets(raw: Option<&[u8]>, out: &mut Vec<u64>) -> R<i32> {
    out.clear();
    let mut offset = 0;
    if let Some(raw) = raw {
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::Varint(x)) => offset = sint32(x)?,
                (2, v) => varints(v, out)?,
                (1, _) => return Err(Fallback),
                _ => {}
            }
        }
    }
    Ok(offset)
}

fn quantiles(raws: &[&[u8]], q: &mut Vec<f64>, qv: &mut Vec<f64>) -> R<()> {
    q.clear();
    qv.clear();
    for raw in raws {
        let (mut quantile, mut value) = (0.0, 0.0);
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (1, Val::I64(x)) => quantile = f64::from_bits(x),
                (2, Val::I64(x)) => value = f64::from_bits(x),
                (1..=2, _) => return Err(Fallback),
                _ => {}
            }
        }
        q.push(quantile);
        qv.push(value);
    }
    Ok(())
}

/// `[{"time_unix_nano":..,"value":..,"trace_id":..,"span_id":..,"filtered_attributes":{..}}]`
fn write_exemplars<'a>(
    out: &mut Vec<u8>,
    raws: &[&'a [u8]],
    attrs: &mut Vec<&'a [u8]>,
    kvs: &mut Vec<Kv<'a>>,
) -> R<()> {
    out.push(b'[');
    for (i, raw) in raws.iter().enumerate() {
        let (mut time, mut as_int, mut as_double): (u64, Option<i64>, f64) = (0, None, 0.0);
        let (mut trace_id, mut span_id): (&[u8], &[u8]) = (b"", b"");
        attrs.clear();
        let mut r = Reader::new(raw);
        while let Some((f, v)) = r.field()? {
            match (f, v) {
                (7, Val::Len(b)) => attrs.push(b),
                (2, Val::I64(x)) => time = x,
                (3, Val::I64(x)) => {
                    as_double = f64::from_bits(x);
                    as_int = None;
                }
                (6, Val::I64(x)) => as_int = Some(x as i64),
                (4, Val::Len(b)) => span_id = b,
                (5, Val::Len(b)) => trace_id = b,
                (2..=7, _) => return Err(Fallback),
                _ => {}
            }
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"time_unix_nano\":");
        json::uint(out, time);
        out.extend_from_slice(b",\"value\":");
        match as_int {
            Some(v) => json::int(out, v),
            None => json::float(out, as_double),
        }
        out.extend_from_slice(b",\"trace_id\":");
        hex_or_null(out, trace_id);
        out.extend_from_slice(b",\"span_id\":");
        hex_or_null(out, span_id);
        out.extend_from_slice(b",\"filtered_attributes\":");
        write_map(out, attrs, kvs, 7)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

fn hex_or_null(out: &mut Vec<u8>, b: &[u8]) {
    if b.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'"');
        json::hex(out, b);
        out.push(b'"');
    }
}

fn point_error(p: &Point<'_>) -> Option<String> {
    check_time(p.time, "time_unix_nano")
        .or_else(|| check_time(p.start, "start_time_unix_nano"))
        .or_else(|| (p.time == 0).then(|| "time_unix_nano is 0 (unset)".to_string()))
}

fn histogram_error(b: &PointBufs<'_>, p: &Point<'_>) -> Option<String> {
    let (counts, bounds) = (&b.counts, &b.bounds);
    if !counts.is_empty() && counts.len() != bounds.len() + 1 {
        return Some(format!(
            "{} bucket_counts for {} explicit_bounds (expected bounds + 1)",
            counts.len(),
            bounds.len()
        ));
    }
    if bounds.windows(2).any(|w| f64::from_bits(w[0]) >= f64::from_bits(w[1])) {
        return Some("explicit_bounds are not strictly increasing".to_string());
    }
    if !counts.is_empty() {
        let total: u128 = counts.iter().map(|&c| u128::from(c)).sum();
        if total != u128::from(p.count) {
            return Some(format!("bucket_counts sum to {} but count is {}", json::uint128(total), p.count));
        }
    }
    None
}

fn exp_histogram_error(b: &PointBufs<'_>, p: &Point<'_>) -> Option<String> {
    if !(-10..=20).contains(&p.scale) {
        return Some(format!("scale {} is outside -10..20", p.scale));
    }
    let total: u128 = u128::from(p.zero_count)
        + b.positive.iter().map(|&c| u128::from(c)).sum::<u128>()
        + b.negative.iter().map(|&c| u128::from(c)).sum::<u128>();
    if total != u128::from(p.count) {
        return Some(format!(
            "zero_count and buckets sum to {} but count is {}",
            json::uint128(total),
            p.count
        ));
    }
    None
}

struct Data<'a> {
    kind: Kind,
    raw: &'a [u8],
}

impl Metrics {
    fn bytes(&self) -> usize {
        self.numbers.head.bytes()
            + self.histograms.head.bytes()
            + self.exp_histograms.head.bytes()
            + self.summaries.head.bytes()
    }

    fn metric<'a>(
        &mut self,
        c: &Common<'a>,
        raw: &'a [u8],
        out: &mut Outcome,
        sc: &mut Scratch<'a>,
        pb: &mut PointBufs<'a>,
    ) -> S<()> {
        let mut m = MetricRaw { name: b"", description: b"", unit: b"" };
        let mut data: Option<Data<'a>> = None;
        let mut r = Reader::new(raw);
        sc.attrs.clear();
        while let Some((f, v)) = r.field()? {
            let kind = match (f, v) {
                (1, Val::Len(b)) => {
                    m.name = utf8(b)?;
                    continue;
                }
                (2, Val::Len(b)) => {
                    m.description = utf8(b)?;
                    continue;
                }
                (3, Val::Len(b)) => {
                    m.unit = utf8(b)?;
                    continue;
                }
                (12, Val::Len(b)) => {
                    sc.attrs.push(b);
                    continue;
                }
                (5, Val::Len(_)) => Kind::Gauge,
                (7, Val::Len(_)) => Kind::Sum,
                (9, Val::Len(_)) => Kind::Histogram,
                (10, Val::Len(_)) => Kind::ExpHistogram,
                (11, Val::Len(_)) => Kind::Summary,
                (1..=3 | 5 | 7 | 9..=12, _) => return Err(Fallback.into()),
                _ => continue,
            };
            // A second data member: oneof last-wins / merge rules are upb's business.
            if data.is_some() {
                return Err(Fallback.into());
            }
            let Val::Len(b) = v else { return Err(Fallback.into()) };
            data = Some(Data { kind, raw: b });
        }
        // metadata: stored nowhere, validated all the same.
        sc.sink.clear();
        write_map(&mut sc.sink, &sc.attrs, &mut sc.kvs, 5)?;
        let Some(data) = data else {
            out.reject(2, b"", m.name, || "no name or no data".to_string());
            return Ok(());
        };
        let mut points: Vec<&'a [u8]> = std::mem::take(&mut sc.items);
        points.clear();
        let (mut temporality, mut monotonic) = (0i32, false);
        let mut r = Reader::new(data.raw);
        while let Some((f, v)) = r.field()? {
            match (data.kind, f, v) {
                (_, 1, Val::Len(b)) => points.push(b),
                (_, 1, _) => return Err(Fallback.into()),
                (Kind::Sum | Kind::Histogram | Kind::ExpHistogram, 2, Val::Varint(x)) => temporality = int32(x)?,
                (Kind::Sum | Kind::Histogram | Kind::ExpHistogram, 2, _) => return Err(Fallback.into()),
                (Kind::Sum, 3, Val::Varint(x)) => monotonic = boolean(x)?,
                (Kind::Sum, 3, _) => return Err(Fallback.into()),
                _ => {}
            }
        }
        let refused: Option<String> = if m.name.is_empty() {
            out.reject(2, b"", m.name, || "no name or no data".to_string());
            Some(String::new())
        } else if data.kind != Kind::Gauge && data.kind != Kind::Summary {
            check_enum(temporality, TEMPORALITIES.len(), "aggregation_temporality")
        } else {
            None
        };
        for raw in points.iter() {
            let p = parse_point(data.kind, raw, pb)?;
            // Everything is converted (and so validated) before deciding.
            pb.attrs_json.clear();
            write_map(&mut pb.attrs_json, &pb.attrs, &mut pb.kvs, 6)?;
            pb.exemplars_json.clear();
            if !pb.exemplars.is_empty() {
                write_exemplars(&mut pb.exemplars_json, &pb.exemplars, &mut pb.sub_attrs, &mut pb.kvs)?;
            }
            let pos_offset = buckets(p.positive, &mut pb.positive)?;
            let neg_offset = buckets(p.negative, &mut pb.negative)?;
            quantiles(&pb.quantiles, &mut pb.q, &mut pb.qv)?;
            if let Some(err) = &refused {
                if !m.name.is_empty() {
                    out.reject(1, b"", m.name, || err.clone());
                }
                continue;
            }
            let err = point_error(&p).or_else(|| match data.kind {
                Kind::Histogram => histogram_error(pb, &p),
                Kind::ExpHistogram => exp_histogram_error(pb, &p),
                _ => None,
            });
            if let Some(err) = err {
                out.reject(1, b"", m.name, || err);
                continue;
            }
            let exemplars = (!pb.exemplars.is_empty()).then_some(&pb.exemplars_json[..]);
            let temp = TEMPORALITIES[temporality.clamp(0, 2) as usize];
            match data.kind {
                Kind::Gauge | Kind::Sum => {
                    let t = &mut self.numbers;
                    t.head.push(&m, &p, c, &pb.attrs_json, exemplars);
                    match p.as_int {
                        Some(i) => {
                            t.value.push(i as f64);
                            t.value_int.push(i);
                        }
                        None => {
                            t.value.push(p.as_double);
                            t.value_int.opt(None);
                        }
                    }
                    if data.kind == Kind::Sum {
                        t.kind.push(b"sum");
                        t.temporality.push(temp);
                        t.is_monotonic.opt(Some(monotonic));
                    } else {
                        t.kind.push(b"gauge");
                        t.temporality.null();
                        t.is_monotonic.opt(None);
                    }
                }
                Kind::Histogram => {
                    let t = &mut self.histograms;
                    t.head.push(&m, &p, c, &pb.attrs_json, exemplars);
                    t.count.push(p.count);
                    t.sum.opt(p.sum);
                    t.min.opt(p.min);
                    t.max.opt(p.max);
                    t.bounds.values.extend(pb.bounds.iter().map(|&b| f64::from_bits(b)));
                    t.bounds.push(&[]);
                    t.bucket_counts.push(&pb.counts);
                    t.temporality.push(temp);
                }
                Kind::ExpHistogram => {
                    let t = &mut self.exp_histograms;
                    t.head.push(&m, &p, c, &pb.attrs_json, exemplars);
                    t.count.push(p.count);
                    t.sum.opt(p.sum);
                    t.min.opt(p.min);
                    t.max.opt(p.max);
                    t.scale.push(p.scale);
                    t.zero_count.push(p.zero_count);
                    t.zero_threshold.push(p.zero_threshold);
                    t.positive_offset.push(pos_offset);
                    t.positive_counts.push(&pb.positive);
                    t.negative_offset.push(neg_offset);
                    t.negative_counts.push(&pb.negative);
                    t.temporality.push(temp);
                }
                Kind::Summary => {
                    let t = &mut self.summaries;
                    t.head.push(&m, &p, c, &pb.attrs_json, None);
                    t.count.push(p.count);
                    t.sum.push(p.sum.unwrap_or(0.0));
                    t.quantiles.push(&pb.q);
                    t.quantile_values.push(&pb.qv);
                }
            }
            budget(self.bytes(), sc.limit)?;
        }
        sc.items = points;
        Ok(())
    }
}

pub fn decode(body: &[u8], limit: usize, out: &mut Outcome) -> S<Metrics> {
    let mut metrics = Metrics::default();
    let mut scratch = Scratch { limit: limit.min(OUTPUT_BYTES_MAX), ..Scratch::default() };
    let mut pb = PointBufs::default();
    walk(body, &mut scratch, |c, raw, sc| metrics.metric(c, raw, out, sc, &mut pb))?;
    Ok(metrics)
}
