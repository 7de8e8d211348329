//! The two sides of a legacy message description: [`Reader`] fills kafka-protocol's structs
//! from bytes, [`Writer`] writes them; both run the same field visits ([`Wire`]). Classic
//! (non-flexible) encodings only: int16-length strings, int32-length bytes and arrays.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;

use super::WireError;

pub(super) type R = Result<(), WireError>;

/// One side of a message: the same field visits read or write it.
pub(super) trait Wire: Sized {
    fn reading(&self) -> bool;
    fn i8(&mut self, v: &mut i8) -> R;
    fn i16(&mut self, v: &mut i16) -> R;
    fn i32(&mut self, v: &mut i32) -> R;
    fn i64(&mut self, v: &mut i64) -> R;
    fn bool(&mut self, v: &mut bool) -> R;
    fn str(&mut self, v: &mut StrBytes) -> R;
    fn nullable_str(&mut self, v: &mut Option<StrBytes>) -> R;
    fn nullable_bytes(&mut self, v: &mut Option<Bytes>) -> R;
    fn array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Vec<T>,
        each: F,
    ) -> R;
    fn nullable_array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Option<Vec<T>>,
        each: F,
    ) -> R;
    /// A non-ignorable field the version lacks: writing refuses a value other than the
    /// default; reading leaves the default.
    fn absent<T: PartialEq>(&mut self, name: &'static str, v: &T, default: &T) -> R {
        if !self.reading() && v != default {
            return Err(WireError::NotInVersion(name));
        }
        Ok(())
    }
}

pub(super) struct Reader {
    pub(super) buf: Bytes,
    pub(super) len: usize,
}

impl Reader {
    fn at(&self) -> usize {
        self.len - self.buf.len()
    }

    fn need(&self, n: usize) -> R {
        if self.buf.len() < n {
            return Err(WireError::Truncated { at: self.at() });
        }
        Ok(())
    }

    /// A length or count: `None` for -1, refused below -1 or beyond the bytes left (every
    /// byte and every element takes at least one byte), so nothing is reserved by a
    /// declared count.
    fn length(&mut self, wide: bool) -> Result<Option<usize>, WireError> {
        let at = self.at();
        let n = if wide {
            self.need(4)?;
            i64::from(self.buf.get_i32())
        } else {
            self.need(2)?;
            i64::from(self.buf.get_i16())
        };
        if n == -1 {
            return Ok(None);
        }
        match usize::try_from(n) {
            Ok(n) if n <= self.buf.len() => Ok(Some(n)),
            _ => Err(WireError::BadLength { at, length: n }),
        }
    }

    fn string(&mut self) -> Result<Option<StrBytes>, WireError> {
        let at = self.at();
        let Some(n) = self.length(false)? else {
            return Ok(None);
        };
        let bytes = self.buf.split_to(n);
        StrBytes::from_utf8(bytes)
            .map(Some)
            .map_err(|_| WireError::Utf8 { at })
    }

    fn elements<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        count: usize,
        mut each: F,
    ) -> Result<Vec<T>, WireError> {
        let mut out = Vec::new();
        for i in 0..count {
            let mut t = T::default();
            each(self, i, &mut t)?;
            out.push(t);
        }
        Ok(out)
    }
}

impl Wire for Reader {
    fn reading(&self) -> bool {
        true
    }
    fn i8(&mut self, v: &mut i8) -> R {
        self.need(1)?;
        *v = self.buf.get_i8();
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> R {
        self.need(2)?;
        *v = self.buf.get_i16();
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> R {
        self.need(4)?;
        *v = self.buf.get_i32();
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> R {
        self.need(8)?;
        *v = self.buf.get_i64();
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> R {
        self.need(1)?;
        *v = self.buf.get_u8() != 0;
        Ok(())
    }
    fn str(&mut self, v: &mut StrBytes) -> R {
        let at = self.at();
        *v = self
            .string()?
            .ok_or(WireError::BadLength { at, length: -1 })?;
        Ok(())
    }
    fn nullable_str(&mut self, v: &mut Option<StrBytes>) -> R {
        *v = self.string()?;
        Ok(())
    }
    fn nullable_bytes(&mut self, v: &mut Option<Bytes>) -> R {
        *v = self.length(true)?.map(|n| self.buf.split_to(n));
        Ok(())
    }
    fn array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Vec<T>,
        each: F,
    ) -> R {
        let at = self.at();
        let count = self
            .length(true)?
            .ok_or(WireError::BadLength { at, length: -1 })?;
        *v = self.elements(count, each)?;
        Ok(())
    }
    fn nullable_array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Option<Vec<T>>,
        each: F,
    ) -> R {
        *v = match self.length(true)? {
            None => None,
            Some(count) => Some(self.elements(count, each)?),
        };
        Ok(())
    }
}

pub(super) struct Writer<'a> {
    pub(super) buf: &'a mut BytesMut,
}

impl Writer<'_> {
    fn count(&mut self, n: usize) -> R {
        self.buf
            .put_i32(i32::try_from(n).map_err(|_| WireError::TooLong)?);
        Ok(())
    }
}

impl Wire for Writer<'_> {
    fn reading(&self) -> bool {
        false
    }
    fn i8(&mut self, v: &mut i8) -> R {
        self.buf.put_i8(*v);
        Ok(())
    }
    fn i16(&mut self, v: &mut i16) -> R {
        self.buf.put_i16(*v);
        Ok(())
    }
    fn i32(&mut self, v: &mut i32) -> R {
        self.buf.put_i32(*v);
        Ok(())
    }
    fn i64(&mut self, v: &mut i64) -> R {
        self.buf.put_i64(*v);
        Ok(())
    }
    fn bool(&mut self, v: &mut bool) -> R {
        self.buf.put_u8(u8::from(*v));
        Ok(())
    }
    fn str(&mut self, v: &mut StrBytes) -> R {
        let s = v.as_str();
        self.buf
            .put_i16(i16::try_from(s.len()).map_err(|_| WireError::TooLong)?);
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }
    fn nullable_str(&mut self, v: &mut Option<StrBytes>) -> R {
        match v {
            None => {
                self.buf.put_i16(-1);
                Ok(())
            }
            Some(s) => self.str(s),
        }
    }
    fn nullable_bytes(&mut self, v: &mut Option<Bytes>) -> R {
        match v {
            None => self.buf.put_i32(-1),
            Some(b) => {
                self.count(b.len())?;
                self.buf.put_slice(b);
            }
        }
        Ok(())
    }
    fn array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Vec<T>,
        mut each: F,
    ) -> R {
        self.count(v.len())?;
        for (i, t) in v.iter_mut().enumerate() {
            each(self, i, t)?;
        }
        Ok(())
    }
    fn nullable_array<T: Default, F: FnMut(&mut Self, usize, &mut T) -> R>(
        &mut self,
        v: &mut Option<Vec<T>>,
        each: F,
    ) -> R {
        match v {
            None => {
                self.buf.put_i32(-1);
                Ok(())
            }
            Some(v) => self.array(v, each),
        }
    }
}

/// Element `i` of `v`, grown with `default`s as needed (reading fills a side table as the
/// body is read; writing finds the default for a side table it was not given).
pub(super) fn slot<T: Clone>(v: &mut Vec<T>, i: usize, default: T) -> &mut T {
    if v.len() <= i {
        v.resize(i + 1, default);
    }
    &mut v[i]
}
