//! Port I/O: IN/OUT with an imm8 or DX port, and the protected-mode permission check shared
//! with INS/OUTS (IOPL, then the I/O permission bitmap of a 32-bit TSS).

use crate::fault::{Exec, Fault};
use crate::operand::op_size;
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, OpKind};

/// Offset of the I/O map base field in a 32-bit TSS.
const IOMAP_BASE_FIELD: u64 = 0x66;

impl Cpu {
    /// May the current code access `size` bytes of ports starting at `port`? In protected
    /// mode with CPL > IOPL, and always in virtual-8086 mode, every bit for those ports in
    /// the TSS I/O bitmap must be clear; bits beyond the TSS limit deny.
    pub(crate) fn check_io(&mut self, bus: &mut dyn Bus, port: u16, size: u8) -> Exec {
        let s = &self.s;
        if !s.protected_mode() || (!s.v86_mode() && s.cpl() <= s.iopl()) {
            return Ok(());
        }
        let tr = s.tr;
        let typ = tr.attr & crate::state::attr::TYPE_MASK;
        // Only an available/busy 32-bit TSS has a bitmap.
        if !tr.present() || tr.attr & crate::state::attr::S != 0 || (typ != 9 && typ != 11) {
            return Err(Fault::gp(0));
        }
        if u64::from(tr.limit) < IOMAP_BASE_FIELD + 1 {
            return Err(Fault::gp(0));
        }
        let base = self.read_sys(bus, tr.base.wrapping_add(IOMAP_BASE_FIELD), 2)?;
        let at = base + u64::from(port / 8);
        // An access whose bits straddle a byte boundary needs the following byte too.
        let last = if u32::from(port & 7) + u32::from(size) > 8 {
            at + 1
        } else {
            at
        };
        if last > u64::from(tr.limit) {
            return Err(Fault::gp(0));
        }
        let bits = self.read_sys(bus, tr.base.wrapping_add(at), if last > at { 2 } else { 1 })?;
        let mask = ((1u64 << size) - 1) << (port & 7);
        if bits & mask != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }
}

/// The port operand (imm8 or DX) of IN/OUT.
fn port_of(cpu: &Cpu, i: &Instruction, n: u32) -> u16 {
    if i.op_kind(n) == OpKind::Register {
        cpu.gpr(2, 2) as u16
    } else {
        u16::from(i.immediate8())
    }
}

fn in_(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 0);
    let port = port_of(cpu, i, 1);
    cpu.check_io(bus, port, size)?;
    let v = cpu.port_in(bus, port, size);
    cpu.set_gpr(0, size, u64::from(v));
    Ok(())
}

fn out(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let size = op_size(i, 1);
    let port = port_of(cpu, i, 0);
    cpu.check_io(bus, port, size)?;
    let v = cpu.gpr(0, size) as u32;
    cpu.port_out(bus, port, size, v);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let p = Meta::plain(Isa::I8086);
    t.add(
        &[
            Code::In_AL_imm8,
            Code::In_AX_imm8,
            Code::In_EAX_imm8,
            Code::In_AL_DX,
            Code::In_AX_DX,
            Code::In_EAX_DX,
        ],
        in_,
        p,
    );
    t.add(
        &[
            Code::Out_imm8_AL,
            Code::Out_imm8_AX,
            Code::Out_imm8_EAX,
            Code::Out_DX_AL,
            Code::Out_DX_AX,
            Code::Out_DX_EAX,
        ],
        out,
        p,
    );
}

#[cfg(test)]
mod tests {
    use crate::state::{attr, cr0, rflags, SegReg, Segment};
    use crate::testbus::FlatBus;
    use crate::Cpu;

    /// A CPU in V86 mode (IOPL 0) with a 32-bit TSS at 0x8000 whose bitmap starts at 0x68
    /// and denies port 0x61 only; the TSS limit covers the bitmap up to port 0x7f.
    fn v86_with_bitmap() -> (Cpu, FlatBus) {
        let mut bus = FlatBus::new(1 << 20);
        let mut cpu = Cpu::new();
        bus.load(0x8000 + 0x66, &[0x68, 0x00]);
        bus.load(0x8000 + 0x68 + 0x0c, &[0x02]);
        cpu.s.tr = Segment {
            base: 0x8000,
            limit: 0x68 + 0x0f,
            selector: 0x28,
            attr: attr::P | 11,
        };
        cpu.s.cr0 |= cr0::PE;
        cpu.set_flags(rflags::VM);
        for s in SegReg::ALL {
            cpu.s.seg[s as usize] = Segment {
                attr: attr::REAL_DATA | 3 << attr::DPL_SHIFT,
                ..Segment::real_mode(0)
            };
        }
        (cpu, bus)
    }

    #[test]
    fn bitmap_allows_and_denies() {
        let (mut cpu, mut bus) = v86_with_bitmap();
        assert!(cpu.check_io(&mut bus, 0x60, 1).is_ok());
        assert!(cpu.check_io(&mut bus, 0x61, 1).is_err());
        // A word access at 0x60 covers 0x61 too.
        assert!(cpu.check_io(&mut bus, 0x60, 2).is_err());
        // Ports whose bits lie beyond the TSS limit are denied.
        assert!(cpu.check_io(&mut bus, 0x80, 1).is_err());
        assert!(cpu.check_io(&mut bus, 0x3f8, 1).is_err());
    }

    #[test]
    fn denied_out_faults_without_io() {
        let (mut cpu, mut bus) = v86_with_bitmap();
        // IVT is not used in V86: the #GP goes through the IDT; only check that no port write happens.
        bus.load(0x1000, &[0xe6, 0x61]);
        cpu.s.rip = 0x1000;
        cpu.step(&mut bus);
        assert!(bus.port_writes.is_empty());
        bus.load(0x1002, &[0xe6, 0x60]);
        let (mut cpu, _) = v86_with_bitmap();
        cpu.s.rip = 0x1002;
        cpu.step(&mut bus);
        assert_eq!(bus.port_writes, vec![(0x60, 1, 0)]);
    }
}
