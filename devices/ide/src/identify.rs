//! IDENTIFY DEVICE and IDENTIFY PACKET DEVICE data (ATA/ATAPI-7 word layout).

use crate::drive::{DriveState, MAX_MULTIPLE};

/// Model strings the drives report.
pub const DISK_MODEL: &str = "NESTOR HARDDISK";
pub const CDROM_MODEL: &str = "NESTOR CD-ROM";
pub const FIRMWARE: &str = "1.0";

/// 256 words, written as little-endian bytes at the end.
struct Words([u16; 256]);

impl Words {
    fn set(&mut self, index: usize, value: u16) {
        if let Some(w) = self.0.get_mut(index) {
            *w = value;
        }
    }

    fn set_u32(&mut self, index: usize, value: u32) {
        self.set(index, value as u16);
        self.set(index + 1, (value >> 16) as u16);
    }

    /// An ATA string: space-padded, two characters per word, the first in the high byte.
    fn set_string(&mut self, index: usize, words: usize, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.resize(words * 2, b' ');
        for (i, pair) in bytes.chunks(2).take(words).enumerate() {
            let hi = pair.first().copied().unwrap_or(b' ');
            let lo = pair.get(1).copied().unwrap_or(b' ');
            self.set(index + i, u16::from(hi) << 8 | u16::from(lo));
        }
    }

    /// Bytes with the integrity word: signature 0xA5 and a checksum making all bytes sum to 0.
    fn into_bytes(mut self) -> Vec<u8> {
        self.set(255, 0x00a5);
        let mut bytes: Vec<u8> = self.0.iter().flat_map(|w| w.to_le_bytes()).collect();
        let sum = bytes[..511].iter().fold(0u8, |s, &b| s.wrapping_add(b));
        bytes[511] = sum.wrapping_neg();
        bytes
    }
}

/// Words shared by both kinds: strings, PIO timings, hardware reset result.
fn common(d: &DriveState, model: &str) -> Words {
    let mut w = Words([0; 256]);
    w.set_string(10, 10, &d.serial);
    w.set_string(23, 4, FIRMWARE);
    w.set_string(27, 20, model);
    w.set(51, 0x0200); // legacy PIO timing: mode 2
    w.set(64, 0x0003); // advanced PIO modes 3 and 4
    for word in 65..=68 {
        w.set(word, 120); // minimum cycle times (ns)
    }
    w.set(80, 0x00f0); // ATA/ATAPI-4 to -7
    w.set(93, 0x6001); // hardware reset result: jumper-selected, 80-conductor cable
    w
}

/// The selected-mode bit for a DMA mode of the class `class` (0x20 multiword, 0x40 UDMA).
fn selected(d: &DriveState, class: u8) -> u16 {
    if d.dma_mode & 0xf8 == class {
        0x100 << (d.dma_mode & 7)
    } else {
        0
    }
}

/// IDENTIFY DEVICE for an ATA disk: LBA28 and LBA48 capacity, CHS geometry, PIO 0-4,
/// multiword DMA 0-2 and UDMA 0-5 (all served by the bus master), write cache, FLUSH CACHE
/// (EXT), power management.
#[must_use]
pub fn ata(d: &DriveState) -> Vec<u8> {
    let mut w = common(d, DISK_MODEL);
    let (cyl, heads, spt) = crate::drive::default_geometry(d.capacity);
    w.set(0, 0x0040); // fixed device
    w.set(1, cyl);
    w.set(3, u16::from(heads));
    w.set(6, u16::from(spt));
    w.set(47, 0x8000 | u16::from(MAX_MULTIPLE));
    w.set(49, 0x0b00); // IORDY, LBA, DMA
    w.set(50, 0x4000);
    w.set(53, 0x0007); // words 54-58, 64-70 and 88 are valid
    w.set(54, d.cylinders);
    w.set(55, u16::from(d.heads));
    w.set(56, u16::from(d.sectors_per_track));
    let chs = u64::from(d.cylinders) * u64::from(d.heads) * u64::from(d.sectors_per_track);
    w.set_u32(57, chs.min(d.capacity).min(u64::from(u32::MAX)) as u32);
    let multiple = if d.multiple > 0 {
        0x100 | u16::from(d.multiple)
    } else {
        0
    };
    w.set(59, multiple);
    w.set_u32(60, d.capacity.min(0x0fff_ffff) as u32);
    w.set(63, 0x0007 | selected(d, 0x20));
    w.set(82, 0x0028); // power management, write cache
    w.set(83, 0x7400); // FLUSH CACHE EXT, FLUSH CACHE, LBA48
    w.set(84, 0x4000);
    w.set(85, 0x0008 | if d.write_cache { 0x0020 } else { 0 });
    w.set(86, 0x3400);
    w.set(87, 0x4000);
    w.set(88, 0x003f | selected(d, 0x40));
    let lba48 = d.capacity.min(0xffff_ffff_ffff);
    for i in 0..4 {
        w.set(100 + i, (lba48 >> (16 * i)) as u16);
    }
    w.into_bytes()
}

/// IDENTIFY PACKET DEVICE for the CD-ROM: removable CD-ROM device, 12-byte packets, PIO only
/// (no DMA is advertised, so hosts use PIO for packets).
#[must_use]
pub fn atapi(d: &DriveState) -> Vec<u8> {
    let mut w = common(d, CDROM_MODEL);
    // ATAPI, CD-ROM, removable, DRQ within 50 us of PACKET, 12-byte packets.
    w.set(0, 0x85c0);
    w.set(49, 0x0a00); // IORDY, LBA
    w.set(53, 0x0006); // words 64-70 and 88 are valid
    w.set(82, 0x0210); // DEVICE RESET, PACKET
    w.set(83, 0x4000);
    w.set(84, 0x4000);
    w.set(85, 0x0210);
    w.set(87, 0x4000);
    w.into_bytes()
}
