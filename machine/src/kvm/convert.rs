//! CpuState <-> KVM's register structures, both ways, one function pair per KVM register
//! group. Pure functions: they need no /dev/kvm, so their round trips are unit-tested anywhere.

use kvm_bindings::{
    kvm_debugregs, kvm_dtable, kvm_fpu, kvm_regs, kvm_segment, kvm_sregs, kvm_vcpu_events,
    KVM_VCPUEVENT_VALID_NMI_PENDING, KVM_VCPUEVENT_VALID_SHADOW,
};
use nestor_cpu::state::attr;
use nestor_cpu::x87::F80;
use nestor_cpu::{CpuState, Segment, TableReg};

/// The general registers, RIP and RFLAGS.
#[must_use]
pub fn regs_from_state(s: &CpuState) -> kvm_regs {
    let g = &s.gpr;
    kvm_regs {
        rax: g[0],
        rcx: g[1],
        rdx: g[2],
        rbx: g[3],
        rsp: g[4],
        rbp: g[5],
        rsi: g[6],
        rdi: g[7],
        r8: g[8],
        r9: g[9],
        r10: g[10],
        r11: g[11],
        r12: g[12],
        r13: g[13],
        r14: g[14],
        r15: g[15],
        rip: s.rip,
        // The caller hands a state with lazy flags folded in (Vcpu::state() does that).
        rflags: s.rflags,
    }
}

pub fn regs_to_state(r: &kvm_regs, s: &mut CpuState) {
    s.gpr = [
        r.rax, r.rcx, r.rdx, r.rbx, r.rsp, r.rbp, r.rsi, r.rdi, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15,
    ];
    s.rip = r.rip;
    s.rflags = r.rflags;
    s.lazy = Default::default();
}

/// A segment register's hidden cache in KVM's unpacked form.
#[must_use]
pub fn segment_to_kvm(seg: &Segment) -> kvm_segment {
    let a = seg.attr;
    let bit = |m: u16| u8::from(a & m != 0);
    let present = bit(attr::P);
    kvm_segment {
        base: seg.base,
        limit: seg.limit,
        selector: seg.selector,
        type_: (a & attr::TYPE_MASK) as u8,
        present,
        dpl: seg.dpl(),
        db: bit(attr::DB),
        s: bit(attr::S),
        l: bit(attr::L),
        g: bit(attr::G),
        avl: bit(attr::AVL),
        // VMX loads a not-present segment as "unusable" (SDM 24.4.1); KVM wants it said.
        unusable: 1 - present,
        padding: 0,
    }
}

#[must_use]
pub fn segment_from_kvm(k: &kvm_segment) -> Segment {
    let flag = |v: u8, m: u16| if v != 0 { m } else { 0 };
    let attr = u16::from(k.type_) & attr::TYPE_MASK
        | flag(k.s, attr::S)
        | (u16::from(k.dpl & 3) << attr::DPL_SHIFT)
        | flag(k.present, attr::P)
        | flag(k.avl, attr::AVL)
        | flag(k.l, attr::L)
        | flag(k.db, attr::DB)
        | flag(k.g, attr::G);
    Segment {
        base: k.base,
        limit: k.limit,
        selector: k.selector,
        attr,
    }
}

fn dtable_to_kvm(t: &TableReg) -> kvm_dtable {
    kvm_dtable {
        base: t.base,
        limit: t.limit,
        padding: [0; 3],
    }
}

fn dtable_from_kvm(t: &kvm_dtable) -> TableReg {
    TableReg {
        base: t.base,
        limit: t.limit,
    }
}

/// Segments, descriptor tables, control registers, EFER and the APIC base. The interrupt
/// bitmap stays empty: Nestor's own interrupt controllers deliver through KVM_INTERRUPT.
#[must_use]
pub fn sregs_from_state(s: &CpuState) -> kvm_sregs {
    let seg = |i: usize| segment_to_kvm(&s.seg[i]);
    kvm_sregs {
        es: seg(0),
        cs: seg(1),
        ss: seg(2),
        ds: seg(3),
        fs: seg(4),
        gs: seg(5),
        tr: segment_to_kvm(&s.tr),
        ldt: segment_to_kvm(&s.ldtr),
        gdt: dtable_to_kvm(&s.gdtr),
        idt: dtable_to_kvm(&s.idtr),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        apic_base: s.msr.apic_base,
        interrupt_bitmap: [0; 4],
    }
}

pub fn sregs_to_state(k: &kvm_sregs, s: &mut CpuState) {
    s.seg = [k.es, k.cs, k.ss, k.ds, k.fs, k.gs].map(|x| segment_from_kvm(&x));
    s.tr = segment_from_kvm(&k.tr);
    s.ldtr = segment_from_kvm(&k.ldt);
    s.gdtr = dtable_from_kvm(&k.gdt);
    s.idtr = dtable_from_kvm(&k.idt);
    s.cr0 = k.cr0;
    s.cr2 = k.cr2;
    s.cr3 = k.cr3;
    s.cr4 = k.cr4;
    s.cr8 = k.cr8;
    s.efer = k.efer;
    s.msr.apic_base = k.apic_base;
}

/// FXSAVE-style FPU image. KVM lists x87 registers in stack order (ST0 first) while Nestor
/// keeps physical registers R0..R7, so the list is rotated by TOP. FCS and FDS have no
/// field in `kvm_fpu` (the kernel saves with FXSAVE64): they do not cross engines.
#[must_use]
pub fn fpu_from_state(s: &CpuState) -> kvm_fpu {
    let x = &s.x87;
    let top = usize::from((x.fsw >> 11) & 7);
    let mut fpr = [[0u8; 16]; 8];
    for (i, slot) in fpr.iter_mut().enumerate() {
        let r = &x.st[(top + i) % 8];
        slot[..8].copy_from_slice(&r.mant.to_le_bytes());
        slot[8..10].copy_from_slice(&r.se.to_le_bytes());
    }
    kvm_fpu {
        fpr,
        fcw: x.fcw,
        fsw: x.fsw,
        ftwx: x.ftw,
        pad1: 0,
        last_opcode: x.fop,
        last_ip: x.fip,
        last_dp: x.fdp,
        xmm: s.xmm.map(u128::to_le_bytes),
        mxcsr: x.mxcsr,
        pad2: 0,
    }
}

pub fn fpu_to_state(k: &kvm_fpu, s: &mut CpuState) {
    let x = &mut s.x87;
    x.fcw = k.fcw;
    x.fsw = k.fsw;
    x.ftw = k.ftwx;
    x.fop = k.last_opcode;
    x.fip = k.last_ip;
    x.fdp = k.last_dp;
    x.mxcsr = k.mxcsr;
    let top = usize::from((k.fsw >> 11) & 7);
    for (i, slot) in k.fpr.iter().enumerate() {
        let mut mant = [0u8; 8];
        mant.copy_from_slice(&slot[..8]);
        x.st[(top + i) % 8] = F80 {
            mant: u64::from_le_bytes(mant),
            se: u16::from_le_bytes([slot[8], slot[9]]),
        };
    }
    s.xmm = k.xmm.map(u128::from_le_bytes);
}

/// The 512-byte FXSAVE image (64-bit layout) of `fpu` with `mxcsr`, as dwords: KVM_SET_FPU
/// ignores MXCSR, so the engine stores the FPU through KVM_SET_XSAVE's legacy region.
#[must_use]
pub fn fxsave_image(fpu: &kvm_fpu, mxcsr: u32, mxcsr_mask: u32) -> [u32; 128] {
    let mut b = [0u8; 512];
    b[0..2].copy_from_slice(&fpu.fcw.to_le_bytes());
    b[2..4].copy_from_slice(&fpu.fsw.to_le_bytes());
    b[4] = fpu.ftwx;
    b[6..8].copy_from_slice(&fpu.last_opcode.to_le_bytes());
    b[8..16].copy_from_slice(&fpu.last_ip.to_le_bytes());
    b[16..24].copy_from_slice(&fpu.last_dp.to_le_bytes());
    b[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    b[28..32].copy_from_slice(&mxcsr_mask.to_le_bytes());
    for (i, r) in fpu.fpr.iter().enumerate() {
        b[32 + 16 * i..48 + 16 * i].copy_from_slice(r);
    }
    for (i, x) in fpu.xmm.iter().enumerate() {
        b[160 + 16 * i..176 + 16 * i].copy_from_slice(x);
    }
    let mut words = [0u32; 128];
    for (w, c) in words.iter_mut().zip(b.chunks_exact(4)) {
        *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    words
}

/// Pending events that CpuState holds: the STI/MOV SS shadow and a pending NMI. HLT and
/// shutdown are kept by the engine itself (KVM only knows them with an in-kernel irqchip).
#[must_use]
pub fn events_from_state(s: &CpuState) -> kvm_vcpu_events {
    // SAFETY: kvm_vcpu_events is plain old data; all zeros is its "nothing pending" value.
    let mut e: kvm_vcpu_events = unsafe { std::mem::zeroed() };
    e.interrupt.shadow = u8::from(s.events.interrupt_shadow);
    e.nmi.pending = u8::from(s.events.nmi_pending);
    e.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW;
    e
}

pub fn events_to_state(e: &kvm_vcpu_events, s: &mut CpuState) {
    s.events.interrupt_shadow = e.interrupt.shadow != 0;
    // An NMI KVM was about to inject has not been taken yet either.
    s.events.nmi_pending = e.nmi.pending != 0 || e.nmi.injected != 0;
}

#[must_use]
pub fn debugregs_from_state(s: &CpuState) -> kvm_debugregs {
    kvm_debugregs {
        db: [s.dr[0], s.dr[1], s.dr[2], s.dr[3]],
        dr6: s.dr[6],
        dr7: s.dr[7],
        flags: 0,
        reserved: [0; 9],
    }
}

pub fn debugregs_to_state(k: &kvm_debugregs, s: &mut CpuState) {
    s.dr[..4].copy_from_slice(&k.db);
    s.dr[6] = k.dr6;
    s.dr[7] = k.dr7;
}

/// The MSRs CpuState holds, by index; the APIC base travels in `kvm_sregs`.
pub mod msr_index {
    pub const TSC: u32 = 0x10;
    pub const SPEC_CTRL: u32 = 0x48;
    pub const SYSENTER_CS: u32 = 0x174;
    pub const SYSENTER_ESP: u32 = 0x175;
    pub const SYSENTER_EIP: u32 = 0x176;
    pub const MISC_ENABLE: u32 = 0x1a0;
    pub const DEBUGCTL: u32 = 0x1d9;
    pub const MTRR_VAR_BASE: u32 = 0x200;
    pub const PAT: u32 = 0x277;
    pub const MTRR_DEF_TYPE: u32 = 0x2ff;
    pub const TSC_DEADLINE: u32 = 0x6e0;
    pub const STAR: u32 = 0xc000_0081;
    pub const LSTAR: u32 = 0xc000_0082;
    pub const CSTAR: u32 = 0xc000_0083;
    pub const SFMASK: u32 = 0xc000_0084;
    pub const KERNEL_GS_BASE: u32 = 0xc000_0102;
    pub const TSC_AUX: u32 = 0xc000_0103;
    /// Fixed-range MTRRs in the order of `Msrs::mtrr_fixed`.
    pub const MTRR_FIXED: [u32; 11] = [
        0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f,
    ];
}

/// Every MSR index CpuState holds, in a fixed order.
#[must_use]
pub fn msr_indices() -> Vec<u32> {
    use msr_index::*;
    let mut v = vec![
        TSC,
        SPEC_CTRL,
        SYSENTER_CS,
        SYSENTER_ESP,
        SYSENTER_EIP,
        MISC_ENABLE,
        DEBUGCTL,
        PAT,
        MTRR_DEF_TYPE,
        TSC_DEADLINE,
        STAR,
        LSTAR,
        CSTAR,
        SFMASK,
        KERNEL_GS_BASE,
        TSC_AUX,
    ];
    v.extend_from_slice(&MTRR_FIXED);
    v.extend((0..16).map(|k| MTRR_VAR_BASE + k));
    v
}

/// The CpuState field behind MSR `index`, if it holds one.
pub fn msr_slot(s: &mut CpuState, index: u32) -> Option<&mut u64> {
    use msr_index::*;
    let m = &mut s.msr;
    Some(match index {
        TSC => &mut m.tsc,
        SPEC_CTRL => &mut m.spec_ctrl,
        SYSENTER_CS => &mut m.sysenter_cs,
        SYSENTER_ESP => &mut m.sysenter_esp,
        SYSENTER_EIP => &mut m.sysenter_eip,
        MISC_ENABLE => &mut m.misc_enable,
        DEBUGCTL => &mut m.debugctl,
        PAT => &mut m.pat,
        MTRR_DEF_TYPE => &mut m.mtrr_def_type,
        TSC_DEADLINE => &mut m.tsc_deadline,
        STAR => &mut m.star,
        LSTAR => &mut m.lstar,
        CSTAR => &mut m.cstar,
        SFMASK => &mut m.sfmask,
        KERNEL_GS_BASE => &mut m.kernel_gs_base,
        TSC_AUX => &mut m.tsc_aux,
        i if (MTRR_VAR_BASE..MTRR_VAR_BASE + 16).contains(&i) => {
            m.mtrr_var.get_mut((i - MTRR_VAR_BASE) as usize)?
        }
        i => {
            let k = MTRR_FIXED.iter().position(|&f| f == i)?;
            m.mtrr_fixed.get_mut(k)?
        }
    })
}

/// (index, value) pairs for the MSRs in `indices`.
#[must_use]
pub fn msrs_from_state(s: &CpuState, indices: &[u32]) -> Vec<(u32, u64)> {
    let mut copy = s.clone();
    indices
        .iter()
        .filter_map(|&i| msr_slot(&mut copy, i).map(|v| (i, *v)))
        .collect()
}

pub fn msrs_to_state(values: &[(u32, u64)], s: &mut CpuState) {
    for &(i, v) in values {
        if let Some(slot) = msr_slot(s, i) {
            *slot = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nestor_cpu::state::{cr0, cr4, efer, SegReg};

    /// A state with a distinct value in every field the conversions carry.
    fn busy_state() -> CpuState {
        let mut s = CpuState::power_on();
        for (i, g) in s.gpr.iter_mut().enumerate() {
            *g = 0x1111_2222_3333_0000 + i as u64;
        }
        s.rip = 0xffff_8000_0010_2030;
        s.rflags = 0x0024_6a97;
        for (i, seg) in s.seg.iter_mut().enumerate() {
            *seg = Segment {
                base: 0x1000 * (i as u64 + 1),
                limit: 0xfffff + i as u32,
                selector: (i as u16 + 1) * 8 + 3,
                attr: attr::P | attr::S | attr::RW | attr::DB | attr::G | 3 << attr::DPL_SHIFT,
            };
        }
        s.seg[SegReg::Cs as usize].attr = attr::P | attr::S | attr::CODE | attr::L | attr::AVL;
        s.ldtr = Segment {
            base: 0xdead_0000,
            limit: 0x7f,
            selector: 0x50,
            attr: attr::P | 2,
        };
        s.tr = Segment {
            base: 0xbeef_0000,
            limit: 0x67,
            selector: 0x58,
            attr: attr::P | 11,
        };
        s.gdtr = TableReg {
            base: 0x1234_5678_9abc,
            limit: 0x3ff,
        };
        s.idtr = TableReg {
            base: 0x8765_4321,
            limit: 0xfff,
        };
        s.cr0 = cr0::PE | cr0::PG | cr0::NE | cr0::ET | cr0::WP;
        s.cr2 = 0xcafe_babe;
        s.cr3 = 0x0010_3000;
        s.cr4 = cr4::PAE | cr4::OSFXSR | cr4::PGE;
        s.cr8 = 5;
        s.efer = efer::LME | efer::LMA | efer::NXE | efer::SCE;
        s.msr.apic_base = 0xfee0_0d00;
        s.dr = [1, 2, 3, 4, 0xffff_0ff0, 0x400, 0xffff_4ff1, 0x0000_0703];
        s.x87.fcw = 0x037f;
        s.x87.fsw = 0x3a01;
        s.x87.ftw = 0xc3;
        s.x87.fop = 0x5d9;
        s.x87.fip = 0x0040_1234;
        s.x87.fdp = 0x0060_5678;
        s.x87.mxcsr = 0x1fa0;
        for (i, r) in s.x87.st.iter_mut().enumerate() {
            *r = F80 {
                mant: 0x8000_0000_0000_0000 | i as u64,
                se: 0x3fff + i as u16,
            };
        }
        for (i, x) in s.xmm.iter_mut().enumerate() {
            *x = u128::MAX / 17 * (i as u128 + 1);
        }
        s.events.interrupt_shadow = true;
        s.events.nmi_pending = true;
        let mut k = 0u64;
        for i in msr_indices() {
            k += 0x101;
            *msr_slot(&mut s, i).expect("every listed index has a field") = k;
        }
        s
    }

    #[test]
    fn regs_round_trip() {
        let s = busy_state();
        let mut back = CpuState::power_on();
        regs_to_state(&regs_from_state(&s), &mut back);
        assert_eq!(back.gpr, s.gpr);
        assert_eq!((back.rip, back.rflags), (s.rip, s.rflags));
    }

    #[test]
    fn regs_follow_encoding_order() {
        let s = busy_state();
        let r = regs_from_state(&s);
        assert_eq!(r.rcx, s.gpr[1], "RCX is register 1 in encodings");
        assert_eq!(r.rbx, s.gpr[3]);
        assert_eq!(r.rsp, s.gpr[4]);
    }

    #[test]
    fn sregs_round_trip() {
        let s = busy_state();
        let mut back = CpuState::power_on();
        sregs_to_state(&sregs_from_state(&s), &mut back);
        assert_eq!(back.seg, s.seg);
        assert_eq!((back.ldtr, back.tr), (s.ldtr, s.tr));
        assert_eq!((back.gdtr, back.idtr), (s.gdtr, s.idtr));
        assert_eq!(
            [back.cr0, back.cr2, back.cr3, back.cr4, back.cr8, back.efer],
            [s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer]
        );
        assert_eq!(back.msr.apic_base, s.msr.apic_base);
    }

    #[test]
    fn power_on_segments_survive_kvm_form() {
        let s = CpuState::power_on();
        let k = sregs_from_state(&s);
        assert_eq!(k.cs.base, 0xffff_0000);
        assert_eq!((k.cs.type_, k.cs.s, k.cs.present), (0xb, 1, 1));
        assert_eq!((k.tr.type_, k.ldt.type_), (3, 2));
        let mut back = CpuState::power_on();
        sregs_to_state(&k, &mut back);
        assert_eq!(back.seg, s.seg);
    }

    #[test]
    fn not_present_segment_is_unusable() {
        let k = segment_to_kvm(&Segment::default());
        assert_eq!((k.present, k.unusable), (0, 1));
        let k = segment_to_kvm(&Segment::real_mode(0x1234));
        assert_eq!((k.present, k.unusable, k.base), (1, 0, 0x12340));
    }

    #[test]
    fn fpu_round_trip() {
        let s = busy_state();
        let mut back = CpuState::power_on();
        fpu_to_state(&fpu_from_state(&s), &mut back);
        let (a, b) = (&back.x87, &s.x87);
        assert_eq!(a.st, b.st);
        assert_eq!((a.fcw, a.fsw, a.ftw, a.fop), (b.fcw, b.fsw, b.ftw, b.fop));
        assert_eq!((a.fip, a.fdp, a.mxcsr), (b.fip, b.fdp, b.mxcsr));
        assert_eq!(back.xmm, s.xmm);
    }

    #[test]
    fn fpu_registers_are_in_stack_order() {
        let s = busy_state();
        // TOP = 7 (FSW 0x3a01 has bits 13..11 = 111): ST0 is physical R7, ST1 is R0.
        let k = fpu_from_state(&s);
        assert_eq!(k.fpr[0][0], 7);
        assert_eq!(k.fpr[1][0], 0);
        assert_eq!(u16::from_le_bytes([k.fpr[1][8], k.fpr[1][9]]), 0x3fff);
    }

    #[test]
    fn fxsave_image_has_the_sdm_layout() {
        let s = busy_state();
        let w = fxsave_image(&fpu_from_state(&s), 0x1f80, 0xffff);
        assert_eq!(w[0], 0x3a01_037f, "FCW, then FSW");
        assert_eq!(w[1] & 0xff, 0xc3, "abridged tags");
        assert_eq!(w[1] >> 16, 0x5d9, "FOP");
        assert_eq!((w[2], w[4]), (0x0040_1234, 0x0060_5678), "FIP, FDP");
        assert_eq!((w[6], w[7]), (0x1f80, 0xffff), "MXCSR and its mask");
        assert_eq!(w[8], 7, "ST0 = R7 (TOP 7) mantissa low dword");
        assert_eq!(w[40], s.xmm[0] as u32, "XMM0 at byte 160");
    }

    #[test]
    fn events_round_trip() {
        let mut s = busy_state();
        let mut back = CpuState::power_on();
        events_to_state(&events_from_state(&s), &mut back);
        assert_eq!(back.events, s.events);
        s.events.interrupt_shadow = false;
        s.events.nmi_pending = false;
        events_to_state(&events_from_state(&s), &mut back);
        assert_eq!(back.events, s.events);
    }

    #[test]
    fn debugregs_round_trip() {
        let s = busy_state();
        let mut back = CpuState::power_on();
        debugregs_to_state(&debugregs_from_state(&s), &mut back);
        // DR4 and DR5 are aliases of DR6 and DR7, not registers of their own.
        for i in [0, 1, 2, 3, 6, 7] {
            assert_eq!(back.dr[i], s.dr[i], "DR{i}");
        }
    }

    #[test]
    fn msrs_round_trip() {
        let s = busy_state();
        let list = msrs_from_state(&s, &msr_indices());
        assert_eq!(list.len(), msr_indices().len());
        let mut back = CpuState::power_on();
        msrs_to_state(&list, &mut back);
        // APIC base travels in sregs; everything else through the MSR list.
        back.msr.apic_base = s.msr.apic_base;
        assert_eq!(back.msr, s.msr);
    }

    #[test]
    fn msr_indices_are_distinct_and_known() {
        let mut v = msr_indices();
        v.sort_unstable();
        v.dedup();
        assert_eq!(v.len(), msr_indices().len());
        let mut s = CpuState::power_on();
        assert!(msr_slot(&mut s, 0x1b).is_none(), "APIC base is not listed");
        assert!(msr_slot(&mut s, 0x20f).is_some());
        assert!(msr_slot(&mut s, 0x210).is_none());
    }
}
