//! Memory images of the x87 state: the FSTENV/FLDENV environment (14 or 28 bytes, real and
//! protected layouts; SDM vol. 1 figures 8-9 to 8-12), FSAVE/FRSTOR (environment + 80 bytes
//! of registers in ST order) and the FXSAVE/FXRSTOR legacy region (first 160 bytes of the
//! 512-byte area; 32-bit and REX.W layouts).

use super::{X87State, F80};

/// Which environment layout an instruction uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvFormat {
    /// 28-byte layout (32-bit operand size) rather than 14 bytes.
    pub op32: bool,
    /// Protected-mode layout (selector:offset) rather than real/V86 (linear pointers).
    pub protected: bool,
}

impl EnvFormat {
    #[must_use]
    pub fn len(self) -> usize {
        if self.op32 {
            28
        } else {
            14
        }
    }
    #[must_use]
    pub fn is_empty(self) -> bool {
        false
    }
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn put64(b: &mut [u8], at: usize, v: u64) {
    if let Some(s) = b.get_mut(at..at + 8) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
fn get16(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}
fn get32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn get64(b: &[u8], at: usize) -> u64 {
    u64::from(get32(b, at)) | u64::from(get32(b, at + 4)) << 32
}

/// The environment image of `s` in format `f` (`f.len()` bytes).
#[must_use]
pub fn save_env(s: &X87State, f: EnvFormat) -> Vec<u8> {
    let mut b = vec![0u8; f.len()];
    let tags = s.full_tags();
    let fop = s.fop & 0x7ff;
    // Real mode keeps 20-bit (16-bit format) or 32-bit linear pointers.
    let ip_lin = (u64::from(s.fcs) << 4).wrapping_add(s.fip) as u32;
    let dp_lin = (u64::from(s.fds) << 4).wrapping_add(s.fdp) as u32;
    match (f.op32, f.protected) {
        (true, true) => {
            put32(&mut b, 0, 0xffff_0000 | u32::from(s.fcw));
            put32(&mut b, 4, 0xffff_0000 | u32::from(s.fsw));
            put32(&mut b, 8, 0xffff_0000 | u32::from(tags));
            put32(&mut b, 12, s.fip as u32);
            put32(&mut b, 16, u32::from(s.fcs) | u32::from(fop) << 16);
            put32(&mut b, 20, s.fdp as u32);
            put32(&mut b, 24, 0xffff_0000 | u32::from(s.fds));
        }
        (true, false) => {
            put32(&mut b, 0, 0xffff_0000 | u32::from(s.fcw));
            put32(&mut b, 4, 0xffff_0000 | u32::from(s.fsw));
            put32(&mut b, 8, 0xffff_0000 | u32::from(tags));
            put32(&mut b, 12, 0xffff_0000 | (ip_lin & 0xffff));
            put32(&mut b, 16, (ip_lin >> 16) << 12 | u32::from(fop));
            put32(&mut b, 20, 0xffff_0000 | (dp_lin & 0xffff));
            put32(&mut b, 24, (dp_lin >> 16) << 12);
        }
        (false, true) => {
            put16(&mut b, 0, s.fcw);
            put16(&mut b, 2, s.fsw);
            put16(&mut b, 4, tags);
            put16(&mut b, 6, s.fip as u16);
            put16(&mut b, 8, s.fcs);
            put16(&mut b, 10, s.fdp as u16);
            put16(&mut b, 12, s.fds);
        }
        (false, false) => {
            put16(&mut b, 0, s.fcw);
            put16(&mut b, 2, s.fsw);
            put16(&mut b, 4, tags);
            put16(&mut b, 6, ip_lin as u16);
            put16(&mut b, 8, ((ip_lin >> 16) as u16 & 0xf) << 12 | fop);
            put16(&mut b, 10, dp_lin as u16);
            put16(&mut b, 12, ((dp_lin >> 16) as u16 & 0xf) << 12);
        }
    }
    b
}

/// Load an environment image into `s` (ES/B recomputed by the caller).
pub fn load_env(s: &mut X87State, f: EnvFormat, b: &[u8]) {
    let w = |k: usize| {
        if f.op32 {
            get32(b, 4 * k)
        } else {
            u32::from(get16(b, 2 * k))
        }
    };
    s.fcw = w(0) as u16;
    s.fsw = w(1) as u16;
    s.set_full_tags(w(2) as u16);
    match (f.op32, f.protected) {
        (true, true) => {
            s.fip = u64::from(w(3));
            s.fcs = w(4) as u16;
            s.fop = (w(4) >> 16) as u16 & 0x7ff;
            s.fdp = u64::from(w(5));
            s.fds = w(6) as u16;
        }
        (false, true) => {
            s.fip = u64::from(w(3));
            s.fcs = w(4) as u16;
            s.fdp = u64::from(w(5));
            s.fds = w(6) as u16;
        }
        (op32, false) => {
            let hi_bits = if op32 { 0xffff } else { 0xf };
            s.fip = u64::from((w(3) & 0xffff) | ((w(4) >> 12) & hi_bits) << 16);
            s.fop = w(4) as u16 & 0x7ff;
            s.fdp = u64::from((w(5) & 0xffff) | ((w(6) >> 12) & hi_bits) << 16);
            s.fcs = 0;
            s.fds = 0;
        }
    }
}

/// FSAVE image: environment, then ST(0)..ST(7) as 10-byte values.
#[must_use]
pub fn save_all(s: &X87State, f: EnvFormat) -> Vec<u8> {
    let mut b = save_env(s, f);
    for i in 0..8 {
        b.extend_from_slice(&s.st(i).to_bytes());
    }
    b
}

/// FRSTOR: the inverse of [`save_all`].
pub fn load_all(s: &mut X87State, f: EnvFormat, b: &[u8]) {
    load_env(s, f, b);
    let base = f.len();
    for i in 0..8 {
        let mut r = [0u8; 10];
        if let Some(src) = b.get(base + 10 * i..base + 10 * i + 10) {
            r.copy_from_slice(src);
        }
        let p = s.phys(i);
        s.st[p] = F80::from_bytes(&r);
    }
}

/// MXCSR bits FXRSTOR and LDMXCSR accept (DAZ included); others raise #GP.
pub const MXCSR_MASK: u32 = 0xffff;
/// Bytes of the FXSAVE area the x87 owns (header and the eight register slots).
pub const FX_X87_BYTES: usize = 160;

/// The x87 part of an FXSAVE image; `rex_w` selects 64-bit instruction/data pointers.
#[must_use]
pub fn fxsave(s: &X87State, rex_w: bool) -> [u8; FX_X87_BYTES] {
    let mut b = [0u8; FX_X87_BYTES];
    put16(&mut b, 0, s.fcw);
    put16(&mut b, 2, s.fsw);
    b[4] = s.ftw;
    put16(&mut b, 6, s.fop & 0x7ff);
    if rex_w {
        put64(&mut b, 8, s.fip);
        put64(&mut b, 16, s.fdp);
    } else {
        put32(&mut b, 8, s.fip as u32);
        put16(&mut b, 12, s.fcs);
        put32(&mut b, 16, s.fdp as u32);
        put16(&mut b, 20, s.fds);
    }
    put32(&mut b, 24, s.mxcsr);
    put32(&mut b, 28, MXCSR_MASK);
    for i in 0..8 {
        let at = 32 + 16 * i;
        b[at..at + 10].copy_from_slice(&s.st(i).to_bytes());
    }
    b
}

/// Load the x87 part of an FXSAVE image. `None` (nothing loaded) when MXCSR has reserved
/// bits set: the caller raises #GP(0).
pub fn fxrstor(s: &mut X87State, b: &[u8], rex_w: bool) -> Option<()> {
    let mxcsr = get32(b, 24);
    if mxcsr & !MXCSR_MASK != 0 {
        return None;
    }
    s.mxcsr = mxcsr;
    s.fcw = get16(b, 0);
    s.fsw = get16(b, 2);
    s.ftw = b.get(4).copied().unwrap_or(0);
    s.fop = get16(b, 6) & 0x7ff;
    if rex_w {
        s.fip = get64(b, 8);
        s.fdp = get64(b, 16);
    } else {
        s.fip = u64::from(get32(b, 8));
        s.fcs = get16(b, 12);
        s.fdp = u64::from(get32(b, 16));
        s.fds = get16(b, 20);
    }
    for i in 0..8 {
        let at = 32 + 16 * i;
        let mut r = [0u8; 10];
        if let Some(src) = b.get(at..at + 10) {
            r.copy_from_slice(src);
        }
        let p = s.phys(i);
        s.st[p] = F80::from_bytes(&r);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> X87State {
        let mut s = X87State::power_on();
        s.init();
        s.fcw = 0x027f;
        s.push(F80::ONE);
        s.push(F80::ZERO);
        s.fip = 0x1234_5678;
        s.fcs = 0x08;
        s.fop = 0x5e9;
        s.fdp = 0x9abc_def0;
        s.fds = 0x10;
        s
    }

    #[test]
    fn fsave_32bit_protected_layout_and_round_trip() {
        let s = sample();
        let f = EnvFormat {
            op32: true,
            protected: true,
        };
        let b = save_all(&s, f);
        assert_eq!(b.len(), 108);
        assert_eq!(get16(&b, 0), 0x027f);
        assert_eq!((get16(&b, 4) >> 11) & 7, 6, "TOP");
        assert_eq!(get16(&b, 8), 0x1fff, "R6 zero, R7 valid, others empty");
        assert_eq!(get32(&b, 12), 0x1234_5678);
        assert_eq!(get32(&b, 16), 0x05e9_0008);
        assert_eq!(get32(&b, 20), 0x9abc_def0);
        assert_eq!(get16(&b, 24), 0x10);
        assert_eq!(&b[28..38], &F80::ZERO.to_bytes(), "ST0 first");
        assert_eq!(&b[38..48], &F80::ONE.to_bytes());
        let mut t = X87State::power_on();
        load_all(&mut t, f, &b);
        assert_eq!(t, s);
    }

    #[test]
    fn real_mode_16bit_env_keeps_20_bit_pointers() {
        let mut s = sample();
        s.fcs = 0xf000;
        s.fip = 0x1234;
        s.fds = 0x1000;
        s.fdp = 0xfff0;
        let f = EnvFormat {
            op32: false,
            protected: false,
        };
        let b = save_env(&s, f);
        assert_eq!(b.len(), 14);
        assert_eq!(get16(&b, 6), 0x1234);
        assert_eq!(get16(&b, 8), 0xf000 | 0x5e9);
        assert_eq!(get16(&b, 10), 0xfff0);
        assert_eq!(get16(&b, 12), 0x1000);
        let mut t = X87State::power_on();
        load_env(&mut t, f, &b);
        assert_eq!((t.fip, t.fdp, t.fop), (0xf1234, 0x1fff0, 0x5e9));
    }

    #[test]
    fn fxsave_layout() {
        let mut s = sample();
        s.mxcsr = 0x1f80;
        let b = fxsave(&s, false);
        assert_eq!(get16(&b, 0), 0x027f);
        assert_eq!(b[4], 0xc0, "abridged tags: R6 and R7");
        assert_eq!(get16(&b, 6), 0x5e9);
        assert_eq!(get32(&b, 8), 0x1234_5678);
        assert_eq!(get16(&b, 12), 0x08);
        assert_eq!(get32(&b, 16), 0x9abc_def0);
        assert_eq!(get16(&b, 20), 0x10);
        assert_eq!(get32(&b, 24), 0x1f80);
        assert_eq!(get32(&b, 28), MXCSR_MASK);
        assert_eq!(&b[48..58], &F80::ONE.to_bytes(), "ST1 at byte 48");
        let mut t = X87State::power_on();
        assert!(fxrstor(&mut t, &b, false).is_some());
        assert_eq!(t, s);
        let mut bad = b;
        put32(&mut bad, 24, 0x1_0000);
        assert!(fxrstor(&mut t, &bad, false).is_none());
        assert_eq!(get64(&fxsave(&s, true), 8), 0x1234_5678);
    }
}
