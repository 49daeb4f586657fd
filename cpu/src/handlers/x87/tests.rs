//! Instruction-level tests of the x87 handlers (real mode, flat test bus).

use crate::fault::Fault;
use crate::handlers::alu::tests::{exec16, run_real_with};
use crate::state::{cr0, rflags};
use crate::testbus::FlatBus;
use crate::x87::arith::exc;
use crate::x87::{fsw, F80};
use crate::Cpu;

fn fresh() -> (Cpu, FlatBus) {
    let mut cpu = Cpu::new();
    cpu.s.x87.init();
    (cpu, FlatBus::new(1 << 20))
}

/// Run instructions one by one through their handlers.
fn exec_all(cpu: &mut Cpu, bus: &mut FlatBus, code: &[&[u8]]) {
    for c in code {
        exec16(cpu, bus, c).unwrap_or_else(|f| panic!("{c:02x?}: {f:?}"));
    }
}

#[test]
fn fld1_fadd_fstp() {
    // fninit ; fld1 ; fld1 ; faddp st1,st ; fstp qword [0x2000] ; hlt
    let code = [
        0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xe8, 0xde, 0xc1, 0xdd, 0x1e, 0x00, 0x20, 0xf4,
    ];
    let (cpu, bus) = run_real_with(&code, 6, |_, _| {});
    let v = u64::from_le_bytes(bus.ram()[0x2000..0x2008].try_into().unwrap());
    assert_eq!(f64::from_bits(v), 2.0);
    assert_eq!(cpu.s.x87.ftw, 0);
    // The last non-control instruction was the FSTP at 1008h with a memory operand.
    assert_eq!(cpu.s.x87.fip, 0x1008);
    assert_eq!(cpu.s.x87.fop, 0x51e);
    assert_eq!(cpu.s.x87.fdp, 0x2000);
}

#[test]
fn device_not_available() {
    let (mut cpu, mut bus) = fresh();
    cpu.s.cr0 |= cr0::TS;
    assert_eq!(exec16(&mut cpu, &mut bus, &[0xd9, 0xe8]), Err(Fault::NM));
    // WAIT faults only with MP and TS together.
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Ok(()));
    cpu.s.cr0 |= cr0::MP;
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Err(Fault::NM));
    cpu.s.cr0 &= !(cr0::TS | cr0::MP);
    cpu.s.cr0 |= cr0::EM;
    assert_eq!(exec16(&mut cpu, &mut bus, &[0xdb, 0xe3]), Err(Fault::NM));
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Ok(()));
}

#[test]
fn unmasked_exception_is_pending_until_the_next_waiting_instruction() {
    let (mut cpu, mut bus) = fresh();
    cpu.s.cr0 |= cr0::NE;
    cpu.s.x87.fcw &= !exc::ZE;
    // fld1 ; fldz ; fdivp: divide by zero, unmasked: no result, ES set.
    exec_all(
        &mut cpu,
        &mut bus,
        &[&[0xd9, 0xe8], &[0xd9, 0xee], &[0xde, 0xf9]],
    );
    assert_eq!(
        cpu.s.x87.fsw & (fsw::ES | fsw::B | exc::ZE),
        fsw::ES | fsw::B | exc::ZE
    );
    assert_eq!(cpu.s.x87.st(0), F80::ZERO, "destination unchanged");
    assert_eq!(exec16(&mut cpu, &mut bus, &[0xd9, 0xe8]), Err(Fault::MF));
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Err(Fault::MF));
    // FNSTSW AX and FNCLEX do not wait.
    exec_all(&mut cpu, &mut bus, &[&[0xdf, 0xe0], &[0xdb, 0xe2]]);
    assert_ne!(cpu.s.gpr[0] as u16 & fsw::ES, 0);
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Ok(()));
}

#[test]
fn ferr_path_with_ne_clear() {
    let (mut cpu, mut bus) = fresh();
    cpu.s.x87.fcw &= !exc::ZE;
    cpu.s.rip = 0x1234;
    exec_all(
        &mut cpu,
        &mut bus,
        &[&[0xd9, 0xe8], &[0xd9, 0xee], &[0xde, 0xf9]],
    );
    cpu.s.rip = 0x1240;
    assert_eq!(exec16(&mut cpu, &mut bus, &[0x9b]), Ok(()));
    assert!(cpu.s.x87.ferr && cpu.s.events.halted);
    assert_eq!(
        cpu.next_ip, 0x1240,
        "the waiting instruction runs again later"
    );
    // IGNNE# (port F0h): the instruction proceeds despite the pending exception.
    cpu.s.x87.ignne = true;
    cpu.s.events.halted = false;
    assert_eq!(exec16(&mut cpu, &mut bus, &[0xd9, 0xe8]), Ok(()));
    assert!(!cpu.s.events.halted);
    exec_all(&mut cpu, &mut bus, &[&[0xdb, 0xe2]]);
    assert!(!cpu.s.x87.ferr && !cpu.s.x87.ignne);
}

#[test]
fn stack_overflow_and_underflow() {
    let (mut cpu, mut bus) = fresh();
    for _ in 0..8 {
        exec_all(&mut cpu, &mut bus, &[&[0xd9, 0xe8]]);
    }
    exec_all(&mut cpu, &mut bus, &[&[0xd9, 0xeb]]);
    let x = &cpu.s.x87;
    assert_eq!(
        x.fsw & (fsw::SF | fsw::C1 | exc::IE),
        fsw::SF | fsw::C1 | exc::IE
    );
    assert_eq!(x.st(0), F80::INDEFINITE);
    let (mut cpu, mut bus) = fresh();
    // fadd st0,st1 on an empty stack: underflow, C1 clear, ST0 = indefinite.
    exec_all(&mut cpu, &mut bus, &[&[0xd8, 0xc1]]);
    let x = &cpu.s.x87;
    assert_eq!(x.fsw & (fsw::SF | fsw::C1 | exc::IE), fsw::SF | exc::IE);
    assert_eq!(x.st(0), F80::INDEFINITE);
}

#[test]
fn fcomi_fcmov_fxam() {
    let (mut cpu, mut bus) = fresh();
    // fld1 ; fldz ; fcomi st0,st1 (0 < 1: CF) ; fcmovb st0,st1 ; fxam
    exec_all(
        &mut cpu,
        &mut bus,
        &[&[0xd9, 0xe8], &[0xd9, 0xee], &[0xdb, 0xf1]],
    );
    let f = cpu.flags();
    assert_eq!(f & (rflags::ZF | rflags::PF | rflags::CF), rflags::CF);
    exec_all(&mut cpu, &mut bus, &[&[0xda, 0xc1], &[0xd9, 0xe5]]);
    assert_eq!(cpu.s.x87.st(0), F80::ONE);
    assert_eq!(cpu.s.x87.fsw & fsw::CC, fsw::C2, "normal, positive");
    // fucomip with a NaN: unordered sets ZF, PF and CF; one pop.
    cpu.s.x87.set_st(0, F80::INDEFINITE);
    exec_all(&mut cpu, &mut bus, &[&[0xdf, 0xe9]]);
    let f = cpu.flags();
    assert_eq!(
        f & (rflags::ZF | rflags::PF | rflags::CF),
        rflags::ZF | rflags::PF | rflags::CF
    );
    assert_eq!(cpu.s.x87.top(), 7);
}

#[test]
fn fsave_frstor_round_trip_both_sizes() {
    for (save, rstor, len) in [
        (
            &[0xdd, 0x36, 0x00, 0x30][..],
            &[0xdd, 0x26, 0x00, 0x30][..],
            94,
        ),
        (
            &[0x66, 0xdd, 0x36, 0x00, 0x30][..],
            &[0x66, 0xdd, 0x26, 0x00, 0x30][..],
            108,
        ),
    ] {
        let (mut cpu, mut bus) = fresh();
        exec_all(
            &mut cpu,
            &mut bus,
            &[&[0xd9, 0xeb], &[0xd9, 0xe8], &[0xd9, 0xee]],
        );
        cpu.s.x87.fcw = 0x0b7f;
        let before = cpu.s.x87.clone();
        exec_all(&mut cpu, &mut bus, &[save]);
        assert_eq!(cpu.s.x87.fcw, 0x037f, "FNSAVE re-initializes");
        assert_eq!(cpu.s.x87.ftw, 0);
        assert_eq!(bus.ram()[0x3000], 0x7f);
        assert_eq!(
            &bus.ram()[0x3000 + len - 10..0x3000 + len],
            &before.st[(before.top() + 7) & 7].to_bytes()
        );
        exec_all(&mut cpu, &mut bus, &[rstor]);
        // The real-mode image keeps linear pointers.
        let mut want = before.clone();
        want.fip += u64::from(want.fcs) << 4;
        want.fcs = 0;
        want.fdp += u64::from(want.fds) << 4;
        want.fds = 0;
        assert_eq!(cpu.s.x87, want, "{len}-byte image");
    }
}

#[test]
fn fxsave_alignment_and_round_trip() {
    let (mut cpu, mut bus) = fresh();
    exec_all(&mut cpu, &mut bus, &[&[0xd9, 0xeb], &[0xd9, 0xe8]]);
    // fxsave [0x3008]: misaligned.
    assert_eq!(
        exec16(&mut cpu, &mut bus, &[0x0f, 0xae, 0x06, 0x08, 0x30]),
        Err(Fault::gp(0))
    );
    let before = cpu.s.x87.clone();
    exec_all(&mut cpu, &mut bus, &[&[0x0f, 0xae, 0x06, 0x00, 0x30]]);
    assert_eq!(bus.ram()[0x3004], 0xc0, "abridged tag word");
    assert_eq!(&bus.ram()[0x3020..0x302a], &F80::ONE.to_bytes(), "ST0");
    exec_all(
        &mut cpu,
        &mut bus,
        &[&[0xdb, 0xe3], &[0x0f, 0xae, 0x0e, 0x00, 0x30]],
    );
    assert_eq!(cpu.s.x87, before);
    // Reserved MXCSR bits: #GP(0).
    bus.load(0x3018, &[0, 0, 1, 0]);
    assert_eq!(
        exec16(&mut cpu, &mut bus, &[0x0f, 0xae, 0x0e, 0x00, 0x30]),
        Err(Fault::gp(0))
    );
}

#[test]
fn transcendental_reference_values() {
    let (mut cpu, mut bus) = fresh();
    // sin(1) = 0.84147098480789650665250232163029899962 (mantissa computed to 300 bits).
    exec_all(&mut cpu, &mut bus, &[&[0xd9, 0xe8], &[0xd9, 0xfe]]);
    assert_eq!(
        cpu.s.x87.st(0),
        F80::new(false, 0x3ffe, 0xd76a_a478_4867_7021)
    );
    // fld1 ; fld1 ; fld1 ; faddp ; fyl2x: 1·log2(2), exact.
    let (mut cpu, mut bus) = fresh();
    exec_all(
        &mut cpu,
        &mut bus,
        &[
            &[0xd9, 0xe8],
            &[0xd9, 0xe8],
            &[0xd9, 0xe8],
            &[0xde, 0xc1],
            &[0xd9, 0xf1],
        ],
    );
    assert_eq!(cpu.s.x87.st(0), F80::ONE, "1·log2(2)");
    // 2^0.5 - 1 = 0.41421356237309504880168872420969807857.
    let (mut cpu, mut bus) = fresh();
    bus.load(0x2000, &0.5f64.to_bits().to_le_bytes());
    exec_all(
        &mut cpu,
        &mut bus,
        &[&[0xdd, 0x06, 0x00, 0x20], &[0xd9, 0xf0]],
    );
    assert_eq!(
        cpu.s.x87.st(0),
        F80::new(false, 0x3ffd, 0xd413_cccf_e779_9211)
    );
    // fldln2 ; fld1 ; fld1 ; faddp ; fyl2x: ln2·log2(2) = ln 2 = 0.69314718055994530942.
    let (mut cpu, mut bus) = fresh();
    exec_all(
        &mut cpu,
        &mut bus,
        &[
            &[0xd9, 0xed],
            &[0xd9, 0xe8],
            &[0xd9, 0xe8],
            &[0xde, 0xc1],
            &[0xd9, 0xf1],
        ],
    );
    assert_eq!(
        cpu.s.x87.st(0),
        F80::new(false, 0x3ffe, 0xb172_17f7_d1cf_79ac)
    );
}
