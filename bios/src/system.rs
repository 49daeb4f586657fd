//! INT 15h: memory maps (E820h, E801h, 88h), A20, block move, waits, system configuration.

use crate::bda;
use crate::call::{r, Call, Outcome};
use crate::guest::read_vec;
use crate::io::{cmos_read, inb, outb, PIC1_DATA};
use crate::services::layout;
use crate::BiosState;
use nestor_cpu::SegReg;

/// E820 address range types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;
pub const E820_ACPI: u32 = 3;

/// "SMAP".
const SMAP: u32 = 0x534D_4150;
const UNSUPPORTED: u8 = 0x86;

/// The physical memory map: (base, length, type), sorted by base.
#[must_use]
pub fn e820_map(st: &BiosState) -> Vec<(u64, u64, u32)> {
    let mut map = vec![
        (0, bda::EBDA, E820_RAM),
        (bda::EBDA, 0xA_0000 - bda::EBDA, E820_RESERVED),
        (
            u64::from(layout::ROM_BASE),
            layout::ROM_SIZE as u64,
            E820_RESERVED,
        ),
    ];
    let low_end = st.low_ram_end.max(1 << 20);
    let (acpi_start, acpi_len) = st.acpi.unwrap_or((low_end, 0));
    let ram_end = if acpi_len > 0 && acpi_start < low_end {
        acpi_start
    } else {
        low_end
    };
    if ram_end > 1 << 20 {
        map.push((1 << 20, ram_end - (1 << 20), E820_RAM));
    }
    if acpi_len > 0 {
        map.push((acpi_start, acpi_len, E820_ACPI));
    }
    // The ROM's alias just below 4 GiB.
    let rom = layout::ROM_SIZE as u64;
    map.push(((1 << 32) - rom, rom, E820_RESERVED));
    if st.high_ram > 0 {
        map.push((1 << 32, st.high_ram, E820_RAM));
    }
    map
}

pub fn int15(st: &mut BiosState, c: &mut Call) -> Outcome {
    match c.r.ah() {
        0x24 => a20(c),
        // Keyboard intercept: keep the scan code (CF set).
        0x4F => {
            c.set_cf(true);
            Outcome::Return
        }
        0x80..=0x82 | 0x85 | 0x90 | 0x91 => c.ok(),
        0x86 => wait(st, c),
        0x87 => block_move(c),
        0x88 => {
            let kib = u16::from(cmos_read(c.p, 0x30)) | (u16::from(cmos_read(c.p, 0x31)) << 8);
            c.set_ax(kib.min(0xFC00));
            c.set_cf(false);
            Outcome::Return
        }
        0xC0 => {
            c.set_seg(SegReg::Es, 0xF000);
            c.set_bx(layout::F_CONFIG_TABLE);
            c.ok()
        }
        0xC1 => {
            c.set_seg(SegReg::Es, bda::EBDA_SEGMENT);
            c.set_cf(false);
            Outcome::Return
        }
        0xE8 => match c.r.al() {
            0x01 => e801(st, c),
            0x20 => e820(st, c),
            _ => c.fail(UNSUPPORTED),
        },
        _ => c.fail(UNSUPPORTED),
    }
}

fn a20(c: &mut Call) -> Outcome {
    let port = inb(c.p, 0x92);
    match c.r.al() {
        0x00 | 0x01 => {
            let v = if c.r.al() == 1 {
                port | 0x02
            } else {
                port & !0x02
            };
            outb(c.p, 0x92, v & !0x01);
            c.ok()
        }
        0x02 => {
            c.set_al((port >> 1) & 1);
            c.ok()
        }
        0x03 => {
            // Supported through the keyboard controller and port 92h.
            c.set_bx(0x0003);
            c.ok()
        }
        _ => c.fail(UNSUPPORTED),
    }
}

/// AH=86h: wait CX:DX microseconds. The stub halts between timer ticks until the time is
/// reached (or polls when the timer interrupt is masked).
fn wait(st: &mut BiosState, c: &mut Call) -> Outcome {
    let now = c.p.now_ns();
    let deadline = *st.wait_until_ns.get_or_insert_with(|| {
        let us = (u64::from(c.r.get16(r::CX)) << 16) | u64::from(c.r.get16(r::DX));
        now.saturating_add(us.saturating_mul(1000))
    });
    if now >= deadline {
        st.wait_until_ns = None;
        return c.ok();
    }
    let timer_masked = inb(c.p, PIC1_DATA) & 0x01 != 0;
    if timer_masked || deadline - now < 1_000_000 {
        Outcome::Retry
    } else {
        Outcome::Wait
    }
}

/// AH=87h: copy CX words between the 24/32-bit bases of the descriptors at ES:SI+10h
/// (source) and ES:SI+18h (destination).
fn block_move(c: &mut Call) -> Outcome {
    let gdt = c.addr(SegReg::Es, c.r.si());
    let d = read_vec(c.p, gdt, 0x20);
    let base = |at: usize| {
        u64::from(d[at + 2])
            | (u64::from(d[at + 3]) << 8)
            | (u64::from(d[at + 4]) << 16)
            | (u64::from(d[at + 7]) << 24)
    };
    let (src, dst) = (base(0x10), base(0x18));
    let len = usize::from(c.r.cx()) * 2;
    let data = read_vec(c.p, src, len);
    c.p.write_mem(dst, &data);
    c.ok()
}

fn e801(st: &BiosState, c: &mut Call) -> Outcome {
    let low = st.low_ram_end.min(16 << 20).saturating_sub(1 << 20) >> 10;
    let high = st.low_ram_end.saturating_sub(16 << 20) >> 16;
    let (low, high) = (low.min(0x3C00) as u16, high.min(0xFFFF) as u16);
    c.set_ax(low);
    c.set_cx(low);
    c.set_bx(high);
    c.set_dx(high);
    c.set_cf(false);
    Outcome::Return
}

/// AX=E820h: EBX = continuation (the entry index), ES:DI = buffer of ECX bytes.
fn e820(st: &BiosState, c: &mut Call) -> Outcome {
    if c.r.get32(r::DX) != SMAP || c.r.get32(r::CX) < 20 {
        return c.fail(UNSUPPORTED);
    }
    let map = e820_map(st);
    let i = c.r.get32(r::BX) as usize;
    let Some(&(base, len, kind)) = map.get(i) else {
        return c.fail(UNSUPPORTED);
    };
    let mut e = [0u8; 24];
    e[0..8].copy_from_slice(&base.to_le_bytes());
    e[8..16].copy_from_slice(&len.to_le_bytes());
    e[16..20].copy_from_slice(&kind.to_le_bytes());
    // ACPI 3.0 extended attributes: bit 0 = the entry is valid.
    e[20] = 1;
    let size = if c.r.get32(r::CX) >= 24 { 24 } else { 20 };
    let at = c.addr(SegReg::Es, c.r.di());
    c.p.write_mem(at, &e[..size]);
    c.set32(r::AX, SMAP);
    c.set32(r::CX, size as u32);
    c.set32(r::BX, if i + 1 < map.len() { (i + 1) as u32 } else { 0 });
    c.set_cf(false);
    Outcome::Return
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(low: u64, high: u64, acpi: Option<(u64, u64)>) -> BiosState {
        BiosState {
            low_ram_end: low,
            high_ram: high,
            acpi,
            ..BiosState::default()
        }
    }

    #[test]
    fn e820_for_small_machine() {
        let map = e820_map(&state(32 << 20, 0, None));
        assert_eq!(
            map,
            vec![
                (0, 0x9_FC00, E820_RAM),
                (0x9_FC00, 0x400, E820_RESERVED),
                (0xE_0000, 0x2_0000, E820_RESERVED),
                (0x10_0000, (32 << 20) - (1 << 20), E820_RAM),
                (0xFFFE_0000, 0x2_0000, E820_RESERVED),
            ]
        );
    }

    #[test]
    fn e820_with_acpi_and_high_memory() {
        let low = 0xE000_0000;
        let map = e820_map(&state(low, 2 << 30, Some((low - 0x1_0000, 0x1_0000))));
        assert!(map.contains(&(0x10_0000, low - 0x1_0000 - 0x10_0000, E820_RAM)));
        assert!(map.contains(&(low - 0x1_0000, 0x1_0000, E820_ACPI)));
        assert_eq!(map.last(), Some(&(1 << 32, 2 << 30, E820_RAM)));
        // Sorted and non-overlapping.
        for w in map.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "{w:?}");
        }
    }
}
