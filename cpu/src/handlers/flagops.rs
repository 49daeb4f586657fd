//! Flag instructions: CLC/STC/CMC, CLD/STD, CLI/STI (IOPL-sensitive, with the VME/PVI
//! virtual interrupt flag), LAHF/SAHF and the undocumented SALC.

use crate::fault::{Exec, Fault};
use crate::state::{cr4, rflags};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction};

fn flag_op(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let f = cpu.flags();
    let f = match i.code() {
        Code::Clc => f & !rflags::CF,
        Code::Stc => f | rflags::CF,
        Code::Cmc => f ^ rflags::CF,
        Code::Cld => f & !rflags::DF,
        _ => f | rflags::DF,
    };
    cpu.set_flags(f);
    Ok(())
}

/// How CLI/STI act at the current privilege: on IF, on VIF, or not at all.
enum IfTarget {
    If,
    Vif,
}

fn if_target(cpu: &Cpu) -> Exec<IfTarget> {
    let s = &cpu.s;
    if !s.protected_mode() {
        return Ok(IfTarget::If);
    }
    if s.v86_mode() {
        if s.iopl() == 3 {
            return Ok(IfTarget::If);
        }
        if s.cr4 & cr4::VME != 0 {
            return Ok(IfTarget::Vif);
        }
        return Err(Fault::gp(0));
    }
    if s.cpl() <= s.iopl() {
        return Ok(IfTarget::If);
    }
    if s.cpl() == 3 && s.cr4 & cr4::PVI != 0 {
        return Ok(IfTarget::Vif);
    }
    Err(Fault::gp(0))
}

fn cli(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let f = cpu.flags();
    let bit = match if_target(cpu)? {
        IfTarget::If => rflags::IF,
        IfTarget::Vif => rflags::VIF,
    };
    cpu.set_flags(f & !bit);
    Ok(())
}

fn sti(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let f = cpu.flags();
    match if_target(cpu)? {
        IfTarget::If => {
            // Interrupts stay blocked for one more instruction only when STI enabled them.
            if f & rflags::IF == 0 {
                cpu.s.events.interrupt_shadow = true;
            }
            cpu.set_flags(f | rflags::IF);
        }
        IfTarget::Vif => {
            if f & rflags::VIP != 0 {
                return Err(Fault::gp(0));
            }
            cpu.set_flags(f | rflags::VIF);
        }
    }
    Ok(())
}

/// The five flags LAHF/SAHF move (SF, ZF, AF, PF, CF).
const AH_FLAGS: u64 = rflags::SF | rflags::ZF | rflags::AF | rflags::PF | rflags::CF;

fn lahf(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let f = (cpu.flags() & AH_FLAGS) | rflags::FIXED1;
    cpu.s.gpr[0] = (cpu.s.gpr[0] & !0xff00) | (f << 8);
    Ok(())
}

fn sahf(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let ah = (cpu.s.gpr[0] >> 8) & 0xff;
    let f = cpu.flags();
    cpu.set_flags((f & !AH_FLAGS) | (ah & AH_FLAGS));
    Ok(())
}

/// SALC (D6): AL = CF ? FF : 00. Undocumented, present on every Intel CPU outside 64-bit mode.
fn salc(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    let v = if cpu.flags() & rflags::CF != 0 {
        0xff
    } else {
        0
    };
    cpu.set_gpr(0, 1, v);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let p = Meta::plain(Isa::I8086);
    t.add(
        &[Code::Clc, Code::Stc, Code::Cmc, Code::Cld, Code::Std],
        flag_op,
        p,
    );
    t.add(&[Code::Cli], cli, Meta::branch(Isa::I8086));
    t.add(&[Code::Sti], sti, Meta::branch(Isa::I8086));
    t.add(&[Code::Lahf], lahf, p);
    t.add(&[Code::Sahf], sahf, p);
    t.add(&[Code::Salc], salc, p);
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::run_real;
    use crate::state::rflags;

    #[test]
    fn sahf_lahf_round_trip() {
        // mov ah,0xff ; sahf ; mov ah,0 ; lahf
        let (cpu, _) = run_real(&[0xb4, 0xff, 0x9e, 0xb4, 0x00, 0x9f], 4);
        assert_eq!((cpu.s.gpr[0] >> 8) & 0xff, 0xd7);
        assert_eq!(cpu.flags() & rflags::ARITH, rflags::ARITH & !rflags::OF);
    }

    #[test]
    fn sti_shadow_only_when_if_was_clear() {
        // sti ; sti
        let (cpu, _) = run_real(&[0xfb], 1);
        assert!(cpu.s.events.interrupt_shadow);
        let (cpu, _) = run_real(&[0xfb, 0xfb], 2);
        assert!(!cpu.s.events.interrupt_shadow);
    }

    #[test]
    fn cli_sti_privilege() {
        use crate::fault::Fault;
        use crate::handlers::alu::tests::exec16;
        use crate::state::{cr0, cr4};
        let mut bus = crate::testbus::FlatBus::new(1 << 16);
        let mut cpu = crate::Cpu::new();
        cpu.s.cr0 |= cr0::PE;
        cpu.set_flags(rflags::VM | rflags::IF);
        // V86, IOPL 0, no VME: #GP.
        assert_eq!(exec16(&mut cpu, &mut bus, &[0xfa]), Err(Fault::gp(0)));
        // VME: CLI clears VIF, STI sets it unless VIP is pending.
        cpu.s.cr4 |= cr4::VME;
        cpu.set_flags(rflags::VM | rflags::IF | rflags::VIF);
        assert_eq!(exec16(&mut cpu, &mut bus, &[0xfa]), Ok(()));
        assert_eq!(cpu.flags() & (rflags::IF | rflags::VIF), rflags::IF);
        assert_eq!(exec16(&mut cpu, &mut bus, &[0xfb]), Ok(()));
        assert_ne!(cpu.flags() & rflags::VIF, 0);
        cpu.set_flags(rflags::VM | rflags::VIP);
        assert_eq!(exec16(&mut cpu, &mut bus, &[0xfb]), Err(Fault::gp(0)));
        // IOPL 3: the real IF.
        cpu.set_flags(rflags::VM | rflags::IOPL);
        assert_eq!(exec16(&mut cpu, &mut bus, &[0xfb]), Ok(()));
        assert_ne!(cpu.flags() & rflags::IF, 0);
        assert!(cpu.s.events.interrupt_shadow);
    }

    #[test]
    fn salc_copies_carry() {
        // stc ; salc
        let (cpu, _) = run_real(&[0xf9, 0xd6], 2);
        assert_eq!(cpu.s.gpr[0] & 0xff, 0xff);
    }
}
