use super::*;
use nestor_device::testing::FakeContext;

const MS: u64 = 1_000_000;

fn write64(hpet: &mut Hpet, ctx: &mut FakeContext, offset: u64, value: u64) {
    hpet.mmio_write(DEFAULT_BASE + offset, &value.to_le_bytes(), ctx);
}

fn write32(hpet: &mut Hpet, ctx: &mut FakeContext, offset: u64, value: u32) {
    hpet.mmio_write(DEFAULT_BASE + offset, &value.to_le_bytes(), ctx);
}

fn read64(hpet: &mut Hpet, ctx: &mut FakeContext, offset: u64) -> u64 {
    let mut buf = [0; 8];
    hpet.mmio_read(DEFAULT_BASE + offset, &mut buf, ctx);
    u64::from_le_bytes(buf)
}

fn read32(hpet: &mut Hpet, ctx: &mut FakeContext, offset: u64) -> u32 {
    let mut buf = [0; 4];
    hpet.mmio_read(DEFAULT_BASE + offset, &mut buf, ctx);
    u32::from_le_bytes(buf)
}

fn timer(n: u64) -> u64 {
    reg::TIMER0 + n * reg::TIMER_STRIDE
}

#[test]
fn capabilities_read_as_halves() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    assert_eq!(read32(&mut hpet, &mut ctx, 0x000), 0x8086_a201);
    assert_eq!(read32(&mut hpet, &mut ctx, 0x004), 100_000_000);
    assert_eq!(read64(&mut hpet, &mut ctx, 0x000), CAPABILITIES);
    let t1 = read64(&mut hpet, &mut ctx, timer(1));
    assert_eq!(t1 & 0x30, 0x30, "periodic and 64-bit capable");
    assert_eq!(t1 >> 32, 0x00f0_0104);
    assert_eq!(read64(&mut hpet, &mut ctx, timer(2) + 8), u64::MAX);
    assert_eq!(read64(&mut hpet, &mut ctx, 0x400 - 8), 0);
    assert_eq!(hpet.mmio_ranges(), vec![MmioRange::new(0xfed0_0000, 0x400)]);
}

#[test]
fn main_counter_runs_at_10_mhz_only_when_enabled() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(&mut hpet, &mut ctx, reg::COUNTER, 0xffff_fff0);
    ctx.now_ns = 5 * MS;
    assert_eq!(
        read64(&mut hpet, &mut ctx, reg::COUNTER),
        0xffff_fff0,
        "halted"
    );
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    ctx.now_ns += 2_000;
    assert_eq!(read32(&mut hpet, &mut ctx, reg::COUNTER), 0x0000_0004);
    assert_eq!(read32(&mut hpet, &mut ctx, reg::COUNTER + 4), 1);
    ctx.now_ns += 1_000_000_000;
    assert_eq!(
        read64(&mut hpet, &mut ctx, reg::COUNTER),
        0xffff_fff0 + 20 + 10_000_000
    );
    write32(&mut hpet, &mut ctx, reg::CONFIG, 0);
    let frozen = read64(&mut hpet, &mut ctx, reg::COUNTER);
    ctx.now_ns += MS;
    assert_eq!(read64(&mut hpet, &mut ctx, reg::COUNTER), frozen);
    // Writing one half keeps the other.
    write32(&mut hpet, &mut ctx, reg::COUNTER + 4, 7);
    assert_eq!(
        read64(&mut hpet, &mut ctx, reg::COUNTER),
        7 << 32 | frozen & 0xffff_ffff
    );
}

#[test]
fn periodic_timer_interrupts_at_the_programmed_rate() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    // Timer 2 to IOAPIC input 20, periodic, edge, every 1 ms. Without VAL_SET a periodic
    // timer's comparator write only sets the period.
    let periodic = 20 << 9 | cfg::PERIODIC | cfg::INT_ENABLE;
    write64(&mut hpet, &mut ctx, timer(2), periodic);
    write64(&mut hpet, &mut ctx, timer(2) + 8, 10_000);
    assert_eq!(read64(&mut hpet, &mut ctx, timer(2) + 8), u64::MAX);
    write64(&mut hpet, &mut ctx, timer(2), periodic | cfg::VAL_SET);
    write64(&mut hpet, &mut ctx, timer(2) + 8, 10_000);
    ctx.now_ns = 300_000;
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    ctx.run_until(&mut hpet, 300_000 + 100 * MS);
    let edges = ctx.rising_edge_times(20);
    assert_eq!(edges.len(), 100);
    assert!(edges
        .iter()
        .enumerate()
        .all(|(i, &t)| t == 300_000 + (i as u64 + 1) * MS));
    assert!(
        ctx.irq(20),
        "an edge timer leaves its line high between matches"
    );
    assert_eq!(read64(&mut hpet, &mut ctx, timer(2) + 8), 1_010_000);
    assert_eq!(
        read64(&mut hpet, &mut ctx, reg::STATUS),
        0,
        "edge: no status"
    );
    // Disabling the HPET drops the line.
    write64(&mut hpet, &mut ctx, reg::CONFIG, 0);
    assert!(!ctx.irq(20));
    assert_eq!(hpet.next_deadline_ns(), None);
}

#[test]
fn linux_style_periodic_setup_with_val_set() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(
        &mut hpet,
        &mut ctx,
        reg::CONFIG,
        ENABLE | LEGACY_REPLACEMENT,
    );
    ctx.now_ns = 50 * MS;
    write32(&mut hpet, &mut ctx, reg::CONFIG, LEGACY_REPLACEMENT as u32);
    let now = read32(&mut hpet, &mut ctx, reg::COUNTER);
    let delta = 40_000; // 4 ms: HZ=250
    let flags = cfg::INT_ENABLE | cfg::PERIODIC | cfg::VAL_SET | cfg::MODE32;
    write32(&mut hpet, &mut ctx, timer(0), flags as u32);
    write32(&mut hpet, &mut ctx, timer(0) + 8, now + delta);
    write32(&mut hpet, &mut ctx, timer(0) + 8, delta);
    assert_eq!(read64(&mut hpet, &mut ctx, timer(0)) & cfg::VAL_SET, 0);
    assert_eq!(
        read64(&mut hpet, &mut ctx, timer(0) + 8),
        u64::from(now + delta)
    );
    write32(
        &mut hpet,
        &mut ctx,
        reg::CONFIG,
        (ENABLE | LEGACY_REPLACEMENT) as u32,
    );
    let start = ctx.now_ns;
    ctx.clear_events();
    ctx.run_until(&mut hpet, start + 40 * MS);
    let edges = ctx.rising_edge_times(0);
    assert_eq!(edges.len(), 10);
    assert_eq!(edges[0], start + 4 * MS);
    assert_eq!(edges[9], start + 40 * MS);
}

#[test]
fn legacy_replacement_routes_timers_0_and_1() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(&mut hpet, &mut ctx, timer(0), 2 << 9 | cfg::INT_ENABLE);
    write64(&mut hpet, &mut ctx, timer(0) + 8, 1_000);
    write64(&mut hpet, &mut ctx, timer(1), 20 << 9 | cfg::INT_ENABLE);
    write64(&mut hpet, &mut ctx, timer(1) + 8, 2_000);
    write64(
        &mut hpet,
        &mut ctx,
        reg::CONFIG,
        ENABLE | LEGACY_REPLACEMENT,
    );
    assert!(hpet.legacy_replacement());
    ctx.run_until(&mut hpet, MS);
    assert_eq!(ctx.rising_edge_times(0), vec![100_000]);
    assert_eq!(ctx.rising_edge_times(8), vec![200_000]);
    assert_eq!(ctx.rising_edges(2) + ctx.rising_edges(20), 0);
    // Leaving legacy mode drops the legacy lines; the timers now own their routes (and raise
    // them only at their next match).
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    assert!(!hpet.legacy_replacement());
    assert!(!ctx.irq(0) && !ctx.irq(8));
    assert!(!ctx.irq(2) && !ctx.irq(20));
}

#[test]
fn level_triggered_timer_holds_until_status_is_cleared() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(
        &mut hpet,
        &mut ctx,
        timer(1),
        8 << 9 | cfg::LEVEL | cfg::INT_ENABLE,
    );
    write64(&mut hpet, &mut ctx, timer(1) + 8, 500);
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    ctx.run_until(&mut hpet, MS);
    assert_eq!(ctx.rising_edge_times(8), vec![50_000]);
    assert!(ctx.irq(8));
    assert_eq!(read64(&mut hpet, &mut ctx, reg::STATUS), 0b10);
    write64(&mut hpet, &mut ctx, reg::STATUS, 0b01);
    assert!(ctx.irq(8), "clearing another bit changes nothing");
    write64(&mut hpet, &mut ctx, reg::STATUS, 0b10);
    assert!(!ctx.irq(8));
    assert_eq!(read64(&mut hpet, &mut ctx, reg::STATUS), 0);
    // With its interrupt disabled a level timer still sets its status bit.
    write64(&mut hpet, &mut ctx, timer(1), 8 << 9 | cfg::LEVEL);
    let now = read64(&mut hpet, &mut ctx, reg::COUNTER);
    write64(&mut hpet, &mut ctx, timer(1) + 8, now + 10);
    ctx.now_ns += 2_000;
    assert_eq!(read64(&mut hpet, &mut ctx, reg::STATUS), 0b10);
    assert!(!ctx.irq(8));
    // Enabling the interrupt with the status set raises the line.
    write64(
        &mut hpet,
        &mut ctx,
        timer(1),
        8 << 9 | cfg::LEVEL | cfg::INT_ENABLE,
    );
    assert!(ctx.irq(8));
}

#[test]
fn one_shot_32_bit_timer_matches_again_after_wrap() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(
        &mut hpet,
        &mut ctx,
        timer(0),
        2 << 9 | cfg::INT_ENABLE | cfg::MODE32,
    );
    write64(&mut hpet, &mut ctx, timer(0) + 8, 0x1_0000_0100);
    assert_eq!(
        read64(&mut hpet, &mut ctx, timer(0) + 8),
        0x100,
        "32-bit comparator"
    );
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    assert_eq!(hpet.next_deadline_ns(), Some(0x100 * 100));
    ctx.run_until(&mut hpet, 0x100 * 100);
    assert_eq!(ctx.rising_edges(2), 1);
    assert_eq!(hpet.next_deadline_ns(), Some((0x1_0000_0100) * 100));
    // A 64-bit one-shot matches once.
    write64(&mut hpet, &mut ctx, timer(0), 2 << 9 | cfg::INT_ENABLE);
    assert_eq!(hpet.next_deadline_ns(), None, "comparator already passed");
}

#[test]
fn late_timer_call_coalesces_periods() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    let flags = 2 << 9 | cfg::PERIODIC | cfg::INT_ENABLE | cfg::VAL_SET;
    write64(&mut hpet, &mut ctx, timer(0), flags);
    write64(&mut hpet, &mut ctx, timer(0) + 8, 100);
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    ctx.now_ns = 95_000; // 9.5 periods late
    hpet.on_timer(&mut ctx);
    assert_eq!(ctx.rising_edges(2), 1);
    assert_eq!(read64(&mut hpet, &mut ctx, timer(0) + 8), 1_000);
    assert_eq!(hpet.next_deadline_ns(), Some(100_000));
}

#[test]
fn reset_lowers_lines_at_the_next_timer_call() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(
        &mut hpet,
        &mut ctx,
        timer(1),
        8 << 9 | cfg::LEVEL | cfg::INT_ENABLE,
    );
    write64(&mut hpet, &mut ctx, timer(1) + 8, 5);
    write64(&mut hpet, &mut ctx, reg::CONFIG, ENABLE);
    ctx.run_until(&mut hpet, MS);
    assert!(ctx.irq(8));
    hpet.reset();
    ctx.run_until(&mut hpet, 2 * MS);
    assert!(!ctx.irq(8));
    assert_eq!(hpet.next_deadline_ns(), None);
    assert_eq!(hpet.state(), &HpetState::default());
}

/// An HPET in the middle of things: periodic legacy timer 0, a level timer awaiting its
/// status clear, a 32-bit one-shot armed, a half-written comparator period.
fn busy() -> (Hpet, FakeContext) {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    write64(
        &mut hpet,
        &mut ctx,
        timer(0),
        cfg::PERIODIC | cfg::INT_ENABLE | cfg::VAL_SET,
    );
    write64(&mut hpet, &mut ctx, timer(0) + 8, 12_345);
    write32(&mut hpet, &mut ctx, timer(0) + 8, 12_345);
    write64(
        &mut hpet,
        &mut ctx,
        timer(1),
        8 << 9 | cfg::LEVEL | cfg::INT_ENABLE,
    );
    write64(&mut hpet, &mut ctx, timer(1) + 8, 777);
    write64(
        &mut hpet,
        &mut ctx,
        timer(2),
        21 << 9 | cfg::INT_ENABLE | cfg::MODE32,
    );
    write64(&mut hpet, &mut ctx, timer(2) + 8, 1_000_000);
    write64(
        &mut hpet,
        &mut ctx,
        reg::CONFIG,
        ENABLE | LEGACY_REPLACEMENT,
    );
    ctx.run_until(&mut hpet, 3 * MS + 123);
    (hpet, ctx)
}

#[test]
fn state_round_trips() {
    let (hpet, _ctx) = busy();
    let mut copy = Hpet::new();
    copy.restore(&hpet.save().unwrap()).unwrap();
    assert_eq!(copy.state(), hpet.state());
    assert!(copy.restore(&hpet.save().unwrap()[1..]).is_err());
    let mut odd = HpetState::default();
    odd.timers.resize(70, HpetTimerState::default());
    let bytes = save_state(STATE_VERSION, &odd).unwrap();
    assert!(matches!(copy.restore(&bytes), Err(StateError::Decode(_))));
    assert_eq!(copy.state(), hpet.state());
}

#[test]
fn restored_hpet_carries_on_mid_count() {
    let (mut a, mut ctx_a) = busy();
    let mut b = Hpet::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = ctx_a.clone();
    ctx_a.clear_events();
    ctx_b.clear_events();
    let steps: [(u64, Option<u64>, u64); 4] = [
        (reg::COUNTER, None, 20 * MS),
        (reg::STATUS, Some(0b10), 60 * MS),
        (reg::CONFIG, Some(ENABLE), 80 * MS),
        (timer(2) + 8, None, 150 * MS),
    ];
    for (offset, value, until) in steps {
        for (hpet, ctx) in [(&mut a, &mut ctx_a), (&mut b, &mut ctx_b)] {
            match value {
                Some(v) => write64(hpet, ctx, offset, v),
                None => {
                    read64(hpet, ctx, offset);
                }
            }
            ctx.run_until(hpet, until);
        }
        assert_eq!(a.state(), b.state());
    }
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
    assert!(ctx_a.rising_edges(0) > 10);
    assert_eq!(ctx_a.rising_edges(21), 1);
}

#[test]
fn arbitrary_guest_accesses_never_panic() {
    let mut hpet = Hpet::new();
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0x1234_5678_9abc_def1;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x >> 5) & 0x3ff;
        let len = [1, 2, 4, 8][((x >> 20) & 3) as usize];
        let value = (x.rotate_left(17) & 0xffff_ffff_ff00_7fff).to_le_bytes();
        ctx.now_ns += (x >> 50) % 100_000;
        if x & 0x100 != 0 {
            hpet.mmio_write(DEFAULT_BASE + offset, &value[..len], &mut ctx);
        } else {
            let mut buf = [0; 8];
            hpet.mmio_read(DEFAULT_BASE + offset, &mut buf[..len], &mut ctx);
        }
        if hpet.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            hpet.on_timer(&mut ctx);
        }
    }
}

#[test]
fn plugin_builds_an_hpet() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "hpet");
    config.options.insert("timers".into(), "4".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
