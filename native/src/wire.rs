//! Protobuf wire format: a zero-copy field reader.
//!
//! Anything the reference decoder (upb through Python) might treat differently from us is
//! reported as `Fallback`, and the whole request is then decoded by the Python path. So
//! this reader only has to be exact on well-formed input and conservative on the rest.

/// The request is left to the reference decoder (malformed, unusual or out of our scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback;

pub type R<T> = Result<T, Fallback>;

/// One field's value as it sits on the wire.
#[derive(Clone, Copy)]
pub enum Val<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32(u32),
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    #[inline]
    fn varint(&mut self) -> R<u64> {
        let buf = self.buf;
        let mut pos = self.pos;
        let Some(&first) = buf.get(pos) else { return Err(Fallback) };
        pos += 1;
        if first < 0x80 {
            self.pos = pos;
            return Ok(u64::from(first));
        }
        let mut result = u64::from(first & 0x7f);
        let mut shift = 7;
        loop {
            let Some(&byte) = buf.get(pos) else { return Err(Fallback) };
            pos += 1;
            if shift == 63 {
                // The tenth byte may only carry the top bit of a 64-bit value.
                if byte > 1 {
                    return Err(Fallback);
                }
                result |= u64::from(byte) << 63;
                self.pos = pos;
                return Ok(result);
            }
            result |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                self.pos = pos;
                return Ok(result);
            }
            shift += 7;
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Fallback)?;
        let out = self.buf.get(self.pos..end).ok_or(Fallback)?;
        self.pos = end;
        Ok(out)
    }

    /// The next field (number, value), None at the end of the message.
    #[inline]
    pub fn field(&mut self) -> R<Option<(u32, Val<'a>)>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        if tag > u64::from(u32::MAX) {
            return Err(Fallback);
        }
        let number = (tag >> 3) as u32;
        if number == 0 {
            return Err(Fallback);
        }
        let val = match tag & 7 {
            0 => Val::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Val::I64(u64::from_le_bytes(b.try_into().map_err(|_| Fallback)?))
            }
            2 => {
                let n = self.varint()?;
                if n > i32::MAX as u64 {
                    return Err(Fallback);
                }
                Val::Len(self.take(n as usize)?)
            }
            5 => {
                let b = self.take(4)?;
                Val::I32(u32::from_le_bytes(b.try_into().map_err(|_| Fallback)?))
            }
            // Groups (3, 4) are legal in unknown fields for upb; we leave them to it.
            _ => return Err(Fallback),
        };
        Ok(Some((number, val)))
    }
}

/// A UTF-8 string field (upb refuses the whole message on invalid UTF-8).
#[inline]
pub fn utf8(b: &[u8]) -> R<&[u8]> {
    if b.is_ascii() || std::str::from_utf8(b).is_ok() {
        Ok(b)
    } else {
        Err(Fallback)
    }
}

/// An int32 / enum field: upb keeps the low 32 bits; we accept only the canonical encodings.
#[inline]
pub fn int32(v: u64) -> R<i32> {
    if v <= u64::from(u32::MAX) || v >> 31 == 0x1_ffff_ffff {
        Ok(v as u32 as i32)
    } else {
        Err(Fallback)
    }
}

#[inline]
pub fn uint32(v: u64) -> R<u32> {
    u32::try_from(v).map_err(|_| Fallback)
}

#[inline]
pub fn sint32(v: u64) -> R<i32> {
    let n = uint32(v)?;
    Ok((n >> 1) as i32 ^ -((n & 1) as i32))
}

#[inline]
pub fn boolean(v: u64) -> R<bool> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Fallback),
    }
}

/// Values of a repeated fixed64 / double field, packed or not, appended to `out`.
#[inline]
pub fn fixed64s(val: Val<'_>, out: &mut Vec<u64>) -> R<()> {
    match val {
        Val::I64(v) => out.push(v),
        Val::Len(b) => {
            if b.len() % 8 != 0 {
                return Err(Fallback);
            }
            out.extend(b.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))));
        }
        _ => return Err(Fallback),
    }
    Ok(())
}

/// Values of a repeated uint64 (varint) field, packed or not, appended to `out`.
#[inline]
pub fn varints(val: Val<'_>, out: &mut Vec<u64>) -> R<()> {
    match val {
        Val::Varint(v) => out.push(v),
        Val::Len(b) => {
            let mut r = Reader::new(b);
            while r.pos < b.len() {
                out.push(r.varint()?);
            }
        }
        _ => return Err(Fallback),
    }
    Ok(())
}
