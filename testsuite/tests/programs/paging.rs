//! Paging: 2-level with 4 MiB pages, PAE with 2 MiB pages, #PF error codes and CR2,
//! accessed/dirty bits, and a #PF while delivering #PF.

use super::*;

/// Page-fault handler for the paging tests: reports 0xE0, CR2 and the error code; then, if
/// ESI is not zero, ORs EDI into the paging entry at ESI, flushes CR2's page and retries the
/// access; with ESI = 0 it reports 0xEF and halts.
fn pf_handler(p: &mut Prog) -> CodeLabel {
    let mut l = p.label();
    let mut stop = p.label();
    p.set(&mut l);
    p.report(0xe0);
    p.a.mov(eax, cr2).unwrap();
    p.report_reg(eax);
    p.report_mem(dword_ptr(esp));
    p.a.test(esi, esi).unwrap();
    p.a.jz(stop).unwrap();
    p.a.or(dword_ptr(esi), edi).unwrap();
    p.a.mov(ebx, cr2).unwrap();
    p.a.invlpg(ptr(ebx)).unwrap();
    p.a.add(esp, 4).unwrap();
    p.a.iretd().unwrap();
    p.set(&mut stop);
    p.report(0xef);
    p.a.hlt().unwrap();
    l
}

const PD: u64 = 0x10_0000;
const PT0: u64 = 0x10_1000;

#[test]
fn paging_two_level_with_4m_pages_and_faults() {
    let mut p = Prog::new();
    let mut user = p.label();
    let pf = pf_handler(&mut p);
    p.main();
    p.a.mov(eax, cr4).unwrap();
    p.a.or(eax, 0x10).unwrap(); // PSE
    p.a.mov(cr4, eax).unwrap();
    p.a.mov(eax, PD as u32).unwrap();
    p.a.mov(cr3, eax).unwrap();
    p.a.mov(eax, cr0).unwrap();
    p.a.or(eax, 0x8001_0000u32 as i32).unwrap(); // PG | WP
    p.a.mov(cr0, eax).unwrap();
    p.report(1);
    // Not present: the handler sets P|RW in the PTE and the read is retried.
    p.a.mov(esi, (PT0 + 0x300 * 4) as u32).unwrap();
    p.a.mov(edi, 0x30_0003u32).unwrap();
    p.report_mem(dword_ptr(0x30_0000));
    // Supervisor write to a read-only page with CR0.WP: the handler sets RW.
    p.a.mov(esi, (PT0 + 0x301 * 4) as u32).unwrap();
    p.a.mov(edi, 2u32).unwrap();
    p.a.mov(dword_ptr(0x30_1000), 0x77u32).unwrap();
    // A 4 MiB page at 4 MiB maps physical 8 MiB.
    p.a.mov(dword_ptr(0x40_0010), 0xcafe_babeu32).unwrap();
    p.report_mem(dword_ptr(0x40_0010));
    p.a.xor(esi, esi).unwrap();
    p.enter_ring3(user, 0x3002);
    // Ring 3 reads a supervisor page: #PF(user|present), the handler stops.
    p.set(&mut user);
    // IRET to ring 3 nulled DS (DPL 0 < CPL 3).
    p.a.mov(eax, ds).unwrap();
    p.report_reg(eax);
    p.a.mov(ax, u32::from(sel::DATA3)).unwrap();
    p.a.mov(ds, ax).unwrap();
    p.report_mem(dword_ptr(DATA as u32));
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.int_gate(14, pf, 0);
    // PDE 0 -> PT0 (user-accessible directory entry), PDE 1 -> 4 MiB page at 8 MiB.
    m.w32(PD, PT0 as u32 | 7);
    m.w32(PD + 4, 0x80_0000 | 0x87);
    for n in 0..1024u64 {
        // Identity map the low 4 MiB, supervisor only, except the code and the ring-3 stack.
        let user = (0x10..0x20).contains(&n) || n == u64::from(STACK3 >> 12) - 1;
        m.w32(PT0 + 4 * n, (n << 12) as u32 | 3 | if user { 4 } else { 0 });
    }
    m.w32(PT0 + 0x300 * 4, 0);
    m.w32(PT0 + 0x301 * 4, 0x30_1000 | 1);
    m.w32(0x30_0000, 0xaaaa_5555);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let pf = |addr: u32, code: u32| [0xe0, addr, code];
    let expected = [
        &[1][..],
        &pf(0x30_0000, 0),
        &[0xaaaa_5555],
        &pf(0x30_1000, 3),
        &[0xcafe_babe, 0],
        &pf(DATA as u32, 5),
        &[0xef],
    ];
    assert_eq!(m.reports(), expected.concat());
    assert_eq!(m.r32(0x80_0010), 0xcafe_babe);
    assert_eq!(m.r32(0x30_1000), 0x77);
    // Accessed and dirty bits: the 4 MiB PDE and the written page are dirty, the page only
    // read is accessed but clean.
    assert_eq!(m.r32(PD + 4) & 0x60, 0x60);
    assert_eq!(m.r32(PT0 + 0x300 * 4) & 0x60, 0x20);
    assert_eq!(m.r32(PT0 + 0x301 * 4) & 0x60, 0x60);
    assert_eq!(m.r32(PD) & 0x20, 0x20);
    assert_eq!(m.cpu.s.cr2, DATA);
}

#[test]
fn paging_pae_with_2m_pages_and_faults() {
    const PDPT: u64 = 0x10_2000;
    const PD_LOW: u64 = 0x10_3000;
    const PT_LOW: u64 = 0x10_4000;
    const PD_HIGH: u64 = 0x10_5000;
    let mut p = Prog::new();
    let pf = pf_handler(&mut p);
    p.main();
    p.a.mov(eax, cr4).unwrap();
    p.a.or(eax, 0x20).unwrap(); // PAE
    p.a.mov(cr4, eax).unwrap();
    p.a.mov(eax, PDPT as u32).unwrap();
    p.a.mov(cr3, eax).unwrap();
    p.a.mov(eax, cr0).unwrap();
    p.a.or(eax, 0x8001_0000u32 as i32).unwrap();
    p.a.mov(cr0, eax).unwrap();
    p.report(2);
    // 1 GiB up through a second page directory: a 2 MiB page at physical 6 MiB.
    p.a.mov(dword_ptr(0x4000_0008), 0x1122_3344u32).unwrap();
    p.report_mem(dword_ptr(0x4000_0008));
    // 4 MiB is not mapped: the handler installs a 2 MiB page (PS|RW|P) and retries.
    p.a.mov(esi, (PD_LOW + 2 * 8) as u32).unwrap();
    p.a.mov(edi, 0x40_0083u32).unwrap();
    p.report_mem(dword_ptr(0x40_0004));
    // Reserved bit in a PTE: #PF with RSVD|P, handler stops.
    p.a.xor(esi, esi).unwrap();
    p.report_mem(dword_ptr(0x1f_f000));
    let mut m = p.build();
    m.int_gate(14, pf, 0);
    m.w64(PDPT, PD_LOW | 1);
    m.w64(PDPT + 8, PD_HIGH | 1);
    m.w64(PD_LOW, PT_LOW | 3);
    m.w64(PD_LOW + 8, 0x20_0000 | 0x83);
    for n in 0..512u64 {
        m.w64(PT_LOW + 8 * n, (n << 12) | 3);
    }
    m.w64(PT_LOW + 8 * 0x1ff, 0x1f_f000 | 3 | 1 << 40); // above MAXPHYADDR (36)
    m.w64(PD_HIGH, 0x60_0000 | 0x83);
    m.w32(0x40_0004, 0x5566_7788);
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    let pf = |addr: u32, code: u32| [0xe0, addr, code];
    let expected = [
        &[2, 0x1122_3344][..],
        &pf(0x40_0004, 0),
        &[0x5566_7788],
        &pf(0x1f_f000, 9),
        &[0xef],
    ];
    assert_eq!(m.reports(), expected.concat());
    assert_eq!(m.r32(0x60_0008), 0x1122_3344);
    assert_eq!(m.r64(PD_HIGH) & 0x60, 0x60);
    assert_eq!(m.r64(PD_LOW + 16) & 0x60, 0x20);
}

#[test]
fn page_fault_during_page_fault_delivery_is_a_double_fault() {
    let mut p = Prog::new();
    let mut df = p.label();
    p.set(&mut df);
    p.report(0xdf);
    p.a.mov(eax, cr2).unwrap();
    p.report_reg(eax);
    p.a.hlt().unwrap();
    p.main();
    p.a.mov(eax, PD as u32).unwrap();
    p.a.mov(cr3, eax).unwrap();
    p.a.mov(eax, cr0).unwrap();
    p.a.or(eax, 0x8000_0000u32 as i32).unwrap();
    p.a.mov(cr0, eax).unwrap();
    // The #PF pushes onto a stack in an unmapped page: #PF during #PF is #DF, which runs
    // on its own task's stack.
    p.a.mov(esp, 0x40_1000u32).unwrap();
    p.a.mov(eax, dword_ptr(0x40_0000)).unwrap();
    p.a.hlt().unwrap();
    let mut m = p.build();
    m.w32(PD, PT0 as u32 | 3);
    for n in 0..1024u64 {
        m.w32(PT0 + 4 * n, (n << 12) as u32 | 3);
    }
    m.set_gdt(0x40, system(0x6000, 0x67, ty::TSS32, 0));
    let mut t = Tss32::ring0(m.addr(df), 0x7f000);
    t.cr3 = PD as u32;
    m.tss32(0x6000, &t);
    m.set_idt(8, gate(ty::TASK, 0, 0x40, 0, 0));
    assert_eq!(m.run(BUDGET), RunExit::Halted);
    assert_eq!(m.reports(), [0xdf, 0x40_0ffc]);
}
