use super::*;
use nestor_device::testing::FakeContext;

const START: i64 = 1_700_000_000; // Tuesday 2023-11-14 22:13:20 UTC
const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn read(rtc: &mut Rtc, ctx: &mut FakeContext, index: u8) -> u8 {
    rtc.io_write(0x70, 1, u32::from(index), ctx);
    rtc.io_read(0x71, 1, ctx) as u8
}

fn write(rtc: &mut Rtc, ctx: &mut FakeContext, index: u8, value: u8) {
    rtc.io_write(0x70, 1, u32::from(index), ctx);
    rtc.io_write(0x71, 1, u32::from(value), ctx);
}

fn clock(rtc: &mut Rtc, ctx: &mut FakeContext) -> [u8; 8] {
    [0x32, 9, 8, 7, 6, 4, 2, 0].map(|i| read(rtc, ctx, i))
}

/// Run an interrupt handler for IRQ8 (read register C) at every rising edge until `until`;
/// returns how many interrupts were taken.
fn service_irqs(rtc: &mut Rtc, ctx: &mut FakeContext, until: u64) -> usize {
    let mut taken = 0;
    while let Some(d) = rtc.next_deadline_ns().filter(|&d| d <= until) {
        ctx.now_ns = ctx.now_ns.max(d);
        rtc.on_timer(ctx);
        if ctx.irq(IRQ) {
            taken += 1;
            read(rtc, ctx, reg::C);
        }
    }
    ctx.now_ns = until;
    taken
}

#[test]
fn starts_at_the_configured_time_in_bcd_24h() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    assert_eq!(
        clock(&mut rtc, &mut ctx),
        [0x20, 0x23, 0x11, 0x14, 3, 0x22, 0x13, 0x20]
    );
    assert_eq!(read(&mut rtc, &mut ctx, reg::A), 0x26);
    assert_eq!(read(&mut rtc, &mut ctx, reg::B), 0x02);
    assert_eq!(read(&mut rtc, &mut ctx, reg::D), 0x80);
}

#[test]
fn time_advances_with_virtual_time_across_year_end() {
    let new_year = days_from_civil(2024, 1, 1) * 86_400;
    let mut rtc = Rtc::new(new_year - 2);
    let mut ctx = FakeContext::new();
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x58);
    ctx.now_ns = S - 1;
    assert_eq!(
        read(&mut rtc, &mut ctx, reg::SECONDS),
        0x58,
        "update at 1 s"
    );
    ctx.now_ns = 2 * S;
    assert_eq!(
        clock(&mut rtc, &mut ctx),
        [0x20, 0x24, 0x01, 0x01, 2, 0x00, 0x00, 0x00],
        "2024-01-01 is a Monday (day 2)"
    );
    ctx.now_ns = 2 * S + 86_400 * 59 * S;
    assert_eq!(
        &clock(&mut rtc, &mut ctx)[..5],
        &[0x20, 0x24, 0x02, 0x29, 5]
    );
}

#[test]
fn binary_12_hour_mode_set_by_the_guest() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::B, B_SET | B_BINARY);
    for (index, value) in [(0, 59), (2, 59), (4, 0x80 | 11), (7, 31), (8, 12), (9, 99)] {
        write(&mut rtc, &mut ctx, index, value);
    }
    write(&mut rtc, &mut ctx, reg::CENTURY, 20);
    ctx.now_ns = 10 * S;
    assert_eq!(
        read(&mut rtc, &mut ctx, reg::SECONDS),
        59,
        "SET stops updates"
    );
    write(&mut rtc, &mut ctx, reg::B, B_BINARY);
    ctx.now_ns = 11 * S;
    // 2099-12-31 11:59:59 PM + 1 s = 2100-01-01 12:00:00 AM.
    assert_eq!(clock(&mut rtc, &mut ctx), [21, 0, 1, 1, 4, 12, 0, 0]);
}

#[test]
fn set_bit_clears_update_interrupt_enable() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::B, B_SET | B_UIE | B_24H);
    assert_eq!(read(&mut rtc, &mut ctx, reg::B), B_SET | B_24H);
}

#[test]
fn uip_is_set_just_before_each_update() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    let uip = |rtc: &mut Rtc, ctx: &mut FakeContext, t: u64| {
        ctx.now_ns = t;
        read(rtc, ctx, reg::A) & 0x80 != 0
    };
    assert!(!uip(&mut rtc, &mut ctx, 500 * MS));
    assert!(!uip(&mut rtc, &mut ctx, S - 2_229_000));
    assert!(uip(&mut rtc, &mut ctx, S - 2_228_000));
    assert!(uip(&mut rtc, &mut ctx, S - 1));
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x20);
    assert!(!uip(&mut rtc, &mut ctx, S));
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x21);
    write(&mut rtc, &mut ctx, reg::B, B_SET | B_24H);
    assert!(!uip(&mut rtc, &mut ctx, 2 * S - 1000), "SET clears UIP");
}

#[test]
fn periodic_interrupt_rates() {
    for (rs, per_second) in [(3u8, 8192usize), (6, 1024), (0x0f, 2), (1, 256), (0, 0)] {
        let mut rtc = Rtc::new(START);
        let mut ctx = FakeContext::new();
        write(&mut rtc, &mut ctx, reg::A, 0x20 | rs);
        write(&mut rtc, &mut ctx, reg::B, B_PIE | B_24H);
        assert_eq!(service_irqs(&mut rtc, &mut ctx, S), per_second, "RS={rs}");
    }
}

#[test]
fn periodic_flag_without_interrupt_and_reg_c_clears() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    assert_eq!(
        rtc.next_deadline_ns(),
        None,
        "no interrupt enabled: no timer"
    );
    ctx.now_ns = 2 * MS;
    assert_eq!(read(&mut rtc, &mut ctx, reg::C), C_PF);
    assert_eq!(read(&mut rtc, &mut ctx, reg::C), 0);
    write(&mut rtc, &mut ctx, reg::B, B_PIE | B_24H);
    assert!(!ctx.irq(IRQ));
    ctx.now_ns = 3 * MS;
    rtc.on_timer(&mut ctx);
    assert!(ctx.irq(IRQ));
    assert_eq!(read(&mut rtc, &mut ctx, reg::C), C_IRQF | C_PF);
    assert!(!ctx.irq(IRQ), "reading C lowers IRQ8");
}

#[test]
fn update_ended_interrupt_once_a_second() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::B, B_UIE | B_24H);
    assert_eq!(service_irqs(&mut rtc, &mut ctx, 5 * S + MS), 5);
    let edges = ctx.rising_edge_times(IRQ);
    assert_eq!(edges, vec![S, 2 * S, 3 * S, 4 * S, 5 * S]);
}

#[test]
fn alarm_with_dont_care_fields() {
    let mut rtc = Rtc::new(START); // 22:13:20
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::SECONDS_ALARM, 0x30);
    write(&mut rtc, &mut ctx, reg::MINUTES_ALARM, 0xc0);
    write(&mut rtc, &mut ctx, reg::HOURS_ALARM, 0xff);
    write(&mut rtc, &mut ctx, reg::B, B_AIE | B_24H);
    assert_eq!(
        service_irqs(&mut rtc, &mut ctx, 200 * S),
        4,
        "at :30 of each minute"
    );
    let edges = ctx.rising_edge_times(IRQ);
    assert_eq!(edges, vec![10 * S, 70 * S, 130 * S, 190 * S]);
    // An exact alarm: 22:15:00.
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    for (index, value) in [(1, 0x00), (3, 0x15), (5, 0x22)] {
        write(&mut rtc, &mut ctx, index, value);
    }
    ctx.now_ns = 99 * S;
    assert_eq!(read(&mut rtc, &mut ctx, reg::C) & C_AF, 0);
    ctx.now_ns = 100 * S;
    assert_eq!(
        read(&mut rtc, &mut ctx, reg::C) & C_AF,
        C_AF,
        "flag set without AIE"
    );
}

#[test]
fn divider_reset_holds_the_clock_and_restarts_half_a_second_later() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    ctx.now_ns = 300 * MS;
    read(&mut rtc, &mut ctx, reg::C);
    write(&mut rtc, &mut ctx, reg::A, 0x66);
    ctx.now_ns = 10 * S;
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x20);
    assert_eq!(
        read(&mut rtc, &mut ctx, reg::C),
        0,
        "no periodic flag in reset"
    );
    write(&mut rtc, &mut ctx, reg::A, 0x26);
    ctx.now_ns = 10 * S + 499 * MS;
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x20);
    ctx.now_ns = 10 * S + 500 * MS;
    assert_eq!(read(&mut rtc, &mut ctx, reg::SECONDS), 0x21);
}

#[test]
fn nvram_nmi_bit_and_machine_presets() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    rtc.set_cmos(0x10, 0x44);
    rtc.set_cmos(0x95, 0x12); // index taken modulo 128
    assert_eq!(rtc.cmos(0x15), 0x12);
    rtc.io_write(0x70, 1, 0x90, &mut ctx);
    assert!(rtc.nmi_masked());
    assert_eq!(rtc.io_read(0x71, 1, &mut ctx), 0x44);
    rtc.io_write(0x71, 1, 0x55, &mut ctx);
    assert_eq!(rtc.cmos(0x10), 0x55);
    rtc.io_write(0x70, 1, 0x7f, &mut ctx);
    assert!(!rtc.nmi_masked());
    assert_eq!(
        rtc.io_read(0x70, 1, &mut ctx),
        0xff,
        "index port is write-only"
    );
    write(&mut rtc, &mut ctx, reg::D, 0);
    assert_eq!(read(&mut rtc, &mut ctx, reg::D), 0x80, "D reads VRT");
    // A 16-bit write: index to 0x70, data to 0x71.
    rtc.io_write(0x70, 2, 0x6620, &mut ctx);
    assert_eq!(rtc.cmos(0x20), 0x66);
}

#[test]
fn reset_clears_enables_and_lowers_irq_at_next_timer() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::B, B_PIE | B_24H);
    ctx.run_until(&mut rtc, 10 * MS);
    assert!(ctx.irq(IRQ));
    rtc.reset();
    ctx.run_until(&mut rtc, 11 * MS);
    assert!(!ctx.irq(IRQ));
    assert_eq!(rtc.cmos(reg::B), B_24H);
    assert_eq!(rtc.cmos(reg::HOURS), 0x22, "time is kept");
}

#[test]
fn state_round_trips() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    write(&mut rtc, &mut ctx, reg::B, B_PIE | B_UIE | B_24H);
    rtc.io_write(0x70, 1, 0x8e, &mut ctx);
    ctx.run_until(&mut rtc, 3 * S);
    let mut copy = Rtc::new(0);
    copy.restore(&rtc.save().unwrap()).unwrap();
    assert_eq!(copy.state(), rtc.state());
    let mut bad = rtc.state().clone();
    bad.cmos.truncate(10);
    assert!(copy
        .restore(&save_state(STATE_VERSION, &bad).unwrap())
        .is_err());
}

#[test]
fn restored_rtc_carries_on_mid_operation() {
    let mut a = Rtc::new(START);
    let mut ctx_a = FakeContext::new();
    write(&mut a, &mut ctx_a, reg::A, 0x2a); // 64 Hz
    write(&mut a, &mut ctx_a, reg::B, B_PIE | B_AIE | B_24H);
    write(&mut a, &mut ctx_a, reg::SECONDS_ALARM, 0xc0);
    write(&mut a, &mut ctx_a, reg::MINUTES_ALARM, 0x14);
    write(&mut a, &mut ctx_a, reg::HOURS_ALARM, 0xc0);
    service_irqs(&mut a, &mut ctx_a, 1_234 * MS);
    let mut b = Rtc::new(0);
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    ctx_b.now_ns = ctx_a.now_ns;
    ctx_a.clear_events();
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for step in 1..=8u64 {
        let until = 1_234 * MS + step * 10 * S;
        seen_a.push(service_irqs(&mut a, &mut ctx_a, until));
        seen_b.push(service_irqs(&mut b, &mut ctx_b, until));
        seen_a.push(usize::from(read(&mut a, &mut ctx_a, reg::SECONDS)));
        seen_b.push(usize::from(read(&mut b, &mut ctx_b, reg::SECONDS)));
    }
    assert_eq!(seen_a, seen_b);
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
    assert_eq!(a.state(), b.state());
    assert_eq!(read(&mut b, &mut ctx_b, reg::MINUTES), 0x14);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut rtc = Rtc::new(START);
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0xdead_beef_cafe_f00d;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = 0x6f + (x % 4) as u16;
        let size = [1, 2, 4][((x >> 4) % 3) as usize];
        ctx.now_ns += (x >> 30) % (20 * MS);
        if x & 0x100 != 0 {
            rtc.io_write(port, size, (x >> 16) as u32, &mut ctx);
        } else {
            rtc.io_read(port, size, &mut ctx);
        }
        if rtc.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            rtc.on_timer(&mut ctx);
        }
    }
    ctx.now_ns = u64::MAX;
    rtc.on_timer(&mut ctx);
    read(&mut rtc, &mut ctx, 0);
}

#[test]
fn plugin_takes_the_start_time() {
    let mut config = DeviceConfig {
        start_time_unix: START,
        ..DeviceConfig::default()
    };
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    let mut ctx = FakeContext::new();
    dev.io_write(0x70, 1, 0x09, &mut ctx);
    assert_eq!(dev.io_read(0x71, 1, &mut ctx), 0x23);
    config.options.insert("base".into(), "0x70".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
