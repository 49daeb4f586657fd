//! Memory operands wider than 8 bytes (m80, environments, FSAVE and FXSAVE areas), moved in
//! 8/4/2/1-byte pieces with every piece checked before anything is written, and the opcode
//! bits FOP records.

use crate::fault::Exec;
use crate::paging::AccessKind;
use crate::state::SegReg;
use crate::{Bus, Cpu};
use iced_x86::Instruction;

/// Pieces (offset, size) covering `len` bytes.
fn pieces(len: usize) -> impl Iterator<Item = (usize, u8)> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let left = len.checked_sub(at).filter(|&l| l > 0)?;
        let size = [8usize, 4, 2, 1]
            .into_iter()
            .find(|&s| s <= left)
            .unwrap_or(1);
        let piece = (at, size as u8);
        at += size;
        Some(piece)
    })
}

pub(super) fn read_bytes(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: SegReg,
    off: u64,
    buf: &mut [u8],
) -> Exec {
    for (at, size) in pieces(buf.len()) {
        let v = cpu.read_mem(bus, seg, off.wrapping_add(at as u64), size)?;
        let n = usize::from(size);
        buf[at..at + n].copy_from_slice(&v.to_le_bytes()[..n]);
    }
    Ok(())
}

/// Fault now if any byte of `seg:off..off+len` cannot be written.
pub(super) fn probe_bytes(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: SegReg,
    off: u64,
    len: usize,
) -> Exec {
    for (at, size) in pieces(len) {
        cpu.probe_write(bus, seg, off.wrapping_add(at as u64), size)?;
    }
    Ok(())
}

/// Write `data` at `seg:off`, all pieces checked first.
pub(super) fn write_bytes(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: SegReg,
    off: u64,
    data: &[u8],
) -> Exec {
    probe_bytes(cpu, bus, seg, off, data.len())?;
    for (at, size) in pieces(data.len()) {
        let n = usize::from(size);
        let mut v = [0u8; 8];
        v[..n].copy_from_slice(&data[at..at + n]);
        cpu.write_mem(
            bus,
            seg,
            off.wrapping_add(at as u64),
            size,
            u64::from_le_bytes(v),
        )?;
    }
    Ok(())
}

/// FOP: the low three bits of the escape opcode (D8..DF) and the ModRM byte, read back
/// from the instruction bytes (prefixes skipped).
pub(super) fn opcode_bits(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> u16 {
    let cs = cpu.s.seg(SegReg::Cs).base;
    let lin = cs.wrapping_add(cpu.s.rip) & cpu.lin_mask();
    let mut b = [0u8; 15];
    let n = i.len().min(15);
    let user = cpu.user_access();
    if cpu
        .read_linear(bus, lin, &mut b[..n], AccessKind::Execute, user)
        .is_err()
    {
        return 0;
    }
    let rex = cpu.s.code_bitness() == 64;
    let at = b[..n].iter().position(|&x| {
        let prefix = matches!(
            x,
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0x9b | 0xf0 | 0xf2 | 0xf3
        );
        !(prefix || rex && (0x40..=0x4f).contains(&x))
    });
    match at {
        Some(k) if k + 1 < n => u16::from(b[k] & 7) << 8 | u16::from(b[k + 1]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::pieces;

    #[test]
    fn pieces_cover_exactly() {
        let v: Vec<_> = pieces(14).collect();
        assert_eq!(v, [(0, 8), (8, 4), (12, 2)]);
        assert_eq!(pieces(10).map(|p| usize::from(p.1)).sum::<usize>(), 10);
        assert_eq!(pieces(0).count(), 0);
    }
}
