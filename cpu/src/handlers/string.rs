//! String instructions MOVS, CMPS, SCAS, LODS, STOS, INS, OUTS with REP/REPE/REPNE, segment
//! overrides on the source and 16-, 32- or 64-bit addressing (SI/DI/CX, ESI/EDI/ECX or
//! RSI/RDI/RCX).
//!
//! A repeated instruction runs at most `REP_CHUNK` iterations per step and then leaves the
//! instruction pointer on itself, so that interrupts are taken between chunks; every
//! iteration counts as one retired instruction. With TF set each iteration traps.

use crate::fault::Exec;
use crate::flags::{size_mask, FlagOp};
use crate::state::{rflags, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, OpKind};

/// Iterations of a REP instruction per step.
pub const REP_CHUNK: u64 = 4096;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Movs,
    Cmps,
    Scas,
    Lods,
    Stos,
    Ins,
    Outs,
}

/// What one string operation works with.
struct Ctx {
    size: u8,
    asize: u8,
    delta: u64,
    src: SegReg,
    port: u16,
}

/// Address size of a string instruction from its implicit memory operands.
fn addr_size(i: &Instruction) -> u8 {
    for n in 0..i.op_count() {
        match i.op_kind(n) {
            OpKind::MemorySegSI | OpKind::MemoryESDI => return 2,
            OpKind::MemorySegESI | OpKind::MemoryESEDI => return 4,
            OpKind::MemorySegRSI | OpKind::MemoryESRDI => return 8,
            _ => {}
        }
    }
    2
}

impl Ctx {
    fn advance(&self, cpu: &mut Cpu, reg: usize) {
        let v = cpu.gpr(reg, self.asize).wrapping_add(self.delta) & size_mask(self.asize);
        cpu.set_gpr(reg, self.asize, v);
    }
}

/// One iteration; commits its register updates only when it cannot fault any more.
fn once(cpu: &mut Cpu, bus: &mut dyn Bus, k: Kind, c: &Ctx) -> Exec {
    let si = cpu.gpr(6, c.asize);
    let di = cpu.gpr(7, c.asize);
    let m = size_mask(c.size);
    match k {
        Kind::Movs => {
            let v = cpu.read_mem(bus, c.src, si, c.size)?;
            cpu.write_mem(bus, SegReg::Es, di, c.size, v)?;
            c.advance(cpu, 6);
            c.advance(cpu, 7);
        }
        Kind::Cmps => {
            let a = cpu.read_mem(bus, c.src, si, c.size)?;
            let b = cpu.read_mem(bus, SegReg::Es, di, c.size)?;
            cpu.set_lazy(FlagOp::Sub, c.size, a, b, a.wrapping_sub(b) & m);
            c.advance(cpu, 6);
            c.advance(cpu, 7);
        }
        Kind::Scas => {
            let a = cpu.gpr(0, c.size);
            let b = cpu.read_mem(bus, SegReg::Es, di, c.size)?;
            cpu.set_lazy(FlagOp::Sub, c.size, a, b, a.wrapping_sub(b) & m);
            c.advance(cpu, 7);
        }
        Kind::Lods => {
            let v = cpu.read_mem(bus, c.src, si, c.size)?;
            cpu.set_gpr(0, c.size, v);
            c.advance(cpu, 6);
        }
        Kind::Stos => {
            let v = cpu.gpr(0, c.size);
            cpu.write_mem(bus, SegReg::Es, di, c.size, v)?;
            c.advance(cpu, 7);
        }
        Kind::Ins => {
            // The port read has side effects: make sure the store will succeed first.
            cpu.probe_write(bus, SegReg::Es, di, c.size)?;
            let v = cpu.port_in(bus, c.port, c.size);
            cpu.write_mem(bus, SegReg::Es, di, c.size, u64::from(v))?;
            c.advance(cpu, 7);
        }
        Kind::Outs => {
            let v = cpu.read_mem(bus, c.src, si, c.size)?;
            cpu.port_out(bus, c.port, c.size, v as u32);
            c.advance(cpu, 6);
        }
    }
    Ok(())
}

fn run(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction, k: Kind) -> Exec {
    let size = i.memory_size().size() as u8;
    let flags = cpu.flags();
    let delta = if flags & rflags::DF != 0 {
        0u64.wrapping_sub(u64::from(size))
    } else {
        u64::from(size)
    };
    let c = Ctx {
        size,
        asize: addr_size(i),
        delta,
        src: SegReg::from_iced(i.memory_segment()).unwrap_or(SegReg::Ds),
        port: cpu.gpr(2, 2) as u16,
    };
    if matches!(k, Kind::Ins | Kind::Outs) {
        cpu.check_io(bus, c.port, size)?;
    }
    let rep = i.has_rep_prefix() || i.has_repne_prefix();
    if !rep {
        return once(cpu, bus, k, &c);
    }
    // CMPS/SCAS stop when ZF disagrees with the prefix (REPE: ZF=0 stops, REPNE: ZF=1 stops).
    let conditional = matches!(k, Kind::Cmps | Kind::Scas);
    let stop_on_zf = i.has_repne_prefix();
    let chunk = if flags & rflags::TF != 0 {
        1
    } else {
        REP_CHUNK
    };
    let mut done = 0u64;
    loop {
        let count = cpu.gpr(1, c.asize);
        if count == 0 {
            break;
        }
        if done == chunk {
            // Come back to this instruction: pending interrupts are taken in between.
            cpu.next_ip = cpu.s.rip;
            break;
        }
        // Completed iterations are retired as they go (device time stays exact); the
        // step itself retires one more, taken back below.
        once(cpu, bus, k, &c)?;
        done += 1;
        cpu.retired += 1;
        cpu.set_gpr(1, c.asize, count.wrapping_sub(1));
        if conditional && (cpu.flags() & rflags::ZF != 0) == stop_on_zf {
            break;
        }
    }
    if done > 0 {
        cpu.retired -= 1;
    }
    Ok(())
}

fn movs(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Movs)
}
fn cmps(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Cmps)
}
fn scas(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Scas)
}
fn lods(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Lods)
}
fn stos(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Stos)
}
fn ins(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Ins)
}
fn outs(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    run(cpu, bus, i, Kind::Outs)
}

pub(crate) fn register(t: &mut TableBuilder) {
    // A REP instruction may come back to itself, so each ends a translated block.
    let p = Meta::branch(Isa::I8086);
    t.add(
        &[Code::Movsb_m8_m8, Code::Movsw_m16_m16, Code::Movsd_m32_m32],
        movs,
        p,
    );
    t.add(
        &[Code::Cmpsb_m8_m8, Code::Cmpsw_m16_m16, Code::Cmpsd_m32_m32],
        cmps,
        p,
    );
    t.add(
        &[Code::Scasb_AL_m8, Code::Scasw_AX_m16, Code::Scasd_EAX_m32],
        scas,
        p,
    );
    t.add(
        &[Code::Lodsb_AL_m8, Code::Lodsw_AX_m16, Code::Lodsd_EAX_m32],
        lods,
        p,
    );
    t.add(
        &[Code::Stosb_m8_AL, Code::Stosw_m16_AX, Code::Stosd_m32_EAX],
        stos,
        p,
    );
    let q = Meta::branch(Isa::X64);
    t.add(&[Code::Movsq_m64_m64], movs, q);
    t.add(&[Code::Cmpsq_m64_m64], cmps, q);
    t.add(&[Code::Scasq_RAX_m64], scas, q);
    t.add(&[Code::Lodsq_RAX_m64], lods, q);
    t.add(&[Code::Stosq_m64_RAX], stos, q);
    let io = Meta::branch(Isa::I186);
    t.add(
        &[Code::Insb_m8_DX, Code::Insw_m16_DX, Code::Insd_m32_DX],
        ins,
        io,
    );
    t.add(
        &[Code::Outsb_DX_m8, Code::Outsw_DX_m16, Code::Outsd_DX_m32],
        outs,
        io,
    );
}

#[cfg(test)]
mod tests {
    use super::REP_CHUNK;
    use crate::handlers::alu::tests::run_real_with;
    use crate::state::rflags;

    #[test]
    fn rep_movsb_copies_and_counts() {
        // mov si,0x2000 ; mov di,0x3000 ; mov cx,5 ; rep movsb
        let code = [
            0xbe, 0x00, 0x20, 0xbf, 0x00, 0x30, 0xb9, 0x05, 0x00, 0xf3, 0xa4,
        ];
        let (cpu, bus) = run_real_with(&code, 4, |_, bus| bus.load(0x2000, b"hello"));
        assert_eq!(&bus.ram()[0x3000..0x3005], b"hello");
        assert_eq!(cpu.s.gpr[1] & 0xffff, 0);
        assert_eq!(cpu.s.rip, 0x100b);
        assert_eq!(cpu.retired, 3 + 5);
    }

    #[test]
    fn repe_cmpsb_stops_on_difference() {
        // mov si,0x2000 ; mov di,0x3000 ; mov cx,10 ; repe cmpsb
        let code = [
            0xbe, 0x00, 0x20, 0xbf, 0x00, 0x30, 0xb9, 0x0a, 0x00, 0xf3, 0xa6,
        ];
        let (cpu, _) = run_real_with(&code, 4, |_, bus| {
            bus.load(0x2000, b"abcX");
            bus.load(0x3000, b"abcY");
        });
        assert_eq!(cpu.s.gpr[1] & 0xffff, 6);
        assert_eq!(cpu.s.gpr[6] & 0xffff, 0x2004);
        assert_eq!(cpu.flags() & rflags::ZF, 0);
    }

    #[test]
    fn rep_stos_is_interruptible_between_chunks() {
        // mov sp,0x8000 ; sti ; mov cx,0x2000 ; mov di,0x9000 ; rep stosb ; IVT[0x20] = 0000:0500
        let code = [
            0xbc, 0x00, 0x80, 0xfb, 0xb9, 0x00, 0x20, 0xbf, 0x00, 0x90, 0xf3, 0xaa,
        ];
        let (mut cpu, mut bus) =
            run_real_with(&code, 5, |_, bus| bus.load(0x80, &[0x00, 0x05, 0x00, 0x00]));
        // One chunk done: IP still on the REP STOSB, CX counted down by the chunk.
        assert_eq!(cpu.s.rip, 0x100a);
        assert_eq!(cpu.s.gpr[1] & 0xffff, 0x2000 - REP_CHUNK);
        bus.pending_irq = Some(0x20);
        cpu.step(&mut bus);
        assert_eq!(cpu.s.rip, 0x0500);
        // The interrupt frame returns to the REP instruction.
        assert_eq!(&bus.ram()[0x7ffa..0x7ffc], &[0x0a, 0x10]);
    }

    #[test]
    fn movs_honours_segment_override_and_df() {
        // std ; mov si,0x2001 ; mov di,0x3001 ; es movsw (ES = 0, source ES:SI) -> copies 0x2001..
        let code = [0xfd, 0xbe, 0x01, 0x20, 0xbf, 0x01, 0x30, 0x26, 0xa5];
        let (cpu, bus) = run_real_with(&code, 4, |_, bus| bus.load(0x2001, &[0x11, 0x22]));
        assert_eq!(&bus.ram()[0x3001..0x3003], &[0x11, 0x22]);
        assert_eq!(cpu.s.gpr[6] & 0xffff, 0x1fff);
        assert_eq!(cpu.s.gpr[7] & 0xffff, 0x2fff);
    }
}
