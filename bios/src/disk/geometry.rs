//! Disk geometry: the CHS view INT 13h gives of a disk, and CHS ↔ LBA.

use serde::{Deserialize, Serialize};

/// Cylinders, heads, sectors per track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chs {
    pub cylinders: u32,
    pub heads: u32,
    pub spt: u32,
}

impl Chs {
    /// LBA of cylinder `c`, head `h`, sector `s` (1-based), if inside the geometry.
    #[must_use]
    pub fn to_lba(&self, c: u32, h: u32, s: u32) -> Option<u64> {
        if s == 0 || s > self.spt || h >= self.heads || c >= self.cylinders {
            return None;
        }
        Some(
            (u64::from(c) * u64::from(self.heads) + u64::from(h)) * u64::from(self.spt)
                + u64::from(s - 1),
        )
    }

    /// (cylinder, head, sector) of `lba`, if inside the geometry.
    #[must_use]
    pub fn from_lba(&self, lba: u64) -> Option<(u32, u32, u32)> {
        if self.heads == 0 || self.spt == 0 {
            return None;
        }
        let per_cyl = u64::from(self.heads) * u64::from(self.spt);
        let c = lba / per_cyl;
        if c >= u64::from(self.cylinders) {
            return None;
        }
        let rest = lba % per_cyl;
        Some((
            c as u32,
            (rest / u64::from(self.spt)) as u32,
            (rest % u64::from(self.spt)) as u32 + 1,
        ))
    }

    #[must_use]
    pub fn sectors(&self) -> u64 {
        u64::from(self.cylinders) * u64::from(self.heads) * u64::from(self.spt)
    }
}

/// The geometry INT 13h reports for a disk of `sectors` whose drive reports `phys`: the
/// drive's own when INT 13h can express it (at most 1024 cylinders, 16 heads, 63 sectors),
/// else the LBA-assisted translation (63 sectors, 16..255 heads, at most 1024 cylinders).
#[must_use]
pub fn translate(phys: Chs, sectors: u64) -> Chs {
    let phys_ok = (1..=1024).contains(&phys.cylinders)
        && (1..=16).contains(&phys.heads)
        && (1..=63).contains(&phys.spt)
        && phys.sectors() <= sectors.max(1);
    if phys_ok {
        return phys;
    }
    let spt = 63u64;
    let heads: u64 = match sectors {
        s if s <= 1024 * 16 * 63 => 16,
        s if s <= 1024 * 32 * 63 => 32,
        s if s <= 1024 * 64 * 63 => 64,
        s if s <= 1024 * 128 * 63 => 128,
        _ => 255,
    };
    let cylinders = (sectors / (heads * spt)).clamp(1, 1024);
    Chs {
        cylinders: cylinders as u32,
        heads: heads as u32,
        spt: spt as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chs_and_lba_agree() {
        let g = Chs {
            cylinders: 1024,
            heads: 16,
            spt: 63,
        };
        assert_eq!(g.to_lba(0, 0, 1), Some(0));
        assert_eq!(g.to_lba(0, 1, 1), Some(63));
        assert_eq!(g.to_lba(1, 0, 1), Some(16 * 63));
        assert_eq!(g.to_lba(0, 0, 0), None);
        assert_eq!(g.to_lba(0, 16, 1), None);
        for lba in [0u64, 62, 63, 1007, 1008, 123_456] {
            let (c, h, s) = g.from_lba(lba).unwrap();
            assert_eq!(g.to_lba(c, h, s), Some(lba));
        }
        assert!(g.from_lba(g.sectors()).is_none());
    }

    #[test]
    fn large_disks_get_lba_assisted_translation() {
        let small = Chs {
            cylinders: 20,
            heads: 16,
            spt: 63,
        };
        assert_eq!(translate(small, 20 * 16 * 63), small);
        // 2 GiB disk with the usual 16383/16/63 IDENTIFY geometry.
        let big = Chs {
            cylinders: 16383,
            heads: 16,
            spt: 63,
        };
        let g = translate(big, 4 << 20);
        assert_eq!((g.heads, g.spt), (128, 63));
        assert_eq!(g.cylinders, (4 << 20) / (128 * 63));
        let huge = translate(big, 1 << 32);
        assert_eq!((huge.cylinders, huge.heads, huge.spt), (1024, 255, 63));
        let zero = translate(Chs::default(), 2048);
        assert_eq!((zero.heads, zero.spt, zero.cylinders), (16, 63, 2));
    }
}
