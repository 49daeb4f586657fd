//! Test programs for the protected-mode system architecture, assembled with iced-x86's
//! CodeAssembler and run on the interpreter from real mode, as a BIOS leaves the CPU. Each
//! program reports through OUT to port 0xE9; the tests check the exact sequence and then the
//! machine state.

#[path = "programs/faults.rs"]
mod faults;
#[path = "programs/fuzz.rs"]
mod fuzz;
#[path = "programs/harness.rs"]
mod harness;
#[path = "programs/long_env.rs"]
mod long_env;
#[path = "programs/longmode.rs"]
mod longmode;
#[path = "programs/paging.rs"]
mod paging;
#[path = "programs/rings.rs"]
mod rings;
#[path = "programs/system.rs"]
mod system;
#[path = "programs/tasks.rs"]
mod tasks;
#[path = "programs/v86.rs"]
mod v86;
#[path = "programs/x87.rs"]
mod x87;

use harness::*;
use iced_x86::code_asm::*;
use iced_x86::{Code, Instruction};
use nestor_cpu::state::cr0;
use nestor_cpu::{RunExit, SegReg};

const BUDGET: u64 = 100_000;

/// A fault handler for the selector-fault tests: reports `0xF000 | vector` and the error
/// code, then resumes at the address the program left in ESI.
fn resume_handler(p: &mut Prog, vector: u32) -> CodeLabel {
    let mut l = p.label();
    p.set(&mut l);
    p.report(0xf000 | vector);
    p.a.pop(eax).unwrap();
    p.a.out(PORT as u32, eax).unwrap();
    p.a.mov(dword_ptr(esp), esi).unwrap();
    p.a.iretd().unwrap();
    l
}

/// `lea esi, [resume]`: where `resume_handler` continues after the next fault.
fn expect_fault(p: &mut Prog, resume: CodeLabel) {
    p.mov_label(esi, resume);
}

#[test]
fn protected_mode_entry_and_back_to_real_mode() {
    let mut p = Prog::new();
    p.main();
    p.report(1);
    p.a.mov(dword_ptr(DATA as u32), 0x1234_5678u32).unwrap();
    p.report_mem(dword_ptr(DATA as u32));
    p.a.mov(eax, cs).unwrap();
    p.report_reg(eax);
    p.a.mov(eax, ss).unwrap();
    p.report_reg(eax);
    // Back to real mode through a 16-bit code segment.
    p.a.jmp_far(sel::CODE16, CODE16 as u32).unwrap();
    let mut m = p.build();
    let (code16, at) = asm16(CODE16, |a, at| {
        let mut real = a.create_label();
        let mut handler = a.create_label();
        let mut far = a.create_label();
        a.mov(ax, sel::DATA16 as u32).unwrap();
        a.mov(ds, ax).unwrap();
        a.mov(ss, ax).unwrap();
        a.lidt(ptr(PSEUDO as u32 + 16)).unwrap();
        a.mov(eax, cr0).unwrap();
        a.and(eax, !1i32).unwrap();
        a.mov(cr0, eax).unwrap();
        a.jmp_far(0, at[0]).unwrap();
        a.set_label(&mut real).unwrap();
        a.xor(ax, ax).unwrap();
        a.mov(ds, ax).unwrap();
        a.mov(ss, ax).unwrap();
        a.mov(sp, 0x7000u32).unwrap();
        a.mov(eax, 0x22u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.int(0x30).unwrap();
        a.mov(eax, 0x24u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.call_far(0, at[2]).unwrap();
        a.mov(eax, 0x26u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.hlt().unwrap();
        a.set_label(&mut handler).unwrap();
        a.mov(eax, 0x23u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.iret().unwrap();
        a.set_label(&mut far).unwrap();
        a.mov(eax, 0x25u32).unwrap();
        a.out(PORT as u32, eax).unwrap();
        a.retf().unwrap();
        vec![real, handler, far]
    });
    m.bus.load(CODE16, &code16);
    // Real-mode IVT at 0 (IDTR reloaded from PSEUDO+16): INT 30h -> handler.
    m.w16(PSEUDO + 16, 0x3ff);
    m.w32(PSEUDO + 18, 0);
    m.w16(0x30 * 4, at[1] as u16);
    m.w16(0x30 * 4 + 2, 0);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(
        m.reports(),
        [1, 0x1234_5678, 0x08, 0x10, 0x22, 0x23, 0x24, 0x25, 0x26]
    );
    assert!(!m.cpu.s.protected_mode());
    assert_eq!(m.cpu.s.seg(SegReg::Cs).selector, 0);
}
