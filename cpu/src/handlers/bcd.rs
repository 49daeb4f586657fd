//! Decimal adjust: DAA, DAS, AAA, AAS, AAM (#DE for a zero base), AAD.
//!
//! Undefined flags follow modern Intel hardware: DAA/DAS clear OF; AAA/AAS clear OF and SF
//! and set ZF and PF from the final AL; AAM clears OF, AF and CF; AAD sets OF, AF and CF as
//! the 8-bit addition `AL + AH * base` does.

use crate::fault::{Exec, Fault};
use crate::flags::{szp, FlagOp};
use crate::state::rflags::{AF, ARITH, CF};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction};

fn set_arith(cpu: &mut Cpu, flags: u64) {
    let f = cpu.flags();
    cpu.set_flags((f & !ARITH) | flags);
}

/// DAA / DAS (the Intel SDM algorithm).
fn daa_das(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let f = cpu.flags();
    let old_al = cpu.gpr(0, 1);
    let old_cf = f & CF != 0;
    let sub = i.code() == Code::Das;
    let mut al = old_al;
    let mut cf = false;
    let mut af = false;
    if al & 0x0f > 9 || f & AF != 0 {
        let borrow_or_carry = if sub { al < 6 } else { al > 0xf9 };
        al = if sub {
            al.wrapping_sub(6)
        } else {
            al.wrapping_add(6)
        } & 0xff;
        cf = old_cf || borrow_or_carry;
        af = true;
    }
    if old_al > 0x99 || old_cf {
        al = if sub {
            al.wrapping_sub(0x60)
        } else {
            al.wrapping_add(0x60)
        } & 0xff;
        cf = true;
    } else if !sub {
        cf = false;
    }
    cpu.set_gpr(0, 1, al);
    set_arith(
        cpu,
        szp(al, 1) | if cf { CF } else { 0 } | if af { AF } else { 0 },
    );
    Ok(())
}

/// AAA / AAS: adjust AL after an unpacked-BCD add/subtract, carrying into AH.
fn aaa_aas(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let f = cpu.flags();
    let ax = cpu.gpr(0, 2);
    let adjust = ax & 0x0f > 9 || f & AF != 0;
    let ax = if !adjust {
        ax
    } else if i.code() == Code::Aaa {
        ax.wrapping_add(0x106)
    } else {
        ax.wrapping_sub(6).wrapping_sub(0x100)
    };
    let ax = ax & 0xff0f;
    cpu.set_gpr(0, 2, ax);
    // SF and OF cleared, ZF/PF from the final AL.
    let zp = szp(ax & 0xff, 1) & !crate::state::rflags::SF;
    set_arith(cpu, zp | if adjust { AF | CF } else { 0 });
    Ok(())
}

fn aam(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let base = u64::from(i.immediate8());
    if base == 0 {
        return Err(Fault::DE);
    }
    let al = cpu.gpr(0, 1);
    let r = al % base;
    cpu.set_gpr(0, 2, (al / base) << 8 | r);
    set_arith(cpu, szp(r, 1));
    Ok(())
}

fn aad(cpu: &mut Cpu, _bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let base = u64::from(i.immediate8());
    let (al, ah) = (cpu.gpr(0, 1), (cpu.gpr(0, 2) >> 8) & 0xff);
    let prod = (ah * base) & 0xff;
    let r = (al + prod) & 0xff;
    cpu.set_gpr(0, 2, r);
    cpu.set_lazy(FlagOp::Add, 1, al, prod, r);
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    let p = Meta::plain(Isa::I8086);
    t.add(&[Code::Daa, Code::Das], daa_das, p);
    t.add(&[Code::Aaa, Code::Aas], aaa_aas, p);
    t.add(&[Code::Aam_imm8], aam, p);
    t.add(&[Code::Aad_imm8], aad, p);
}

#[cfg(test)]
mod tests {
    use crate::handlers::alu::tests::run_real;
    use crate::state::rflags;

    #[test]
    fn daa_after_add() {
        // mov al,0x79 ; add al,0x35 ; daa -> 0x14, CF
        let (cpu, _) = run_real(&[0xb0, 0x79, 0x04, 0x35, 0x27], 3);
        assert_eq!(cpu.s.gpr[0] & 0xff, 0x14);
        assert_ne!(cpu.flags() & rflags::CF, 0);
    }

    #[test]
    fn aam_zero_is_divide_error() {
        let (cpu, _) = crate::handlers::alu::tests::run_real_with(
            &[0xbc, 0x00, 0x20, 0xd4, 0x00],
            2,
            |_, bus| bus.load(0, &[0x00, 0x30, 0x00, 0x00]),
        );
        assert_eq!(cpu.s.rip, 0x3000);
    }

    #[test]
    fn aad_and_aaa() {
        // mov ax,0x0207 ; aad -> AX = 27 (0x1b)
        let (cpu, _) = run_real(&[0xb8, 0x07, 0x02, 0xd5, 0x0a], 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x1b);
        // mov ax,0x000b ; aaa -> AX = 0x0101
        let (cpu, _) = run_real(&[0xb8, 0x0b, 0x00, 0x37], 2);
        assert_eq!(cpu.s.gpr[0] & 0xffff, 0x0101);
    }
}
