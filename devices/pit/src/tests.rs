use super::*;
use nestor_device::testing::FakeContext;

fn out(pit: &mut Pit, ctx: &mut FakeContext, port: u16, value: u8) {
    pit.io_write(port, 1, u32::from(value), ctx);
}

fn inb(pit: &mut Pit, ctx: &mut FakeContext, port: u16) -> u8 {
    pit.io_read(port, 1, ctx) as u8
}

/// Program counter `c` with a control word and an LSB-then-MSB count.
fn program(pit: &mut Pit, ctx: &mut FakeContext, c: u16, mode: u8, count: u16) {
    out(pit, ctx, 0x43, (c as u8) << 6 | 0x30 | mode << 1);
    out(pit, ctx, 0x40 + c, count as u8);
    out(pit, ctx, 0x40 + c, (count >> 8) as u8);
}

fn read_count(pit: &mut Pit, ctx: &mut FakeContext, c: u16) -> u16 {
    out(pit, ctx, 0x43, (c as u8) << 6);
    let lo = inb(pit, ctx, 0x40 + c);
    let hi = inb(pit, ctx, 0x40 + c);
    u16::from_le_bytes([lo, hi])
}

fn at_tick(ctx: &mut FakeContext, tick: u64) {
    ctx.now_ns = ticks_to_ns(tick);
}

#[test]
fn tick_conversions_round_trip() {
    for t in [0, 1, 2, 17, 1193, 1_193_182, 123_456_789_012] {
        assert_eq!(ns_to_ticks(ticks_to_ns(t)), t);
        assert_eq!(
            ns_to_ticks(ticks_to_ns(t).saturating_sub(1)),
            t.saturating_sub(1)
        );
    }
    assert_eq!(ns_to_ticks(1_000_000_000), CLOCK_HZ);
}

#[test]
fn mode2_rate_generator_pulses_irq0_every_period() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 1193);
    ctx.run_until(&mut pit, ticks_to_ns(1 + 1193 * 5));
    let expected: Vec<u64> = (1..=5).map(|m| ticks_to_ns(1 + 1193 * m)).collect();
    // The first edge is the control word switching OUT from low (power-on, mode 0) to high.
    let edges = ctx.rising_edge_times(0);
    assert_eq!(edges[0], 0);
    assert_eq!(edges[1..], expected[..]);
    assert!(ctx.irq(0), "OUT is high between pulses");
}

#[test]
fn mode2_count_reads_and_new_count_waits_for_period_end() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 100);
    for (tick, value) in [(1, 100), (2, 99), (50, 51), (100, 1), (101, 100), (150, 51)] {
        at_tick(&mut ctx, tick);
        assert_eq!(read_count(&mut pit, &mut ctx, 0), value, "tick {tick}");
    }
    out(&mut pit, &mut ctx, 0x40, 10);
    out(&mut pit, &mut ctx, 0x40, 0);
    at_tick(&mut ctx, 200);
    assert_eq!(
        read_count(&mut pit, &mut ctx, 0),
        1,
        "old period still running"
    );
    ctx.clear_events();
    ctx.run_until(&mut pit, ticks_to_ns(231));
    let ticks: Vec<u64> = ctx
        .rising_edge_times(0)
        .into_iter()
        .map(ns_to_ticks)
        .collect();
    assert_eq!(ticks, vec![201, 211, 221, 231]);
    at_tick(&mut ctx, 235);
    assert_eq!(read_count(&mut pit, &mut ctx, 0), 6);
}

#[test]
fn mode3_square_wave_even_and_odd_counts() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 3, 100);
    ctx.clear_events();
    ctx.run_until(&mut pit, ticks_to_ns(301));
    let levels: Vec<(u64, bool)> = ctx
        .irq_events
        .iter()
        .map(|e| (ns_to_ticks(e.at_ns), e.level))
        .collect();
    assert_eq!(
        levels,
        vec![
            (51, false),
            (101, true),
            (151, false),
            (201, true),
            (251, false),
            (301, true)
        ]
    );
    // Odd count: high for (N+1)/2, low for (N-1)/2 clocks.
    program(&mut pit, &mut ctx, 0, 3, 5);
    let start = ns_to_ticks(ctx.now_ns) + 1;
    ctx.clear_events();
    ctx.run_until(&mut pit, ticks_to_ns(start + 10));
    let levels: Vec<(u64, bool)> = ctx
        .irq_events
        .iter()
        .map(|e| (ns_to_ticks(e.at_ns) - start, e.level))
        .collect();
    assert_eq!(levels, vec![(3, false), (5, true), (8, false), (10, true)]);
}

#[test]
fn mode3_counts_down_by_two() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 3, 10);
    let values: Vec<u16> = (1..=11)
        .map(|t| {
            at_tick(&mut ctx, t);
            read_count(&mut pit, &mut ctx, 0)
        })
        .collect();
    assert_eq!(values, vec![10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10]);
}

#[test]
fn bios_18_hz_tick() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    out(&mut pit, &mut ctx, 0x43, 0x36);
    out(&mut pit, &mut ctx, 0x40, 0);
    out(&mut pit, &mut ctx, 0x40, 0);
    ctx.clear_events();
    ctx.run_until(&mut pit, 1_000_000_000);
    assert_eq!(ctx.rising_edges(0), 18, "65536 clocks per tick: 18.2 Hz");
}

#[test]
fn mode0_interrupt_on_terminal_count() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 1000);
    ctx.run_until(&mut pit, ticks_to_ns(500));
    ctx.clear_events();
    out(&mut pit, &mut ctx, 0x43, 0x30);
    assert!(!ctx.irq(0), "control word in mode 0 drives OUT low");
    out(&mut pit, &mut ctx, 0x40, 0x10);
    out(&mut pit, &mut ctx, 0x40, 0x00);
    ctx.run_until(&mut pit, ticks_to_ns(700));
    let ticks: Vec<u64> = ctx
        .rising_edge_times(0)
        .into_iter()
        .map(ns_to_ticks)
        .collect();
    assert_eq!(
        ticks,
        vec![500 + 1 + 16],
        "OUT rises N+1 clocks after the count"
    );
    assert!(ctx.irq(0));
    at_tick(&mut ctx, 517);
    assert_eq!(read_count(&mut pit, &mut ctx, 0), 0);
    at_tick(&mut ctx, 518);
    assert_eq!(
        read_count(&mut pit, &mut ctx, 0),
        0xffff,
        "keeps counting down"
    );
    assert_eq!(
        pit.next_deadline_ns(),
        None,
        "a one-shot asks for no more timers"
    );
}

#[test]
fn lsb_msb_access_modes_and_latch() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    out(&mut pit, &mut ctx, 0x43, 0x54); // counter 1, LSB only, mode 2
    out(&mut pit, &mut ctx, 0x41, 18);
    at_tick(&mut ctx, 5);
    assert_eq!(inb(&mut pit, &mut ctx, 0x41), 14);
    out(&mut pit, &mut ctx, 0x43, 0x64); // MSB only: count 0x0200
    out(&mut pit, &mut ctx, 0x41, 0x02);
    at_tick(&mut ctx, 6);
    assert_eq!(inb(&mut pit, &mut ctx, 0x41), 0x02);
    // A latched count stays until both bytes are read, whatever time does.
    program(&mut pit, &mut ctx, 0, 2, 0x1234);
    out(&mut pit, &mut ctx, 0x43, 0x00);
    at_tick(&mut ctx, 10);
    out(&mut pit, &mut ctx, 0x43, 0x00); // a second latch is ignored
    assert_eq!(inb(&mut pit, &mut ctx, 0x40), 0x34);
    at_tick(&mut ctx, 1000);
    assert_eq!(inb(&mut pit, &mut ctx, 0x40), 0x12);
    assert_eq!(read_count(&mut pit, &mut ctx, 0), 0x1234 - (1000 - 7));
}

#[test]
fn read_back_latches_status_and_count() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    out(&mut pit, &mut ctx, 0x43, 0xb1); // counter 2, LSB/MSB, mode 0, BCD
    let status_before = {
        out(&mut pit, &mut ctx, 0x43, 0xe8); // read-back status of counter 2
        inb(&mut pit, &mut ctx, 0x42)
    };
    assert_eq!(
        status_before, 0x71,
        "OUT low, null count, RW=3, mode 0, BCD"
    );
    out(&mut pit, &mut ctx, 0x42, 0x34);
    out(&mut pit, &mut ctx, 0x42, 0x12);
    out(&mut pit, &mut ctx, 0x61, 0x01); // gate 2 high
    at_tick(&mut ctx, 234);
    out(&mut pit, &mut ctx, 0x43, 0xc8); // read-back count and status of counter 2
    assert_eq!(
        inb(&mut pit, &mut ctx, 0x42),
        0x31,
        "status first, null count clear"
    );
    assert_eq!(inb(&mut pit, &mut ctx, 0x42), 0x00);
    assert_eq!(inb(&mut pit, &mut ctx, 0x42), 0x10, "BCD 1234 - 234");
}

#[test]
fn gate2_controls_counting_and_port61_shows_out2() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    // Linux's PIT calibration: gate on, speaker off, counter 2 mode 0, poll bit 5.
    out(&mut pit, &mut ctx, 0x61, 0x01);
    out(&mut pit, &mut ctx, 0x43, 0xb0);
    out(&mut pit, &mut ctx, 0x42, 100);
    out(&mut pit, &mut ctx, 0x42, 0);
    at_tick(&mut ctx, 100);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x21, 0x01);
    at_tick(&mut ctx, 101);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0x20);
    // Mode 0 with the gate low stops counting; high resumes.
    program(&mut pit, &mut ctx, 2, 0, 50);
    at_tick(&mut ctx, 121);
    out(&mut pit, &mut ctx, 0x61, 0x00);
    at_tick(&mut ctx, 500);
    assert_eq!(read_count(&mut pit, &mut ctx, 2), 31, "50 - 19 clocks");
    out(&mut pit, &mut ctx, 0x61, 0x01);
    at_tick(&mut ctx, 530);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0);
    at_tick(&mut ctx, 531);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0x20);
}

#[test]
fn mode1_one_shot_is_triggered_by_gate() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 2, 1, 10);
    at_tick(&mut ctx, 50);
    assert_eq!(
        inb(&mut pit, &mut ctx, 0x61) & 0x20,
        0x20,
        "OUT high until triggered"
    );
    out(&mut pit, &mut ctx, 0x61, 0x01);
    at_tick(&mut ctx, 51);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0);
    at_tick(&mut ctx, 58);
    out(&mut pit, &mut ctx, 0x61, 0x00);
    out(&mut pit, &mut ctx, 0x61, 0x01); // retrigger restarts the shot
    at_tick(&mut ctx, 68);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0);
    at_tick(&mut ctx, 69);
    assert_eq!(inb(&mut pit, &mut ctx, 0x61) & 0x20, 0x20);
}

#[test]
fn mode4_and_mode5_strobes() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 4, 20);
    ctx.clear_events();
    ctx.run_until(&mut pit, ticks_to_ns(1000));
    let ticks: Vec<u64> = ctx
        .rising_edge_times(0)
        .into_iter()
        .map(ns_to_ticks)
        .collect();
    assert_eq!(ticks, vec![22], "one strobe, N+1 clocks after the count");
    // Mode 5 on counter 2: the strobe follows a gate trigger.
    program(&mut pit, &mut ctx, 2, 5, 3);
    out(&mut pit, &mut ctx, 0x61, 0x01);
    let outs: Vec<u8> = (1000..1007)
        .map(|t| {
            at_tick(&mut ctx, t);
            inb(&mut pit, &mut ctx, 0x61) >> 5 & 1
        })
        .collect();
    assert_eq!(outs, vec![1, 1, 1, 1, 0, 1, 1]);
}

#[test]
fn refresh_bit_toggles_every_18_clocks() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    let bits: Vec<u8> = [0, 17, 18, 35, 36, 54]
        .iter()
        .map(|&t| {
            at_tick(&mut ctx, t);
            inb(&mut pit, &mut ctx, 0x61) & 0x10
        })
        .collect();
    assert_eq!(bits, vec![0, 0, 0x10, 0x10, 0, 0x10]);
}

#[test]
fn speaker_frequency_follows_counter2() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 2, 3, 1193);
    assert_eq!(pit.speaker_frequency_hz(), None);
    out(&mut pit, &mut ctx, 0x61, 0x03);
    let f = pit.speaker_frequency_hz().unwrap();
    assert!((f - 1000.15).abs() < 0.01, "{f}");
    out(&mut pit, &mut ctx, 0x61, 0x01);
    assert_eq!(pit.speaker_frequency_hz(), None);
}

#[test]
fn late_timer_sends_one_pulse_and_catches_up() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 100);
    ctx.clear_events();
    at_tick(&mut ctx, 10_000);
    pit.on_timer(&mut ctx);
    assert_eq!(
        ctx.rising_edges(0),
        1,
        "missed periods coalesce as on a real PIC"
    );
    let next = pit.next_deadline_ns().unwrap();
    assert_eq!(ns_to_ticks(next), 10_001);
}

#[test]
fn reset_lowers_irq0_at_next_timer() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 100);
    assert!(ctx.irq(0));
    pit.reset();
    ctx.run_until(&mut pit, ctx.now_ns + 1);
    assert!(!ctx.irq(0));
    assert_eq!(pit.next_deadline_ns(), None);
}

#[test]
fn state_round_trips() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 3, 0);
    out(&mut pit, &mut ctx, 0x43, 0xb4);
    out(&mut pit, &mut ctx, 0x42, 0x55);
    out(&mut pit, &mut ctx, 0x43, 0xd2); // read-back of counter 0
    let mut copy = Pit::new();
    copy.restore(&pit.save().unwrap()).unwrap();
    assert_eq!(copy.state(), pit.state());
    assert!(copy.restore(&pit.save().unwrap()[1..]).is_err());
}

#[test]
fn restored_pit_carries_on_mid_count() {
    let mut a = Pit::new();
    let mut ctx_a = FakeContext::new();
    program(&mut a, &mut ctx_a, 0, 2, 3000);
    program(&mut a, &mut ctx_a, 2, 3, 777);
    out(&mut a, &mut ctx_a, 0x61, 0x03);
    ctx_a.run_until(&mut a, 5_000_000);
    out(&mut a, &mut ctx_a, 0x40, 0x00); // first byte of a new count for counter 0
    out(&mut a, &mut ctx_a, 0x43, 0x80); // latch counter 2
    inb(&mut a, &mut ctx_a, 0x42); // half of the latched count read
    let mut b = Pit::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    ctx_b.now_ns = ctx_a.now_ns;
    ctx_a.clear_events();
    for (port, value, until) in [
        (0x42u16, None, 5_100_000u64),
        (0x40, Some(0x08u8), 9_000_000),
        (0x61, Some(0x00), 9_500_000),
        (0x42, None, 20_000_000),
    ] {
        let ra = match value {
            Some(v) => {
                out(&mut a, &mut ctx_a, port, v);
                out(&mut b, &mut ctx_b, port, v);
                0
            }
            None => {
                u16::from(inb(&mut a, &mut ctx_a, port)) << 8
                    | u16::from(inb(&mut b, &mut ctx_b, port))
            }
        };
        assert_eq!(ra >> 8, ra & 0xff);
        ctx_a.run_until(&mut a, until);
        ctx_b.run_until(&mut b, until);
        assert_eq!(a.state(), b.state());
    }
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
    assert!(ctx_a.rising_edges(0) > 3);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut pit = Pit::new();
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let ports = [0x40, 0x41, 0x42, 0x43, 0x61, 0x44];
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = ports[(x % 6) as usize];
        let size = [1, 2, 4][((x >> 3) % 3) as usize];
        ctx.now_ns += (x >> 40) % 20_000;
        if x & 0x100 != 0 {
            pit.io_write(port, size, (x >> 16) as u32, &mut ctx);
        } else {
            pit.io_read(port, size, &mut ctx);
        }
        if let Some(d) = pit.next_deadline_ns() {
            if d <= ctx.now_ns {
                pit.on_timer(&mut ctx);
            }
        }
    }
}

#[test]
fn plugin_builds_a_pit() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "pit");
    config.options.insert("freq".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}

/// Records what the PIT sends down the speaker wire.
#[derive(Clone, Default)]
struct WireLog(std::sync::Arc<std::sync::Mutex<Vec<(u64, SpeakerInput)>>>);

impl SpeakerLine for WireLog {
    fn changed(&mut self, now_ns: u64, input: &SpeakerInput) {
        self.0.lock().unwrap().push((now_ns, input.clone()));
    }
}

#[test]
fn speaker_wire_hears_counter2_and_port61_changes_only() {
    let mut pit = Pit::new();
    let log = WireLog::default();
    pit.connect_speaker(Box::new(log.clone()));
    let mut ctx = FakeContext::new();
    program(&mut pit, &mut ctx, 0, 2, 1000);
    log.0.lock().unwrap().clear(); // the control port spoke; counter 0's own port does not
    out(&mut pit, &mut ctx, 0x40, 7);
    assert!(
        log.0.lock().unwrap().is_empty(),
        "counter 0 is not the speaker's"
    );
    ctx.now_ns = 5_000;
    out(&mut pit, &mut ctx, 0x43, 0xb6);
    out(&mut pit, &mut ctx, 0x42, 0x98);
    out(&mut pit, &mut ctx, 0x42, 0x0a);
    ctx.now_ns = 9_000;
    out(&mut pit, &mut ctx, 0x61, 0x03);
    let events = log.0.lock().unwrap().clone();
    assert_eq!(events.len(), 4);
    let (at, last) = events.last().unwrap();
    assert_eq!(*at, 9_000);
    assert!(last.enabled && last.counter2.gate);
    assert_eq!(last.counter2.count_register, 0x0a98);
    assert_eq!(*last, pit.speaker_input());
    // The copy predicts OUT at later ticks exactly as the live counter does.
    for tick in (20..20_000).step_by(37) {
        let mut copy = last.counter2.clone();
        copy.settle(tick);
        assert_eq!(copy.output(tick), pit.state().counter2.output(tick));
    }
    // A word write to 0x42-0x43 reaches the speaker once per byte port touched.
    pit.io_write(0x42, 2, 0xb600, &mut ctx);
    assert_eq!(log.0.lock().unwrap().len(), 5);
    assert!(!SpeakerInput::default().enabled);
}
