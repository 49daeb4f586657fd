//! x87 control instructions: FLDCW, FSTCW, FSTSW, FCLEX, FINIT, FLDENV, FSTENV, FSAVE,
//! FRSTOR, FXSAVE, FXRSTOR, WAIT, and the 8087/287 control no-ops. They leave the last
//! instruction and data pointers alone. The iced `F...` forms without N are WAIT + FN...
//! (iced decodes a separate 9B as WAIT by default; the fused forms are handled all the same).

use super::{enter, mem, pending};
use crate::fault::{Exec, Fault};
use crate::state::cr0;
use crate::table::{Isa, Meta, TableBuilder};
use crate::x87::env::{self, EnvFormat};
use crate::x87::{fcw, fsw};
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic};
use Mnemonic as M;

/// WAIT's own checks: #NM when CR0.MP and CR0.TS are both set, then a pending exception.
fn wait_part(cpu: &mut Cpu) -> Exec<bool> {
    if cpu.s.cr0 & (cr0::MP | cr0::TS) == cr0::MP | cr0::TS {
        return Err(Fault::NM);
    }
    pending(cpu)
}

/// Start of a control instruction: the fused WAIT (if any), then the ESC checks.
fn begin(cpu: &mut Cpu, waiting: bool) -> Exec<bool> {
    if waiting && !wait_part(cpu)? {
        return Ok(false);
    }
    enter(cpu, false)
}

/// Does this form carry the WAIT (FSTCW vs FNSTCW...)? FLDCW, FLDENV, FRSTOR wait too.
fn waits(i: &Instruction) -> bool {
    !matches!(
        i.mnemonic(),
        M::Fnstcw
            | M::Fnstsw
            | M::Fnclex
            | M::Fninit
            | M::Fnstenv
            | M::Fnsave
            | M::Fxsave
            | M::Fxsave64
            | M::Fxrstor
            | M::Fxrstor64
            | M::Fneni
            | M::Fndisi
            | M::Fnsetpm
    )
}

fn wait(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    wait_part(cpu).map(|_| ())
}

/// FLDCW, FSTCW/FNSTCW, FSTSW/FNSTSW (memory and AX), FCLEX/FNCLEX, FINIT/FNINIT, no-ops.
fn control_word(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !begin(cpu, waits(i))? {
        return Ok(());
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    match i.mnemonic() {
        M::Fldcw => {
            let v = cpu.read_mem(bus, seg, off, 2)? as u16;
            let x = &mut cpu.s.x87;
            x.fcw = (v & 0x1f3f) | fcw::RESERVED1;
            x.update_summary();
        }
        M::Fstcw | M::Fnstcw => cpu.write_mem(bus, seg, off, 2, u64::from(cpu.s.x87.fcw))?,
        M::Fstsw | M::Fnstsw if i.op_count() == 1 && i.op0_kind() == iced_x86::OpKind::Register => {
            cpu.set_gpr(0, 2, u64::from(cpu.s.x87.fsw));
        }
        M::Fstsw | M::Fnstsw => cpu.write_mem(bus, seg, off, 2, u64::from(cpu.s.x87.fsw))?,
        M::Fclex | M::Fnclex => {
            let x = &mut cpu.s.x87;
            x.fsw &= !(0x3f | fsw::SF | fsw::ES | fsw::B);
            x.update_summary();
        }
        M::Finit | M::Fninit => cpu.s.x87.init(),
        // FENI/FDISI (8087) and FSETPM (287) do nothing on a 387 or later.
        _ => {}
    }
    Ok(())
}

fn env_format(cpu: &Cpu, i: &Instruction) -> EnvFormat {
    let size = i.memory_size().size();
    EnvFormat {
        op32: size == 28 || size == 108,
        protected: cpu.s.protected_mode() && !cpu.s.v86_mode(),
    }
}

/// FLDENV, FSTENV/FNSTENV, FRSTOR, FSAVE/FNSAVE.
fn environment(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !begin(cpu, waits(i))? {
        return Ok(());
    }
    let f = env_format(cpu, i);
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    match i.mnemonic() {
        M::Fldenv | M::Frstor => {
            let mut b = vec![0u8; i.memory_size().size()];
            mem::read_bytes(cpu, bus, seg, off, &mut b)?;
            let x = &mut cpu.s.x87;
            if i.mnemonic() == M::Fldenv {
                env::load_env(x, f, &b);
            } else {
                env::load_all(x, f, &b);
            }
            x.fcw = (x.fcw & 0x1f3f) | fcw::RESERVED1;
            x.update_summary();
        }
        M::Fstenv | M::Fnstenv => {
            let b = env::save_env(&cpu.s.x87, f);
            mem::write_bytes(cpu, bus, seg, off, &b)?;
            // After storing, all exceptions are masked (SDM FSTENV).
            cpu.s.x87.fcw |= 0x3f;
        }
        _ => {
            let b = env::save_all(&cpu.s.x87, f);
            mem::write_bytes(cpu, bus, seg, off, &b)?;
            cpu.s.x87.init();
        }
    }
    Ok(())
}

/// XMM registers in the FXSAVE area: XMM8..15 only in 64-bit mode.
fn xmm_count(cpu: &Cpu) -> usize {
    if cpu.s.long64() {
        16
    } else {
        8
    }
}

/// FXSAVE/FXRSTOR (and the REX.W forms): 16-byte aligned 512-byte area, #GP(0) otherwise.
fn fxsave(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    if !begin(cpu, false)? {
        return Ok(());
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    if cpu.s.seg(seg).base.wrapping_add(off) & 15 != 0 {
        return Err(Fault::gp(0));
    }
    let rex_w = matches!(i.code(), Code::Fxsave64_m512byte | Code::Fxrstor64_m512byte);
    if matches!(i.mnemonic(), M::Fxsave | M::Fxsave64) {
        // The whole area must be writable; XMM registers follow the x87 part at byte 160.
        mem::probe_bytes(cpu, bus, seg, off, 512)?;
        let mut b = env::fxsave(&cpu.s.x87, rex_w).to_vec();
        for r in &cpu.s.xmm[..xmm_count(cpu)] {
            b.extend_from_slice(&r.to_le_bytes());
        }
        mem::write_bytes(cpu, bus, seg, off, &b)?;
    } else {
        let mut b = vec![0u8; 512];
        mem::read_bytes(cpu, bus, seg, off, &mut b)?;
        let x = &mut cpu.s.x87;
        let mut new = x.clone();
        env::fxrstor(&mut new, &b, rex_w).ok_or(Fault::gp(0))?;
        *x = new;
        x.update_summary();
        for (k, c) in b[env::FX_X87_BYTES..]
            .chunks_exact(16)
            .take(xmm_count(cpu))
            .enumerate()
        {
            let mut r = [0u8; 16];
            r.copy_from_slice(c);
            cpu.s.xmm[k] = u128::from_le_bytes(r);
        }
    }
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    let fpu = Meta::plain(Isa::I386);
    t.add(&[C::Wait], wait, Meta::plain(Isa::I8086));
    t.add(
        &[
            C::Fldcw_m2byte,
            C::Fnstcw_m2byte,
            C::Fstcw_m2byte,
            C::Fnstsw_m2byte,
            C::Fstsw_m2byte,
            C::Fnstsw_AX,
            C::Fstsw_AX,
            C::Fnclex,
            C::Fclex,
            C::Fninit,
            C::Finit,
            C::Fneni,
            C::Feni,
            C::Fndisi,
            C::Fdisi,
            C::Fnsetpm,
            C::Fsetpm,
        ],
        control_word,
        fpu,
    );
    t.add(
        &[
            C::Fldenv_m14byte,
            C::Fldenv_m28byte,
            C::Fnstenv_m14byte,
            C::Fstenv_m14byte,
            C::Fnstenv_m28byte,
            C::Fstenv_m28byte,
            C::Frstor_m94byte,
            C::Frstor_m108byte,
            C::Fnsave_m94byte,
            C::Fsave_m94byte,
            C::Fnsave_m108byte,
            C::Fsave_m108byte,
        ],
        environment,
        fpu,
    );
    t.add(
        &[
            C::Fxsave_m512byte,
            C::Fxrstor_m512byte,
            C::Fxsave64_m512byte,
            C::Fxrstor64_m512byte,
        ],
        fxsave,
        Meta::plain(Isa::PentiumPro),
    );
}
