//! SMBIOS 2.8: BIOS (0), system (1), chassis (3), processors (4), memory array (16), memory
//! device (17), array mapped address (19), boot information (32), end (127).

use super::{checksum, Area, Platforms};
use crate::services::layout;
use crate::{BiosState, Platform};

/// One structure: formatted area and strings.
struct Structure {
    data: Vec<u8>,
    strings: Vec<String>,
}

impl Structure {
    fn new(kind: u8, handle: u16) -> Self {
        let mut data = vec![kind, 0];
        data.extend_from_slice(&handle.to_le_bytes());
        Self {
            data,
            strings: Vec::new(),
        }
    }
    /// Adds a string; returns its number (1-based).
    fn string(&mut self, s: &str) -> u8 {
        self.strings.push(s.to_string());
        self.strings.len() as u8
    }
    fn b(&mut self, v: u8) -> &mut Self {
        self.data.push(v);
        self
    }
    fn w(&mut self, v: u16) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn d(&mut self, v: u32) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn q(&mut self, v: u64) -> &mut Self {
        self.data.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn finish(mut self) -> Vec<u8> {
        self.data[1] = self.data.len() as u8;
        let mut out = self.data;
        for s in &self.strings {
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        if self.strings.is_empty() {
            out.push(0);
        }
        out.push(0);
        out
    }
}

fn bios_info() -> Vec<u8> {
    let mut s = Structure::new(0, 0x0000);
    let vendor = s.string("Nestor");
    let version = s.string("Nestor BIOS 1.0");
    let date = s.string("01/01/2026");
    s.b(vendor)
        .b(version)
        .w((layout::ROM_BASE >> 4) as u16)
        .b(date);
    s.b((layout::ROM_SIZE / 0x1_0000 - 1) as u8);
    // ISA, PCI, selectable boot, CD boot, EDD, INT 13h floppy, INT 5/9/10/14/17/1A services.
    let chars: u64 =
        (1 << 4) | (1 << 7) | (1 << 15) | (1 << 16) | (1 << 19) | (0xF << 22) | (0x7F << 26);
    s.q(chars).b(0x01).b(0x00).b(1).b(0).b(0xFF).b(0xFF);
    s.finish()
}

fn system_info() -> Vec<u8> {
    let mut s = Structure::new(1, 0x0100);
    let (m, prod, ver, serial) = (
        s.string("Nestor"),
        s.string("Nestor PC"),
        s.string("1.0"),
        s.string("0"),
    );
    s.b(m).b(prod).b(ver).b(serial);
    s.data.extend_from_slice(b"NESTOR-PC-UUID-0");
    let (sku, family) = (s.string("Nestor"), s.string("Nestor"));
    s.b(6).b(sku).b(family);
    s.finish()
}

fn chassis() -> Vec<u8> {
    let mut s = Structure::new(3, 0x0300);
    let m = s.string("Nestor");
    s.b(m)
        .b(0x01)
        .b(0)
        .b(0)
        .b(0)
        .b(3)
        .b(3)
        .b(3)
        .b(2)
        .d(0)
        .b(0)
        .b(0)
        .b(0)
        .b(0)
        .b(0);
    s.finish()
}

fn processor(i: u32) -> Vec<u8> {
    let mut s = Structure::new(4, 0x0400 + i as u16);
    let socket = s.string(&format!("CPU {i}"));
    let maker = s.string("Nestor");
    let version = s.string("Nestor x86");
    s.b(socket)
        .b(3)
        .b(0x01)
        .b(maker)
        .d(0x0000_0611)
        .d(0x0000_0201)
        .b(version);
    s.b(0).w(0).w(2000).w(2000).b(0x41).b(0x01);
    s.w(0xFFFF)
        .w(0xFFFF)
        .w(0xFFFF)
        .b(0)
        .b(0)
        .b(0)
        .b(1)
        .b(1)
        .b(1)
        .w(0x0002)
        .w(0x0001);
    s.finish()
}

fn memory(total: u64, low_end: u64, high: u64) -> Vec<Vec<u8>> {
    let kib = total >> 10;
    let mut array = Structure::new(16, 0x1000);
    array.b(0x03).b(0x03).b(0x03);
    array
        .d(kib.min(0x8000_0000) as u32)
        .w(0xFFFE)
        .w(1)
        .q(if kib >= 0x8000_0000 { kib } else { 0 });
    let mut dev = Structure::new(17, 0x1100);
    let mib = total >> 20;
    let (size, ext) = if mib >= 0x7FFF {
        (0x7FFFu16, mib as u32)
    } else {
        (mib as u16, 0)
    };
    let (loc, bank) = (dev.string("DIMM 0"), dev.string("BANK 0"));
    dev.w(0x1000)
        .w(0xFFFE)
        .w(64)
        .w(64)
        .w(size)
        .b(0x09)
        .b(0)
        .b(loc)
        .b(bank)
        .b(0x07)
        .w(0x0002);
    dev.w(0).b(0).b(0).b(0).b(0).b(0).d(ext).w(0).w(0).w(0).w(0);
    let mut out = vec![array.finish(), dev.finish()];
    let mut ranges = vec![(0u64, low_end)];
    if high > 0 {
        ranges.push((1 << 32, (1 << 32) + high));
    }
    for (i, (start, end)) in ranges.into_iter().enumerate() {
        let mut m = Structure::new(19, 0x1300 + i as u16);
        m.d((start >> 10) as u32)
            .d(((end >> 10) - 1) as u32)
            .w(0x1000)
            .b(1);
        out.push(m.finish());
    }
    out
}

/// Builds the structures in `area`; returns the 2.8 entry point to place.
pub fn build(
    st: &BiosState,
    hw: &Platforms,
    p: &mut dyn Platform,
    area: &mut Area,
) -> Option<Vec<u8>> {
    let mut structs = vec![bios_info(), system_info(), chassis()];
    for i in 0..hw.cpus.min(255) {
        structs.push(processor(i));
    }
    structs.extend(memory(
        st.low_ram_end + st.high_ram,
        st.low_ram_end,
        st.high_ram,
    ));
    let mut boot = Structure::new(32, 0x2000);
    boot.data.extend_from_slice(&[0; 7]);
    structs.push(boot.finish());
    structs.push(Structure::new(127, 0x7F00).finish());
    let max = structs.iter().map(Vec::len).max().unwrap_or(0) as u16;
    let count = structs.len() as u16;
    let table: Vec<u8> = structs.concat();
    let at = area.put(p, &table, 16)?;
    let mut ep = vec![0u8; 0x1F];
    ep[0..4].copy_from_slice(b"_SM_");
    ep[5] = 0x1F;
    ep[6] = 2;
    ep[7] = 8;
    ep[8..10].copy_from_slice(&max.to_le_bytes());
    ep[0x10..0x15].copy_from_slice(b"_DMI_");
    ep[0x16..0x18].copy_from_slice(&(table.len() as u16).to_le_bytes());
    ep[0x18..0x1C].copy_from_slice(&(at as u32).to_le_bytes());
    ep[0x1C..0x1E].copy_from_slice(&count.to_le_bytes());
    ep[0x1E] = 0x28;
    ep[0x15] = checksum(&ep[0x10..0x1F]);
    ep[4] = checksum(&ep);
    Some(ep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structures_are_well_formed() {
        for s in [bios_info(), system_info(), chassis(), processor(0)] {
            let len = usize::from(s[1]);
            assert!(s.len() > len + 1);
            assert_eq!(&s[s.len() - 2..], &[0, 0], "double NUL at the end");
        }
        let mem = memory(8 << 30, 0xE000_0000, (8 << 30) - 0xE000_0000);
        assert_eq!(mem.len(), 4, "array, device, two mapped ranges");
        let dev = &mem[1];
        assert_eq!(
            u16::from_le_bytes([dev[0x0C], dev[0x0D]]),
            8192,
            "8 GiB in MiB"
        );
    }
}
