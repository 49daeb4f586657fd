//! VRAM in snapshots: its length and the 4 KiB pages that are not all zero, each as a byte
//! string. Most of a 16 MiB VRAM is usually untouched, so the saved state stays small.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

const PAGE: usize = 4096;

/// Larger VRAM sizes in a saved state are refused before anything is allocated.
pub const MAX_VRAM_BYTES: u64 = 256 << 20;

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

struct ByteBuf(Vec<u8>);

struct ByteBufVisitor;

impl<'de> de::Visitor<'de> for ByteBufVisitor {
    type Value = ByteBuf;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a VRAM page")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ByteBuf, E> {
        Ok(ByteBuf(v))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ByteBuf, A::Error> {
        let mut v = Vec::new();
        while let Some(b) = seq.next_element()? {
            if v.len() == PAGE {
                return Err(de::Error::invalid_length(PAGE + 1, &self));
            }
            v.push(b);
        }
        Ok(ByteBuf(v))
    }
}

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_byte_buf(ByteBufVisitor)
    }
}

#[derive(Serialize)]
struct PageOut<'a> {
    index: u32,
    bytes: Bytes<'a>,
}

#[derive(Deserialize)]
struct PageIn {
    index: u32,
    bytes: ByteBuf,
}

pub fn serialize<S: Serializer>(vram: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let pages: Vec<PageOut> = vram
        .chunks(PAGE)
        .enumerate()
        .filter(|(_, c)| c.iter().any(|&b| b != 0))
        .map(|(i, c)| PageOut {
            index: i as u32,
            bytes: Bytes(c),
        })
        .collect();
    (vram.len() as u64, pages).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let (len, pages): (u64, Vec<PageIn>) = Deserialize::deserialize(d)?;
    if len > MAX_VRAM_BYTES {
        return Err(de::Error::custom(format!(
            "VRAM of {len} bytes is too large"
        )));
    }
    let mut vram = vec![0u8; len as usize];
    for page in pages {
        let start = page.index as usize * PAGE;
        let want = vram.len().saturating_sub(start).min(PAGE);
        if want == 0 || page.bytes.0.len() != want {
            return Err(de::Error::custom(format!(
                "VRAM page {} does not fit {len} bytes",
                page.index
            )));
        }
        vram[start..start + want].copy_from_slice(&page.bytes.0);
    }
    Ok(vram)
}
