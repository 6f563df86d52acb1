//! Decode a file of length-prefixed (u32 LE) ExportTraceServiceRequest bodies, repeatedly,
//! and print spans per second of decode alone (no Python, no Arrow import). For profiling:
//! `cargo run --release --example decode_file -- BODIES [ROUNDS]`.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: decode_file BODIES [ROUNDS]");
    let rounds: usize = args.next().map(|r| r.parse().expect("ROUNDS")).unwrap_or(5);
    let data = std::fs::read(&path).expect("read bodies");
    let mut bodies = Vec::new();
    let mut pos = 0;
    while pos + 4 <= data.len() {
        let n = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("length")) as usize;
        bodies.push(&data[pos + 4..pos + 4 + n]);
        pos += 4 + n;
    }
    let started = Instant::now();
    let mut rows = 0;
    for _ in 0..rounds {
        for body in &bodies {
            let decoded = driftscope_otlp::decode(0, body, 1 << 30).expect("decodes");
            rows += decoded.tables.iter().map(|t| t.2).sum::<usize>();
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!("{rows} spans in {s:.3}s: {:.0} spans/s", rows as f64 / s);
}
