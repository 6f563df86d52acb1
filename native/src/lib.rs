//! OTLP protobuf export requests -> Arrow record batches, for `collector/native.py`.
//!
//! C ABI (loaded with ctypes; the GIL is released during the call):
//!
//! * `ds_abi_version() -> u32`
//! * `ds_decode(signal, body, len, output_bytes_max) -> *mut DsResult` with signal 0 traces,
//!   1 metrics, 2 logs; the decoded rows may take at most `output_bytes_max` bytes (capped
//!   at 1 GiB)
//! * `ds_free(*mut DsResult)` after the tables were imported (or not)
//!
//! `status` 0: decoded; `tables[i]` is an `ArrowArray` (struct array in the column order
//! of `collector.columns.SCHEMAS`) or NULL for an empty table. 1: left to the reference
//! Python decoder (malformed input, invalid UTF-8, or a construct this decoder does not
//! claim to reproduce exactly). 2: the decoded rows would exceed the output budget.
//! 3: internal error (a panic, caught here).

// `len % 8 == 0` over `is_multiple_of`: the crate builds with toolchains older than 1.87.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod arrow;
pub mod common;
pub mod json;
pub mod logs;
pub mod metrics;
pub mod traces;
pub mod wire;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use arrow::{export, ArrowArray, Col};
use common::{Outcome, Stop};

pub const ABI_VERSION: u32 = 2;

/// Table slots, in the order of `collector.native.TABLES`.
pub const TABLES: usize = 6;

#[repr(C)]
pub struct DsResult {
    pub status: i32,
    pub rejected: u64,
    pub tables: [*mut ArrowArray; TABLES],
    /// Rejection reasons: per entry u8 kind, then u32-LE-length-prefixed id, name, error.
    pub errors: *const u8,
    pub errors_len: usize,
    errors_owned: Vec<u8>,
}

/// What one decode produced: tables as (slot, columns, rows) plus the outcome.
pub struct Decoded {
    pub tables: Vec<(usize, Vec<Col>, usize)>,
    pub outcome: Outcome,
}

/// Decode one request body (signal 0 traces, 1 metrics, 2 logs).
pub fn decode(signal: u32, body: &[u8], limit: usize) -> Result<Decoded, Stop> {
    let mut outcome = Outcome::default();
    let mut tables = Vec::new();
    match signal {
        0 => {
            let spans = traces::decode(body, limit, &mut outcome)?;
            let rows = spans.rows;
            tables.push((0, spans.into_cols(), rows));
        }
        1 => {
            let m = metrics::decode(body, limit, &mut outcome)?;
            let rows = m.numbers.rows();
            tables.push((2, m.numbers.into_cols(), rows));
            let rows = m.histograms.rows();
            tables.push((3, m.histograms.into_cols(), rows));
            let rows = m.exp_histograms.rows();
            tables.push((4, m.exp_histograms.into_cols(), rows));
            let rows = m.summaries.rows();
            tables.push((5, m.summaries.into_cols(), rows));
        }
        2 => {
            let logs = logs::decode(body, limit, &mut outcome)?;
            let rows = logs.rows;
            tables.push((1, logs.into_cols(), rows));
        }
        _ => return Err(Stop::Fallback),
    }
    Ok(Decoded { tables, outcome })
}

fn encode_errors(outcome: &Outcome) -> Vec<u8> {
    let mut out = Vec::new();
    for r in &outcome.errors {
        out.push(r.kind);
        for part in [&r.id[..], &r.name[..], r.error.as_bytes()] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

#[no_mangle]
pub extern "C" fn ds_abi_version() -> u32 {
    ABI_VERSION
}

/// # Safety
/// `body` must point to `len` readable bytes for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn ds_decode(signal: u32, body: *const u8, len: usize, output_bytes_max: usize) -> *mut DsResult {
    let body: &[u8] = if len == 0 { &[] } else { std::slice::from_raw_parts(body, len) };
    let mut res = Box::new(DsResult {
        status: 0,
        rejected: 0,
        tables: [ptr::null_mut(); TABLES],
        errors: ptr::null(),
        errors_len: 0,
        errors_owned: Vec::new(),
    });
    match catch_unwind(AssertUnwindSafe(|| decode(signal, body, output_bytes_max))) {
        Ok(Ok(decoded)) => {
            for (slot, cols, rows) in decoded.tables {
                if rows == 0 {
                    continue;
                }
                let mut arr = Box::new(ArrowArray::empty());
                export(cols, rows, &mut arr);
                res.tables[slot] = Box::into_raw(arr);
            }
            res.rejected = decoded.outcome.rejected;
            res.errors_owned = encode_errors(&decoded.outcome);
            res.errors = res.errors_owned.as_ptr();
            res.errors_len = res.errors_owned.len();
        }
        Ok(Err(Stop::Fallback)) => res.status = 1,
        Ok(Err(Stop::TooLarge)) => res.status = 2,
        Err(_) => res.status = 3,
    }
    Box::into_raw(res)
}

/// Free a result; tables not imported by the consumer are released here.
///
/// # Safety
/// `res` must come from `ds_decode` and not have been freed.
#[no_mangle]
pub unsafe extern "C" fn ds_free(res: *mut DsResult) {
    if res.is_null() {
        return;
    }
    let res = Box::from_raw(res);
    for &t in res.tables.iter() {
        if t.is_null() {
            continue;
        }
        let mut arr = Box::from_raw(t);
        if let Some(release) = arr.release {
            release(&mut *arr);
        }
    }
}
