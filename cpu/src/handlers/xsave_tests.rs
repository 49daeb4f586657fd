//! XSAVE family tests: round trips, the init rules, faults and header checks, the compacted
//! form, and the legacy-region layout against an image the host CPU's XSAVE wrote.

use super::isa_tests::max_cpu;
use crate::fault::Fault;
use crate::handlers::longmode::tests::exec64;
use crate::state::cr0;
use crate::testbus::FlatBus;
use crate::Cpu;
use iced_x86::code_asm::*;

/// XCR0 = x87|SSE, recognisable x87/SSE state.
fn xsave_cpu() -> (Cpu, FlatBus) {
    let (mut cpu, bus) = max_cpu();
    cpu.s.xcr0 = 3;
    for k in 0..16 {
        cpu.s.xmm[k] = u128::from_le_bytes([k as u8 + 1; 16]);
    }
    cpu.s.x87.fcw = 0x027f;
    cpu.s.x87.mxcsr = 0x1f80 | 0x6000;
    cpu.s.gpr[0] = u64::MAX;
    cpu.s.gpr[2] = u64::MAX;
    cpu.s.gpr[6] = 0x4000;
    (cpu, bus)
}

#[test]
fn xsave_xrstor_round_trip_and_init() {
    let (mut cpu, mut bus) = xsave_cpu();
    let saved = cpu.s.clone();
    exec64(&mut cpu, &mut bus, |a| a.xsave64(ptr(rsi)).unwrap()).unwrap();
    let ram = bus.ram();
    assert_eq!(&ram[0x4000..0x4002], &0x027fu16.to_le_bytes());
    assert_eq!(&ram[0x4018..0x401c], &(0x1f80u32 | 0x6000).to_le_bytes());
    assert_eq!(&ram[0x40a0..0x40b0], &saved.xmm[0].to_le_bytes());
    assert_eq!(&ram[0x4200..0x4208], &3u64.to_le_bytes(), "XSTATE_BV");
    // Scramble, restore.
    cpu.s.xmm = [0; 16];
    cpu.s.x87.fcw = 0x37f;
    cpu.s.x87.mxcsr = 0x1f80;
    exec64(&mut cpu, &mut bus, |a| a.xrstor64(ptr(rsi)).unwrap()).unwrap();
    assert_eq!(cpu.s.xmm, saved.xmm);
    assert_eq!((cpu.s.x87.fcw, cpu.s.x87.mxcsr), (0x027f, 0x7f80));
    // XSTATE_BV = 0: both components take their initial values (MXCSR is still loaded
    // by the standard form).
    bus.load(0x4200, &0u64.to_le_bytes());
    exec64(&mut cpu, &mut bus, |a| a.xrstor64(ptr(rsi)).unwrap()).unwrap();
    assert_eq!(cpu.s.xmm, [0; 16]);
    assert_eq!((cpu.s.x87.fcw, cpu.s.x87.mxcsr), (0x037f, 0x7f80));
    // RFBM = x87 only: SSE state and MXCSR untouched.
    cpu.s.xmm[3] = 7;
    cpu.s.gpr[0] = 1;
    exec64(&mut cpu, &mut bus, |a| a.xrstor64(ptr(rsi)).unwrap()).unwrap();
    assert_eq!(cpu.s.xmm[3], 7);
}

#[test]
fn xsave_faults_and_header_checks() {
    let (mut cpu, mut bus) = xsave_cpu();
    cpu.s.gpr[6] = 0x4020;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xsave(ptr(rsi)).unwrap()),
        Err(Fault::gp(0)),
        "64-byte alignment"
    );
    cpu.s.gpr[6] = 0x4000;
    cpu.s.cr0 |= cr0::TS;
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xsave(ptr(rsi)).unwrap()),
        Err(Fault::NM)
    );
    cpu.s.cr0 &= !cr0::TS;
    exec64(&mut cpu, &mut bus, |a| a.xsave(ptr(rsi)).unwrap()).unwrap();
    // A reserved XSTATE_BV bit, or a non-zero XCOMP_BV in the standard form: #GP(0).
    bus.load(0x4200, &4u64.to_le_bytes());
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xrstor(ptr(rsi)).unwrap()),
        Err(Fault::gp(0))
    );
    bus.load(0x4200, &3u64.to_le_bytes());
    bus.load(0x4208, &1u64.to_le_bytes());
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xrstor(ptr(rsi)).unwrap()),
        Err(Fault::gp(0))
    );
    // A reserved MXCSR bit in the image: #GP(0).
    bus.load(0x4208, &0u64.to_le_bytes());
    bus.load(0x4018, &0x1_0000u32.to_le_bytes());
    assert_eq!(
        exec64(&mut cpu, &mut bus, |a| a.xrstor(ptr(rsi)).unwrap()),
        Err(Fault::gp(0))
    );
}

#[test]
fn xsavec_writes_the_compacted_header_and_restores() {
    let (mut cpu, mut bus) = xsave_cpu();
    cpu.s.gpr[0] = 2;
    exec64(&mut cpu, &mut bus, |a| a.xsavec64(ptr(rsi)).unwrap()).unwrap();
    assert_eq!(&bus.ram()[0x4200..0x4210], &{
        let mut h = [0u8; 16];
        h[..8].copy_from_slice(&2u64.to_le_bytes());
        h[8..].copy_from_slice(&(1u64 << 63 | 2).to_le_bytes());
        h
    });
    let xmm = cpu.s.xmm;
    cpu.s.xmm = [0; 16];
    cpu.s.x87.mxcsr = 0x1f80;
    cpu.s.gpr[0] = 3;
    exec64(&mut cpu, &mut bus, |a| a.xrstor64(ptr(rsi)).unwrap()).unwrap();
    assert_eq!(cpu.s.xmm, xmm);
    assert_eq!(cpu.s.x87.mxcsr, 0x7f80);
    assert_eq!(cpu.s.x87.fcw, 0x037f, "x87 not in XSTATE_BV: initialised");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn xsave_layout_matches_the_host() {
    if !is_x86_feature_detected!("xsave") {
        println!("skipped: the host CPU lacks XSAVE");
        return;
    }
    // The host saves its own x87/SSE state with XSAVE64 (RFBM = x87|SSE); restoring that
    // image in the interpreter and saving again must give the same legacy region bytes.
    #[repr(C, align(64))]
    struct Area([u8; 1024]);
    let mut host = Area([0; 1024]);
    // SAFETY: XSAVE64 writes at most the 1024-byte, 64-byte aligned area for RFBM = 3;
    // the x87 stack is pushed (so the x87 component is in use) and reset with FNINIT.
    unsafe {
        core::arch::asm!(
            "fldpi",
            "fld1",
            "fldl2e",
            "xsave64 [{p}]",
            "fninit",
            p = in(reg) host.0.as_mut_ptr(),
            in("eax") 3u32,
            in("edx") 0u32,
            clobber_abi("C"),
        );
    }
    let (mut cpu, mut bus) = xsave_cpu();
    bus.load(0x4000, &host.0[..576]);
    cpu.s.gpr[0] = 3;
    cpu.s.gpr[2] = 0;
    exec64(&mut cpu, &mut bus, |a| a.xrstor64(ptr(rsi)).unwrap()).unwrap();
    cpu.s.gpr[6] = 0x5000;
    exec64(&mut cpu, &mut bus, |a| a.xsave64(ptr(rsi)).unwrap()).unwrap();
    let ours = &bus.ram()[0x5000..0x5000 + 416];
    assert_eq!(&ours[..24], &host.0[..24], "x87 header");
    assert_eq!(&ours[24..28], &host.0[24..28], "MXCSR");
    assert_eq!(&ours[32..416], &host.0[32..416], "registers");
    let bv = u64::from_le_bytes(host.0[512..520].try_into().unwrap_or_default());
    assert_eq!(bv & 1, 1, "the host's x87 state was in use");
}
