//! JSON text exactly as `orjson.dumps` writes it for the values an OTLP attribute map holds.
//!
//! Strings: `"` and `\` escaped, control characters as `\b \t \n \f \r` or `\u00xx`
//! (lower-case hex), everything else (non-ASCII, DEL, U+2028) verbatim. Floats: shortest
//! round-trip digits, plain decimal for exponents -5..15 (`1.0`, `0.00001`), otherwise
//! `1e+16` / `1.5e-7`; NaN and infinities become `null`.

use std::io::Write;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 0: copy as is; otherwise the short escape letter, or b'u' for \u00xx.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// A JSON string literal of `s` (already checked to be UTF-8).
#[inline]
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc = ESCAPE[b as usize];
        if esc == 0 {
            continue;
        }
        out.extend_from_slice(&s[start..i]);
        if esc == b'u' {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        } else {
            out.push(b'\\');
            out.push(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// Decimal text of an unsigned integer.
#[inline]
pub fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Decimal text of a signed integer.
#[inline]
pub fn int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    uint(out, v.unsigned_abs());
}

/// Decimal text of a u128 (sums of bucket counts in error messages).
pub fn uint128(v: u128) -> String {
    v.to_string()
}

struct Stack {
    buf: [u8; 40],
    len: usize,
}

impl Write for Stack {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let end = self.len + data.len();
        if end > self.buf.len() {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        self.buf[self.len..end].copy_from_slice(data);
        self.len = end;
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A float as orjson writes it (NaN and infinities as `null`).
pub fn float(out: &mut Vec<u8>, x: f64) {
    if !x.is_finite() {
        out.extend_from_slice(b"null");
        return;
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7", "1e16", "0e0".
    let mut s = Stack { buf: [0; 40], len: 0 };
    if write!(s, "{:e}", x).is_err() {
        out.extend_from_slice(b"null");
        return;
    }
    let text = &s.buf[..s.len];
    let (neg, text) = match text.first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let epos = text.iter().position(|&c| c == b'e').unwrap_or(text.len());
    let mantissa = &text[..epos];
    let exp_text = text.get(epos + 1..).unwrap_or(b"0");
    let mut exp: i32 = 0;
    let (eneg, edigits) = match exp_text.first() {
        Some(b'-') => (true, &exp_text[1..]),
        _ => (false, exp_text),
    };
    for &d in edigits {
        exp = exp * 10 + i32::from(d - b'0');
    }
    if eneg {
        exp = -exp;
    }
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &c in mantissa {
        if c != b'.' && nd < digits.len() {
            digits[nd] = c;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    if neg {
        out.push(b'-');
    }
    if (-5..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            for i in 0..int_len {
                out.push(*digits.get(i).unwrap_or(&b'0'));
            }
            out.push(b'.');
            if digits.len() > int_len {
                out.extend_from_slice(&digits[int_len..]);
            } else {
                out.push(b'0');
            }
        } else {
            out.extend_from_slice(b"0.");
            for _ in 0..(-exp - 1) {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp > 0 { b'+' } else { b'-' });
        uint(out, u64::from(exp.unsigned_abs()));
    }
}

/// Lower-case hex of bytes (ids).
#[inline]
pub fn hex(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len() * 2);
    for &c in b {
        out.push(HEX[(c >> 4) as usize]);
        out.push(HEX[(c & 15) as usize]);
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (bytes values, as `base64.b64encode`).
pub fn base64(out: &mut Vec<u8>, b: &[u8]) {
    out.reserve(b.len().div_ceil(3) * 4);
    let mut chunks = b.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.push(B64[(n >> 18) as usize & 63]);
        out.push(B64[(n >> 12) as usize & 63]);
        out.push(B64[(n >> 6) as usize & 63]);
        out.push(B64[n as usize & 63]);
    }
    let rest = chunks.remainder();
    match rest.len() {
        1 => {
            let n = u32::from(rest[0]) << 16;
            out.push(B64[(n >> 18) as usize & 63]);
            out.push(B64[(n >> 12) as usize & 63]);
            out.extend_from_slice(b"==");
        }
        2 => {
            let n = (u32::from(rest[0]) << 16) | (u32::from(rest[1]) << 8);
            out.push(B64[(n >> 18) as usize & 63]);
            out.push(B64[(n >> 12) as usize & 63]);
            out.push(B64[(n >> 6) as usize & 63]);
            out.push(b'=');
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> String {
        let mut v = Vec::new();
        float(&mut v, x);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn floats_match_orjson() {
        assert_eq!(f(0.0), "0.0");
        assert_eq!(f(-0.0), "-0.0");
        assert_eq!(f(1.0), "1.0");
        assert_eq!(f(1e15), "1000000000000000.0");
        assert_eq!(f(1e16), "1e+16");
        assert_eq!(f(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(f(1e-5), "0.00001");
        assert_eq!(f(0.0001234), "0.0001234");
        assert_eq!(f(1e-6), "1e-6");
        assert_eq!(f(1.5e-7), "1.5e-7");
        assert_eq!(f(5e-324), "5e-324");
        assert_eq!(f(123.456), "123.456");
        assert_eq!(f(f64::NAN), "null");
        assert_eq!(f(f64::NEG_INFINITY), "null");
    }

    #[test]
    fn strings_escape_like_orjson() {
        let mut v = Vec::new();
        string(&mut v, "a\"b\\c\n\u{1}\u{7f}é".as_bytes());
        assert_eq!(String::from_utf8(v).unwrap(), "\"a\\\"b\\\\c\\n\\u0001\u{7f}é\"");
    }

    #[test]
    fn base64_pads() {
        for (input, want) in [(&b""[..], ""), (b"f", "Zg=="), (b"fo", "Zm8="), (b"foo", "Zm9v"), (b"foob", "Zm9vYg==")] {
            let mut v = Vec::new();
            base64(&mut v, input);
            assert_eq!(String::from_utf8(v).unwrap(), want);
        }
    }
}
