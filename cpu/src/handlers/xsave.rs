//! The XSAVE feature set for the x87 (XCR0 bit 0) and SSE (bit 1) components: XGETBV,
//! XSETBV, XSAVE/XSAVEOPT/XSAVEC and XRSTOR (standard and compacted forms), with the
//! 64-bit FIP/FDP layout under REX.W. Both components live in the 512-byte legacy region
//! (FXSAVE's layout); the 64-byte header holds XSTATE_BV and XCOMP_BV.
//!
//! Every component is treated as in use (the init optimisation is never applied), which
//! the architecture allows: saves always write the requested components and set their
//! XSTATE_BV bits.

use crate::cpuid::{ecx, xsave};
use crate::fault::{Exec, Fault};
use crate::state::{cr0, cr4, SegReg};
use crate::table::{Isa, Meta, TableBuilder};
use crate::x87::env;
use crate::{Bus, Cpu};
use iced_x86::{Code, Instruction, Mnemonic as M};

/// Where things sit in the area.
const MXCSR_AT: usize = 24;
const XMM_AT: usize = 160;
const HEADER_AT: usize = 512;
const AREA: usize = xsave::AREA_BYTES as usize;
const COMPACTED: u64 = 1 << 63;

/// #UD unless the model has XSAVE and CR4.OSXSAVE is set.
fn enabled(cpu: &Cpu) -> Exec {
    if cpu.model.features_ecx & ecx::XSAVE == 0 || cpu.s.cr4 & cr4::OSXSAVE == 0 {
        return Err(Fault::UD);
    }
    Ok(())
}

fn xgetbv(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    enabled(cpu)?;
    if cpu.gpr(1, 4) != 0 {
        return Err(Fault::gp(0));
    }
    let v = cpu.s.xcr0;
    cpu.set_gpr(0, 4, v);
    cpu.set_gpr(2, 4, v >> 32);
    Ok(())
}

/// XSETBV: CPL 0, XCR0 only, x87 always on, nothing the model lacks.
fn xsetbv(cpu: &mut Cpu, _bus: &mut dyn Bus, _i: &Instruction) -> Exec {
    enabled(cpu)?;
    let v = cpu.gpr(0, 4) | cpu.gpr(2, 4) << 32;
    if cpu.s.cpl() != 0
        || cpu.gpr(1, 4) != 0
        || v & xsave::X87 == 0
        || v & !cpu.model.xcr0_supported != 0
    {
        return Err(Fault::gp(0));
    }
    cpu.s.xcr0 = v;
    Ok(())
}

/// XMM registers the current mode has.
fn xmm_count(cpu: &Cpu) -> usize {
    if cpu.s.long64() {
        16
    } else {
        8
    }
}

/// The checks every save/restore shares; returns (segment, offset, RFBM).
fn begin(cpu: &Cpu, i: &Instruction) -> Exec<(SegReg, u64, u64)> {
    enabled(cpu)?;
    if cpu.s.cr0 & cr0::TS != 0 {
        return Err(Fault::NM);
    }
    let (seg, off) = (cpu.mem_seg(i), cpu.effective_address(i));
    if cpu.seg_linear(seg, off, 8, false)? & 63 != 0 {
        return Err(Fault::gp(0));
    }
    let mask = cpu.gpr(0, 4) | cpu.gpr(2, 4) << 32;
    Ok((seg, off, mask & cpu.s.xcr0))
}

/// Byte ranges `(start, bytes)` of the area, each a multiple of 8 long.
fn write_ranges(
    cpu: &mut Cpu,
    bus: &mut dyn Bus,
    seg: SegReg,
    off: u64,
    area: &[u8],
    ranges: &[(usize, usize)],
) -> Exec {
    // Probe every chunk first so that a fault leaves memory untouched.
    for pass in 0..2 {
        for &(start, len) in ranges {
            for at in (start..start + len).step_by(8) {
                let addr = off.wrapping_add(at as u64);
                if pass == 0 {
                    cpu.probe_write(bus, seg, addr, 8)?;
                } else {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(area.get(at..at + 8).unwrap_or(&[0; 8]));
                    cpu.write_mem(bus, seg, addr, 8, u64::from_le_bytes(b))?;
                }
            }
        }
    }
    Ok(())
}

fn read_area(cpu: &mut Cpu, bus: &mut dyn Bus, seg: SegReg, off: u64) -> Exec<Vec<u8>> {
    let mut area = Vec::with_capacity(AREA);
    for at in (0..AREA).step_by(8) {
        let v = cpu.read_mem(bus, seg, off.wrapping_add(at as u64), 8)?;
        area.extend_from_slice(&v.to_le_bytes());
    }
    Ok(area)
}

fn rex_w(i: &Instruction) -> bool {
    matches!(
        i.mnemonic(),
        M::Xsave64 | M::Xsaveopt64 | M::Xsavec64 | M::Xrstor64
    )
}

/// XSAVE, XSAVEOPT, XSAVEC and their 64-bit forms.
fn xsave_op(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let (seg, off, rfbm) = begin(cpu, i)?;
    let compacted = matches!(i.mnemonic(), M::Xsavec | M::Xsavec64);
    if compacted && cpu.model.xsave_ext & xsave::XSAVEC == 0 {
        return Err(Fault::UD);
    }
    let mut area = vec![0u8; AREA];
    area[..env::FX_X87_BYTES].copy_from_slice(&env::fxsave(&cpu.s.x87, rex_w(i)));
    for (k, r) in cpu.s.xmm[..xmm_count(cpu)].iter().enumerate() {
        area[XMM_AT + 16 * k..XMM_AT + 16 * k + 16].copy_from_slice(&r.to_le_bytes());
    }
    let mut ranges = Vec::new();
    if rfbm & xsave::X87 != 0 {
        ranges.extend([(0, MXCSR_AT), (32, XMM_AT - 32)]);
    }
    if rfbm & xsave::SSE != 0 {
        ranges.extend([(MXCSR_AT, 8), (XMM_AT, 16 * xmm_count(cpu))]);
    }
    // XSTATE_BV: requested components are reported in use; others keep their bits (the
    // compacted form writes the whole field and XCOMP_BV).
    let old_bv = cpu.read_mem(bus, seg, off.wrapping_add(HEADER_AT as u64), 8)?;
    let bv = if compacted { rfbm } else { old_bv | rfbm };
    area[HEADER_AT..HEADER_AT + 8].copy_from_slice(&bv.to_le_bytes());
    let header_len = if compacted {
        area[HEADER_AT + 8..HEADER_AT + 16].copy_from_slice(&(COMPACTED | rfbm).to_le_bytes());
        16
    } else {
        8
    };
    ranges.push((HEADER_AT, header_len));
    write_ranges(cpu, bus, seg, off, &area, &ranges)
}

fn get64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(b.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(w)
}

/// The header checks of XRSTOR: #GP(0) for reserved bits or a form the CPU lacks.
fn check_header(cpu: &Cpu, area: &[u8]) -> Exec<bool> {
    let (bv, comp) = (get64(area, HEADER_AT), get64(area, HEADER_AT + 8));
    let xcr0 = cpu.s.xcr0;
    let compacted = comp & COMPACTED != 0;
    let bad = if compacted {
        cpu.model.xsave_ext & xsave::XSAVEC == 0
            || comp & !COMPACTED & !xcr0 != 0
            || bv & !comp != 0
            || area[HEADER_AT + 16..HEADER_AT + 64].iter().any(|&b| b != 0)
    } else {
        bv & !xcr0 != 0 || comp != 0 || get64(area, HEADER_AT + 16) != 0
    };
    if bad {
        return Err(Fault::gp(0));
    }
    Ok(compacted)
}

/// x87 state as XRSTOR initialises it (FNINIT plus zeroed registers).
fn init_x87(x: &mut crate::x87::X87State) {
    let mxcsr = x.mxcsr;
    let (ferr, ignne) = (x.ferr, x.ignne);
    *x = crate::x87::X87State::power_on();
    x.init();
    x.st = Default::default();
    x.mxcsr = mxcsr;
    x.ferr = ferr;
    x.ignne = ignne;
}

/// XRSTOR and XRSTOR64: RFBM components from the area (XSTATE_BV set) or initialised.
fn xrstor(cpu: &mut Cpu, bus: &mut dyn Bus, i: &Instruction) -> Exec {
    let (seg, off, rfbm) = begin(cpu, i)?;
    let mut area = read_area(cpu, bus, seg, off)?;
    let compacted = check_header(cpu, &area)?;
    let bv = get64(&area, HEADER_AT);
    let sse = rfbm & xsave::SSE != 0;
    let mxcsr = if !sse {
        None
    } else if compacted && bv & xsave::SSE == 0 {
        Some(0x1f80)
    } else {
        Some(get64(&area, MXCSR_AT) as u32)
    };
    if mxcsr.is_some_and(|m| m & !env::MXCSR_MASK != 0) {
        return Err(Fault::gp(0));
    }
    let mut x = cpu.s.x87.clone();
    if rfbm & xsave::X87 != 0 {
        if bv & xsave::X87 != 0 {
            // Load the x87 fields without touching MXCSR.
            area[MXCSR_AT..MXCSR_AT + 4].copy_from_slice(&x.mxcsr.to_le_bytes());
            env::fxrstor(&mut x, &area, rex_w(i)).ok_or(Fault::gp(0))?;
        } else {
            init_x87(&mut x);
        }
    }
    if let Some(m) = mxcsr {
        x.mxcsr = m;
    }
    x.update_summary();
    cpu.s.x87 = x;
    if sse {
        for k in 0..xmm_count(cpu) {
            cpu.s.xmm[k] = if bv & xsave::SSE != 0 {
                u128::from(get64(&area, XMM_AT + 16 * k))
                    | u128::from(get64(&area, XMM_AT + 16 * k + 8)) << 64
            } else {
                0
            };
        }
    }
    Ok(())
}

pub(crate) fn register(t: &mut TableBuilder) {
    use Code as C;
    let m = Meta::plain(Isa::X64);
    t.add(&[C::Xgetbv], xgetbv, m);
    t.add(&[C::Xsetbv], xsetbv, Meta::system(Isa::X64));
    t.add(
        &[
            C::Xsave_mem,
            C::Xsave64_mem,
            C::Xsaveopt_mem,
            C::Xsaveopt64_mem,
            C::Xsavec_mem,
            C::Xsavec64_mem,
        ],
        xsave_op,
        m,
    );
    t.add(&[C::Xrstor_mem, C::Xrstor64_mem], xrstor, m);
}
