//! El Torito: the boot record volume descriptor, the boot catalog, and INT 13h for a booted
//! CD (4Bh status, and floppy emulation of a 1.2/1.44/2.88 MB image).

use super::ata::{Progress, E_BAD_COMMAND, E_NOT_FOUND};
use super::{transfer, AtaDevice, Chs, Dest, Key};
use crate::call::{Call, Outcome};
use crate::services::layout;
use crate::BiosState;
use nestor_cpu::SegReg;
use serde::{Deserialize, Serialize};

/// CD sector of the boot record volume descriptor.
pub const BOOT_RECORD_LBA: u32 = 17;

/// The initial/default entry of a boot catalog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootEntry {
    /// 0 no emulation, 1/2/3 floppy 1.2/1.44/2.88 MB, 4 hard disk.
    pub media: u8,
    pub load_segment: u16,
    /// 512-byte sectors to load (no emulation).
    pub sector_count: u16,
    /// CD sector of the image.
    pub lba: u32,
}

/// A CD booted with El Torito.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdBoot {
    /// Index into the CD-ROM list.
    pub cd: usize,
    /// Drive number the boot image was given.
    pub drive: u8,
    pub entry: BootEntry,
    /// Emulation still on (INT 13h/4B00h ends it).
    pub active: bool,
}

impl CdBoot {
    #[must_use]
    pub fn emulated(&self) -> bool {
        self.active && (1..=3).contains(&self.entry.media)
    }

    fn geometry(&self) -> Chs {
        let spt = match self.entry.media {
            1 => 15,
            2 => 18,
            _ => 36,
        };
        Chs {
            cylinders: 80,
            heads: 2,
            spt,
        }
    }
}

/// The boot catalog's sector, if `sector` is an El Torito boot record.
#[must_use]
pub fn parse_boot_record(sector: &[u8]) -> Option<u32> {
    const ID: &[u8] = b"EL TORITO SPECIFICATION";
    let ok = sector.len() >= 0x4B
        && sector[0] == 0
        && &sector[1..6] == b"CD001"
        && sector[6] == 1
        && &sector[7..7 + ID.len()] == ID;
    ok.then(|| u32::from_le_bytes([sector[0x47], sector[0x48], sector[0x49], sector[0x4A]]))
}

/// The bootable initial entry of a boot catalog whose validation entry checks out.
#[must_use]
pub fn parse_catalog(sector: &[u8]) -> Option<BootEntry> {
    let v = sector.get(..32)?;
    let sum = v.chunks_exact(2).fold(0u16, |s, w| {
        s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
    });
    if v[0] != 1 || v[30] != 0x55 || v[31] != 0xAA || sum != 0 {
        return None;
    }
    let e = sector.get(32..64)?;
    if e[0] != 0x88 {
        return None;
    }
    let load = u16::from_le_bytes([e[2], e[3]]);
    Some(BootEntry {
        media: e[1] & 0x0F,
        load_segment: if load == 0 { 0x07C0 } else { load },
        sector_count: u16::from_le_bytes([e[6], e[7]]),
        lba: u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
    })
}

/// Reads whole CD sectors `lba..lba+count` into a host buffer, resumably.
pub fn read_cd(
    st: &mut BiosState,
    c: &mut Call,
    dev: &AtaDevice,
    drive: u8,
    lba: u32,
    count: u32,
) -> Result<Vec<u8>, Option<u8>> {
    let key = Key {
        drive,
        lba: u64::from(lba),
        count,
        write: false,
        addr: u64::MAX,
    };
    match transfer(st, c.p, key, dev, Dest::Buffer(Vec::new())) {
        (Progress::Busy, _) => Err(None),
        (Progress::Done, Some(job)) => match job.dest {
            Dest::Buffer(b) => Ok(b),
            Dest::Guest(_) => Err(Some(E_NOT_FOUND)),
        },
        (Progress::Failed(e), _) => Err(Some(e)),
        (Progress::Done, None) => Err(Some(E_NOT_FOUND)),
    }
}

/// INT 13h/4Bh: terminate emulation (AL=0) or get status (AL=1) into the specification
/// packet at DS:SI.
pub fn int13_4b(st: &mut BiosState, c: &mut Call) -> Outcome {
    let Some(cd) = st.cd_boot.clone() else {
        return c.fail(E_BAD_COMMAND);
    };
    if c.r.al() > 1 || (c.r.dl() != cd.drive && c.r.dl() != 0x7F) {
        return c.fail(E_BAD_COMMAND);
    }
    let dev = st.disks.cd.get(cd.cd).cloned().unwrap_or_default();
    let mut b = [0u8; 0x13];
    b[0] = 0x13;
    b[1] = cd.entry.media;
    b[2] = cd.drive;
    b[3] = dev.channel;
    b[4..8].copy_from_slice(&cd.entry.lba.to_le_bytes());
    b[8] = u8::from(dev.slave);
    b[12..14].copy_from_slice(&cd.entry.load_segment.to_le_bytes());
    b[14..16].copy_from_slice(&cd.entry.sector_count.to_le_bytes());
    if cd.emulated() {
        let g = cd.geometry();
        let max_cyl = g.cylinders - 1;
        b[16] = max_cyl as u8;
        b[17] = (g.spt as u8) | ((max_cyl >> 2) as u8 & 0xC0);
        b[18] = (g.heads - 1) as u8;
    }
    let at = c.addr(SegReg::Ds, c.r.si());
    c.p.write_mem(at, &b);
    if c.r.al() == 0 {
        if let Some(cd) = st.cd_boot.as_mut() {
            cd.active = false;
        }
    }
    c.ok()
}

/// INT 13h on the emulated floppy.
pub fn emulated(st: &mut BiosState, c: &mut Call, cd: &CdBoot) -> Outcome {
    let g = cd.geometry();
    match c.r.ah() {
        0x00 | 0x0D | 0x16 | 0x17 | 0x18 => c.ok(),
        0x01 => {
            c.set_ah(0);
            c.set_cf(false);
            Outcome::Return
        }
        0x02 | 0x04 => {
            let count = u32::from(c.r.al());
            let sector = u32::from(c.r.cl() & 0x3F);
            let cyl = u32::from(c.r.ch()) | (u32::from(c.r.cl() & 0xC0) << 2);
            let Some(lba) = g.to_lba(cyl, u32::from(c.r.dh()), sector) else {
                return c.fail(E_NOT_FOUND);
            };
            if c.r.ah() == 0x04 {
                return c.ok();
            }
            let Some(dev) = st.disks.cd.get(cd.cd).cloned() else {
                return c.fail(E_NOT_FOUND);
            };
            // 512-byte sectors live four to a CD sector.
            let first = cd.entry.lba + (lba / 4) as u32;
            let last = cd.entry.lba + ((lba + u64::from(count.max(1)) - 1) / 4) as u32;
            let data = match read_cd(st, c, &dev, cd.drive, first, last - first + 1) {
                Ok(d) => d,
                Err(None) => return Outcome::Retry,
                Err(Some(e)) => return c.fail(e),
            };
            let skip = (lba % 4) as usize * 512;
            let want = count as usize * 512;
            let buf = c.addr(SegReg::Es, c.r.bx());
            if let Some(bytes) = data.get(skip..skip + want) {
                c.p.write_mem(buf, bytes);
            }
            c.set_al(count as u8);
            c.ok()
        }
        0x03 | 0x05 => c.fail(0x03),
        0x08 => {
            let max_cyl = g.cylinders - 1;
            c.set_ax(0);
            c.set_bx([0u16, 2, 4, 6][usize::from(cd.entry.media & 3)]);
            c.set_cx(
                ((max_cyl as u16 & 0xFF) << 8) | g.spt as u16 | ((max_cyl as u16 >> 2) & 0xC0),
            );
            c.set_dx(((g.heads as u16 - 1) << 8) | 1);
            c.set_seg(SegReg::Es, 0xF000);
            c.set16(crate::call::r::DI, layout::F_DISKETTE_TABLE);
            c.ok()
        }
        0x15 => {
            c.set_ah(2);
            c.set_cf(false);
            Outcome::Return
        }
        _ => c.fail(E_BAD_COMMAND),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boot record and catalog as an ISO authoring tool writes them.
    pub fn synthetic(
        catalog_lba: u32,
        image_lba: u32,
        media: u8,
        count: u16,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut br = vec![0u8; 2048];
        br[1..6].copy_from_slice(b"CD001");
        br[6] = 1;
        br[7..30].copy_from_slice(b"EL TORITO SPECIFICATION");
        br[0x47..0x4B].copy_from_slice(&catalog_lba.to_le_bytes());
        let mut cat = vec![0u8; 2048];
        cat[0] = 1;
        cat[4..10].copy_from_slice(b"Nestor");
        cat[30] = 0x55;
        cat[31] = 0xAA;
        let sum = cat[..32].chunks_exact(2).fold(0u16, |s, w| {
            s.wrapping_add(u16::from_le_bytes([w[0], w[1]]))
        });
        cat[28..30].copy_from_slice(&0u16.wrapping_sub(sum).to_le_bytes());
        cat[32] = 0x88;
        cat[33] = media;
        cat[38..40].copy_from_slice(&count.to_le_bytes());
        cat[40..44].copy_from_slice(&image_lba.to_le_bytes());
        (br, cat)
    }

    #[test]
    fn parses_boot_record_and_catalog() {
        let (br, cat) = synthetic(19, 25, 0, 4);
        assert_eq!(parse_boot_record(&br), Some(19));
        let e = parse_catalog(&cat).unwrap();
        assert_eq!(
            e,
            BootEntry {
                media: 0,
                load_segment: 0x07C0,
                sector_count: 4,
                lba: 25
            }
        );
    }

    #[test]
    fn rejects_damaged_catalogs() {
        let (mut br, mut cat) = synthetic(19, 25, 2, 1);
        br[3] = b'X';
        assert_eq!(parse_boot_record(&br), None);
        cat[5] ^= 1;
        assert_eq!(parse_catalog(&cat), None, "checksum");
        let (_, mut cat) = synthetic(19, 25, 2, 1);
        cat[32] = 0;
        assert_eq!(parse_catalog(&cat), None, "not bootable");
        assert_eq!(parse_catalog(&[1, 2, 3]), None);
    }
}
