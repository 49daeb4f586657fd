use super::*;
use nestor_device::testing::FakeContext;

fn w(apic: &mut Lapic, ctx: &mut FakeContext, offset: u32, value: u32) {
    let addr = (apic.apic_base() & base::ADDRESS) + u64::from(offset);
    apic.mmio_write(addr, &value.to_le_bytes(), ctx);
}

fn r(apic: &mut Lapic, ctx: &mut FakeContext, offset: u32) -> u32 {
    let addr = (apic.apic_base() & base::ADDRESS) + u64::from(offset);
    let mut buf = [0; 4];
    apic.mmio_read(addr, &mut buf, ctx);
    u32::from_le_bytes(buf)
}

/// A software-enabled APIC with spurious vector 0xFF, as an OS sets it up.
fn enabled() -> (Lapic, FakeContext) {
    let mut apic = Lapic::new(0, true);
    let mut ctx = FakeContext::new();
    w(&mut apic, &mut ctx, reg::SVR, 0x1ff);
    (apic, ctx)
}

fn level_message(vector: u8) -> ApicMessage {
    ApicMessage {
        level_triggered: true,
        ..ApicMessage::fixed(vector, 0)
    }
}

/// Take every timer interrupt until `until` like an interrupt handler would: acknowledge and
/// EOI. Returns the times they were taken at.
fn service_timer(apic: &mut Lapic, ctx: &mut FakeContext, until: u64) -> Vec<u64> {
    let mut taken = Vec::new();
    while let Some(d) = apic.next_deadline_ns().filter(|&d| d <= until) {
        ctx.now_ns = ctx.now_ns.max(d);
        apic.on_timer(ctx);
        while let Some(InterruptKind::Fixed(_)) = apic.has_interrupt() {
            apic.acknowledge();
            w(apic, ctx, reg::EOI, 0);
            taken.push(ctx.now_ns);
        }
    }
    ctx.now_ns = ctx.now_ns.max(until);
    taken
}

#[test]
fn power_on_registers() {
    let mut apic = Lapic::new(3, false);
    let mut ctx = FakeContext::new();
    assert_eq!(apic.apic_base(), 0xfee0_0800);
    assert_eq!(Lapic::new(0, true).apic_base(), 0xfee0_0900);
    assert_eq!(r(&mut apic, &mut ctx, reg::ID), 3 << 24);
    assert_eq!(r(&mut apic, &mut ctx, reg::VERSION), 0x0005_0014);
    assert_eq!(r(&mut apic, &mut ctx, reg::DFR), u32::MAX);
    assert_eq!(r(&mut apic, &mut ctx, reg::SVR), 0xff);
    for lvt in [0x320, 0x330, 0x340, 0x350, 0x360, 0x370] {
        assert_eq!(r(&mut apic, &mut ctx, lvt), 0x1_0000, "{lvt:#x}");
    }
    assert_eq!(
        apic.mmio_ranges(),
        vec![MmioRange::new(0xfee0_0000, 0x1000)]
    );
    assert_eq!(apic.name(), "lapic@3");
}

#[test]
fn fixed_interrupt_is_acknowledged_and_retired() {
    let (mut apic, mut ctx) = enabled();
    apic.accept(ApicMessage::fixed(0x41, 0));
    assert_eq!(r(&mut apic, &mut ctx, reg::IRR + 0x20), 1 << 1);
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::Fixed(0x41)));
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x41));
    assert_eq!(r(&mut apic, &mut ctx, reg::IRR + 0x20), 0);
    assert_eq!(r(&mut apic, &mut ctx, reg::ISR + 0x20), 1 << 1);
    assert_eq!(apic.ppr(), 0x40);
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(r(&mut apic, &mut ctx, reg::ISR + 0x20), 0);
    assert_eq!(apic.has_interrupt(), None);
    assert!(
        apic.take_eoi_broadcasts().is_empty(),
        "edge: no EOI broadcast"
    );
}

#[test]
fn tpr_masks_lower_and_equal_classes() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TPR, 0x55);
    apic.accept(ApicMessage::fixed(0x45, 0));
    apic.accept(ApicMessage::fixed(0x5f, 0));
    assert_eq!(apic.has_interrupt(), None);
    assert_eq!(apic.ppr(), 0x55);
    apic.accept(ApicMessage::fixed(0x60, 0));
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::Fixed(0x60)));
    apic.set_tpr(0x70);
    assert_eq!(r(&mut apic, &mut ctx, reg::TPR), 0x70);
    assert_eq!(apic.has_interrupt(), None);
    // The CPU raced the TPR: the acknowledge answers the spurious vector and changes nothing.
    assert_eq!(apic.acknowledge(), AckResult::Vector(0xff));
    apic.set_tpr(0);
    let mut order = Vec::new();
    for _ in 0..3 {
        order.push(apic.acknowledge());
        assert_eq!(
            apic.has_interrupt(),
            None,
            "the vector in service blocks lower classes"
        );
        w(&mut apic, &mut ctx, reg::EOI, 0);
    }
    assert_eq!(order, [0x60, 0x5f, 0x45].map(AckResult::Vector).to_vec());
}

#[test]
fn in_service_vector_blocks_its_class_until_eoi() {
    let (mut apic, mut ctx) = enabled();
    apic.accept(ApicMessage::fixed(0x45, 0));
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x45));
    apic.accept(ApicMessage::fixed(0x41, 0));
    apic.accept(ApicMessage::fixed(0x30, 0));
    assert_eq!(apic.has_interrupt(), None, "same and lower class wait");
    apic.accept(ApicMessage::fixed(0x52, 0));
    assert_eq!(
        apic.acknowledge(),
        AckResult::Vector(0x52),
        "a higher class nests"
    );
    assert_eq!(apic.ppr(), 0x50);
    w(&mut apic, &mut ctx, reg::EOI, 0); // retires 0x52, the highest in service
    assert_eq!(apic.has_interrupt(), None, "0x45 still in service");
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x41));
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x30));
    assert_eq!(apic.apr(), 0x30 & 0xf0);
}

#[test]
fn level_triggered_eoi_is_broadcast() {
    let (mut apic, mut ctx) = enabled();
    apic.accept(level_message(0x61));
    assert_eq!(r(&mut apic, &mut ctx, reg::TMR + 0x30), 1 << 1);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x61));
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(apic.take_eoi_broadcasts(), vec![0x61]);
    assert!(apic.take_eoi_broadcasts().is_empty());
}

#[test]
fn one_shot_counts_down_with_virtual_time() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0xb); // divide by 1: 1 ns per tick
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x30);
    ctx.now_ns = 1_000;
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 10_000);
    ctx.now_ns = 3_500;
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 7_500);
    assert_eq!(apic.next_deadline_ns(), Some(11_000));
    let taken = service_timer(&mut apic, &mut ctx, 100_000);
    assert_eq!(taken, vec![11_000]);
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 0);
    assert_eq!(apic.next_deadline_ns(), None);
    // Divide by 16: the same count lasts 16 times longer.
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0x3);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 100);
    assert_eq!(apic.next_deadline_ns(), Some(ctx.now_ns + 1_600));
}

#[test]
fn periodic_timer_interrupts_at_its_rate() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0x3); // divide by 16
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x2_0031);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 625); // 10 us
    ctx.now_ns = 5_000;
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 625 - 5_000 / 16);
    let taken = service_timer(&mut apic, &mut ctx, 1_000_000);
    assert_eq!(taken.len(), 100);
    assert!(taken
        .iter()
        .enumerate()
        .all(|(i, &t)| t == 10_000 * (i as u64 + 1)));
    // Masked: the count goes on, no interrupts, no timer calls.
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x3_0031);
    assert_eq!(apic.next_deadline_ns(), None);
    ctx.now_ns = 1_234_000;
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 625 - 4_000 / 16);
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x2_0031);
    assert_eq!(apic.next_deadline_ns(), Some(1_240_000), "no stale expiry");
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 0);
    assert_eq!(apic.next_deadline_ns(), None, "count 0 stops the timer");
}

#[test]
fn divide_change_keeps_the_count() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0xb);
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x30);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 1_000);
    ctx.now_ns = 400;
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0x0); // divide by 2
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 600);
    assert_eq!(apic.next_deadline_ns(), Some(400 + 1_200));
}

#[test]
fn tsc_deadline_fires_once_and_clears() {
    let (mut apic, mut ctx) = enabled();
    apic.set_tsc_clock(2_000_000_000, 1_000);
    apic.set_tsc_deadline(5_000);
    assert_eq!(apic.tsc_deadline(), 0, "ignored outside TSC-deadline mode");
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x4_0040);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 1_000);
    assert_eq!(
        r(&mut apic, &mut ctx, reg::TIMER_INITIAL),
        0,
        "count ignored"
    );
    assert_eq!(apic.next_deadline_ns(), None);
    apic.set_tsc_deadline(2_001_000); // TSC 2_001_000 at 1 ms
    assert_eq!(apic.tsc_deadline(), 2_001_000);
    assert_eq!(apic.next_deadline_ns(), Some(1_000_000));
    let taken = service_timer(&mut apic, &mut ctx, 5_000_000);
    assert_eq!(taken, vec![1_000_000]);
    assert_eq!(apic.tsc_deadline(), 0);
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 0);
    // A deadline in the past fires at once; leaving the mode disarms.
    apic.set_tsc_deadline(1);
    assert_eq!(apic.next_deadline_ns(), Some(0));
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x40);
    assert_eq!(apic.next_deadline_ns(), None);
    assert_eq!(tsc_at(1_000_000, 2_000_000_000, 1_000), 2_001_000);
}

#[test]
fn software_disabled_apic_answers_spurious_and_keeps_lvts_masked() {
    let mut apic = Lapic::new(0, true);
    let mut ctx = FakeContext::new();
    w(&mut apic, &mut ctx, reg::SVR, 0xef);
    apic.accept(ApicMessage::fixed(0x50, 0));
    assert_eq!(apic.has_interrupt(), None, "fixed messages are ignored");
    assert_eq!(apic.acknowledge(), AckResult::Vector(0xef));
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x30);
    assert_eq!(r(&mut apic, &mut ctx, reg::LVT_TIMER), 0x1_0030);
    // Enabling, then disabling again masks what was unmasked.
    w(&mut apic, &mut ctx, reg::SVR, 0x1ef);
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x30);
    assert_eq!(r(&mut apic, &mut ctx, reg::LVT_TIMER), 0x30);
    w(&mut apic, &mut ctx, reg::SVR, 0xef);
    assert_eq!(r(&mut apic, &mut ctx, reg::LVT_TIMER), 0x1_0030);
    // NMI is still taken.
    apic.accept(ApicMessage {
        delivery_mode: DeliveryMode::Nmi,
        ..ApicMessage::fixed(0, 0)
    });
    assert_eq!(apic.acknowledge(), AckResult::Nmi);
}

#[test]
fn disabled_apic_is_a_virtual_wire() {
    let mut apic = Lapic::new(0, true);
    let mut ctx = FakeContext::new();
    apic.set_lint(0, true);
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::ExtInt));
    assert_eq!(apic.acknowledge(), AckResult::ExtInt);
    apic.set_lint(0, false);
    assert_eq!(apic.has_interrupt(), None);
    apic.set_lint(1, true);
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::Nmi));
    assert_eq!(apic.has_maskable_interrupt(), None);
    assert_eq!(apic.acknowledge(), AckResult::Nmi);
    apic.set_lint(1, true);
    assert_eq!(apic.has_interrupt(), None, "NMI is edge triggered");
    apic.set_lint(1, false);
    // Enabled with LINT0 masked: the 8259 is cut off until LINT0 is ExtINT.
    w(&mut apic, &mut ctx, reg::SVR, 0x1ff);
    apic.set_lint(0, true);
    assert_eq!(apic.has_interrupt(), None);
    w(&mut apic, &mut ctx, reg::LVT_LINT0, 0x700);
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::ExtInt));
    w(&mut apic, &mut ctx, reg::LVT_LINT0, 0x1_0700);
    assert_eq!(apic.has_interrupt(), None);
    // Hardware-disabled: the window closes and LINT0 is the CPU's INTR again.
    apic.set_apic_base(0xfee0_0000, &mut ctx).unwrap();
    assert_eq!(ctx.remaps, 1);
    assert!(apic.mmio_ranges().is_empty());
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::ExtInt));
    assert!(!apic.matches(&ApicMessage::fixed(0x40, 0)));
}

#[test]
fn lint_pins_follow_their_lvt() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::LVT_LINT1, 0x400);
    apic.set_lint(1, true);
    assert_eq!(apic.acknowledge(), AckResult::Nmi);
    // LINT0 as a level-triggered fixed interrupt: one delivery per EOI while asserted.
    w(&mut apic, &mut ctx, reg::LVT_LINT0, 0x8000 | 0x39);
    apic.set_lint(0, true);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x39));
    assert_ne!(r(&mut apic, &mut ctx, reg::LVT_LINT0) & lvt::REMOTE_IRR, 0);
    assert_eq!(apic.has_interrupt(), None);
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(apic.take_eoi_broadcasts(), vec![0x39]);
    assert_eq!(
        apic.acknowledge(),
        AckResult::Vector(0x39),
        "still asserted"
    );
    apic.set_lint(0, false);
    w(&mut apic, &mut ctx, reg::EOI, 0);
    assert_eq!(apic.has_interrupt(), None);
    assert_eq!(r(&mut apic, &mut ctx, reg::LVT_LINT0) & lvt::REMOTE_IRR, 0);
}

#[test]
fn extint_message_asks_the_pic() {
    let (mut apic, _ctx) = enabled();
    apic.accept(ApicMessage {
        delivery_mode: DeliveryMode::ExtInt,
        ..ApicMessage::fixed(0, 0)
    });
    assert_eq!(apic.has_interrupt(), Some(InterruptKind::ExtInt));
    assert_eq!(apic.acknowledge(), AckResult::ExtInt);
    assert_eq!(apic.has_interrupt(), None);
}

#[test]
fn icr_sends_ipis() {
    let (mut apic, mut ctx) = enabled();
    // Self shorthand: delivered here.
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0x4_0000 | 0x4000 | 0x77);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x77));
    assert!(apic.take_ipis().is_empty());
    // Physical destination 1: for the machine to route.
    w(&mut apic, &mut ctx, reg::ICR_HIGH, 1 << 24);
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0x4000 | 0x80);
    assert_eq!(r(&mut apic, &mut ctx, reg::ICR_HIGH), 1 << 24);
    assert_eq!(
        apic.take_ipis(),
        vec![OutgoingIpi {
            message: ApicMessage::fixed(0x80, 1),
            exclude_sender: false
        }]
    );
    // INIT and SIPI to all others, as a BIOS starts the APs.
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0xc_4500);
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0xc_0000 | 0x8000 | 0x500); // INIT de-assert
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0xc_4600 | 0x09);
    let ipis = apic.take_ipis();
    assert_eq!(ipis.len(), 2);
    assert!(ipis
        .iter()
        .all(|i| i.exclude_sender && i.message.dest == BROADCAST));
    assert_eq!(ipis[1].message.delivery_mode, DeliveryMode::StartUp);
    // The receiving side records them for the machine.
    let mut ap = Lapic::new(1, false);
    for ipi in ipis {
        if ap.matches(&ipi.message) {
            ap.accept(ipi.message);
        }
    }
    assert_eq!(
        ap.take_startup_events(),
        vec![StartupEvent::Init, StartupEvent::StartUp(9)]
    );
}

#[test]
fn esr_is_write_then_read_and_raises_the_error_lvt() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::LVT_ERROR, 0xfe);
    w(&mut apic, &mut ctx, reg::ICR_LOW, 0x4_0000 | 0x05); // illegal vector
    apic.accept(ApicMessage::fixed(0x03, 0));
    assert_eq!(r(&mut apic, &mut ctx, reg::ESR), 0, "not latched yet");
    w(&mut apic, &mut ctx, reg::ESR, 0);
    assert_eq!(
        r(&mut apic, &mut ctx, reg::ESR),
        esr::SEND_ILLEGAL_VECTOR | esr::RECEIVE_ILLEGAL_VECTOR
    );
    assert_eq!(apic.acknowledge(), AckResult::Vector(0xfe));
    w(&mut apic, &mut ctx, reg::ESR, 0);
    assert_eq!(r(&mut apic, &mut ctx, reg::ESR), 0);
}

#[test]
fn logical_destinations_flat_and_cluster() {
    let (mut apic, mut ctx) = enabled();
    let logical = |dest| ApicMessage {
        dest_mode: DestinationMode::Logical,
        ..ApicMessage::fixed(0x40, dest)
    };
    w(&mut apic, &mut ctx, reg::LDR, 0x04 << 24);
    assert!(apic.matches(&logical(0x0c)));
    assert!(!apic.matches(&logical(0x03)));
    w(&mut apic, &mut ctx, reg::DFR, 0x0fff_ffff); // cluster model
    assert_eq!(r(&mut apic, &mut ctx, reg::DFR), 0x0fff_ffff);
    w(&mut apic, &mut ctx, reg::LDR, 0x32 << 24);
    assert!(apic.matches(&logical(0x32)));
    assert!(apic.matches(&logical(0xf2)));
    assert!(!apic.matches(&logical(0x22)));
    assert!(!apic.matches(&logical(0x31)));
    assert!(apic.matches(&ApicMessage::fixed(0x40, BROADCAST)));
    assert!(!apic.matches(&ApicMessage::fixed(0x40, 1)));
}

#[test]
fn apic_base_moves_the_window() {
    let (mut apic, mut ctx) = enabled();
    assert_eq!(
        apic.set_apic_base(0xfee0_0000 | 1, &mut ctx),
        Err(InvalidApicBase)
    );
    assert_eq!(
        apic.set_apic_base(0xfee0_0000 | base::EXTD | base::ENABLE, &mut ctx),
        Err(InvalidApicBase)
    );
    assert_eq!(ctx.remaps, 0);
    apic.set_apic_base(0xfed4_0000 | base::ENABLE, &mut ctx)
        .unwrap();
    assert_eq!(ctx.remaps, 1);
    assert_eq!(apic.apic_base(), 0xfed4_0900, "BSP bit is kept");
    assert_eq!(
        apic.mmio_ranges(),
        vec![MmioRange::new(0xfed4_0000, 0x1000)]
    );
    assert_eq!(r(&mut apic, &mut ctx, reg::SVR), 0x1ff);
    let mut buf = [0; 4];
    apic.mmio_read(0xfee0_00f0, &mut buf, &mut ctx);
    assert_eq!(buf, [0xff; 4], "the old window is gone");
    // Disable and re-enable: registers come back in their power-on state.
    apic.set_apic_base(0xfed4_0000, &mut ctx).unwrap();
    apic.set_apic_base(0xfed4_0000 | base::ENABLE, &mut ctx)
        .unwrap();
    assert_eq!(r(&mut apic, &mut ctx, reg::SVR), 0xff);
}

#[test]
fn narrow_and_misaligned_accesses() {
    let (mut apic, mut ctx) = enabled();
    let mut byte = [0u8; 1];
    apic.mmio_read(DEFAULT_BASE + 0x31, &mut byte, &mut ctx);
    assert_eq!(byte, [0x00]);
    apic.mmio_read(DEFAULT_BASE + 0x32, &mut byte, &mut ctx);
    assert_eq!(byte, [0x05]);
    let mut wide = [0u8; 8];
    apic.mmio_read(DEFAULT_BASE + 0x30, &mut wide, &mut ctx);
    assert_eq!(wide, [0x14, 0, 5, 0, 0, 0, 0, 0]);
    apic.mmio_write(DEFAULT_BASE + 0x82, &[0x12, 0x34], &mut ctx);
    apic.mmio_write(DEFAULT_BASE + 0x80, &[0x12], &mut ctx);
    assert_eq!(apic.tpr(), 0, "only aligned 32-bit writes count");
    apic.mmio_write(DEFAULT_BASE + 0x80, &0x20u64.to_le_bytes(), &mut ctx);
    assert_eq!(apic.tpr(), 0x20);
}

#[test]
fn init_keeps_id_and_base() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::ID, 7 << 24);
    apic.accept(ApicMessage::fixed(0x40, 7));
    apic.init();
    assert_eq!(apic.id(), 7);
    assert_eq!(r(&mut apic, &mut ctx, reg::SVR), 0xff);
    assert_eq!(r(&mut apic, &mut ctx, reg::IRR + 0x20), 0);
    apic.reset();
    assert_eq!(apic.id(), 0);
}

#[test]
fn msi_decodes_into_a_message() {
    let m = ApicMessage::from_msi(0xfee0_3004, 0xc041).unwrap();
    assert_eq!(m.dest, 3);
    assert_eq!(m.dest_mode, DestinationMode::Logical);
    assert_eq!(m.vector, 0x41);
    assert!(m.level_triggered);
    assert_eq!(ApicMessage::from_msi(0xfed0_0000, 0x41), None);
    assert_eq!(ApicMessage::from_msi(0xfee0_0000, 0x341), None);
}

/// A LAPIC in the middle of things: periodic timer running, vectors pending and in service.
fn busy() -> (Lapic, FakeContext) {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0x1);
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x2_00ec);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 12_345);
    w(&mut apic, &mut ctx, reg::LDR, 1 << 24);
    apic.accept(level_message(0x51));
    apic.acknowledge();
    apic.accept(ApicMessage::fixed(0x42, 0));
    apic.set_tsc_clock(3_000_000_000, 77);
    ctx.now_ns = 333_333;
    (apic, ctx)
}

#[test]
fn state_round_trips() {
    let (apic, _ctx) = busy();
    let mut copy = Lapic::new(0, true);
    copy.restore(&apic.save().unwrap()).unwrap();
    assert_eq!(copy.state(), apic.state());
    assert!(copy.restore(&apic.save().unwrap()[1..]).is_err());
}

#[test]
fn restored_lapic_carries_on_mid_count() {
    let (mut a, mut ctx_a) = busy();
    let mut b = Lapic::new(0, true);
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = ctx_a.clone();
    let steps: [(u32, Option<u32>, u64); 4] = [
        (reg::TIMER_CURRENT, None, 500_000),
        (reg::EOI, Some(0), 900_000),
        (reg::TIMER_DIVIDE, Some(0xb), 1_500_000),
        (reg::IRR + 0x70, None, 3_000_000),
    ];
    for (offset, value, until) in steps {
        match value {
            Some(v) => {
                w(&mut a, &mut ctx_a, offset, v);
                w(&mut b, &mut ctx_b, offset, v);
            }
            None => assert_eq!(r(&mut a, &mut ctx_a, offset), r(&mut b, &mut ctx_b, offset)),
        }
        let ta = service_timer(&mut a, &mut ctx_a, until);
        let tb = service_timer(&mut b, &mut ctx_b, until);
        assert_eq!(ta, tb);
        assert_eq!(a.state(), b.state());
        assert_eq!(a.has_interrupt(), b.has_interrupt());
    }
    assert_eq!(a.take_eoi_broadcasts(), vec![0x51]);
}

#[test]
fn arbitrary_guest_accesses_never_panic() {
    let (mut apic, mut ctx) = enabled();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x as u32 >> 3) & 0x3ff;
        let addr = (apic.apic_base() & base::ADDRESS) + u64::from(offset);
        let len = [1, 2, 4, 8][((x >> 20) & 3) as usize];
        let value = (x >> 24).to_le_bytes();
        ctx.now_ns += (x >> 44) % 5_000;
        match (x >> 40) & 7 {
            0..=2 => apic.mmio_write(addr & !0xf, &value[..4], &mut ctx),
            3 => apic.mmio_write(addr, &value[..len], &mut ctx),
            4 => {
                let mut buf = [0; 8];
                apic.mmio_read(addr, &mut buf[..len], &mut ctx);
            }
            5 => {
                let _ = apic.set_apic_base(x & 0xfff0_0000_ffff_f900, &mut ctx);
                apic.set_tsc_deadline(x >> 30);
                apic.set_lint((x >> 9) as u8 & 1, x & 0x400 != 0);
            }
            6 => {
                apic.accept(ApicMessage {
                    vector: (x >> 12) as u8,
                    delivery_mode: DeliveryMode::from_bits((x >> 28) as u32)
                        .unwrap_or(DeliveryMode::Fixed),
                    dest_mode: DestinationMode::Physical,
                    dest: 0,
                    level_triggered: x & 0x800 != 0,
                });
            }
            _ => {
                apic.acknowledge();
                apic.take_ipis();
                apic.take_eoi_broadcasts();
            }
        }
        if apic.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            apic.on_timer(&mut ctx);
        }
    }
}

#[test]
fn plugin_builds_a_lapic() {
    let mut config = DeviceConfig::default();
    config.options.insert("id".into(), "2".into());
    config.options.insert("bsp".into(), "0".into());
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "lapic@2");
    config.options.insert("id".into(), "255".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}

#[test]
fn late_timer_call_coalesces_periods() {
    let (mut apic, mut ctx) = enabled();
    w(&mut apic, &mut ctx, reg::TIMER_DIVIDE, 0xb);
    w(&mut apic, &mut ctx, reg::LVT_TIMER, 0x2_0031);
    w(&mut apic, &mut ctx, reg::TIMER_INITIAL, 1_000);
    ctx.now_ns = 9_500;
    apic.on_timer(&mut ctx);
    assert_eq!(apic.acknowledge(), AckResult::Vector(0x31));
    assert_eq!(
        apic.has_interrupt(),
        None,
        "nine missed periods, one interrupt"
    );
    assert_eq!(apic.next_deadline_ns(), Some(10_000));
    assert_eq!(r(&mut apic, &mut ctx, reg::TIMER_CURRENT), 500);
}
