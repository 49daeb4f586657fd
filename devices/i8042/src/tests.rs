use super::*;
use nestor_device::testing::FakeContext;

fn kbc() -> (I8042, FakeContext) {
    (I8042::new(), FakeContext::new())
}

fn cmd(k: &mut I8042, ctx: &mut FakeContext, command: u8) {
    k.io_write(COMMAND_PORT, 1, u32::from(command), ctx);
}

fn data(k: &mut I8042, ctx: &mut FakeContext, value: u8) {
    k.io_write(DATA_PORT, 1, u32::from(value), ctx);
}

fn status(k: &mut I8042, ctx: &mut FakeContext) -> u8 {
    k.io_read(COMMAND_PORT, 1, ctx) as u8
}

/// Every byte the output buffer offers now, as a polling driver reads them.
fn drain(k: &mut I8042, ctx: &mut FakeContext) -> Vec<u8> {
    let mut got = Vec::new();
    while status(k, ctx) & status::OBF != 0 && got.len() < 1000 {
        got.push(k.io_read(DATA_PORT, 1, ctx) as u8);
    }
    got
}

fn set_ccb(k: &mut I8042, ctx: &mut FakeContext, value: u8) {
    cmd(k, ctx, 0x60);
    data(k, ctx, value);
}

/// Deliver host events and typematic repeats up to `until` ns, reading nothing.
fn run(k: &mut I8042, ctx: &mut FakeContext, until: u64) {
    ctx.run_until(k, until);
}

#[test]
fn controller_self_test_and_command_byte() {
    let (mut k, mut ctx) = kbc();
    assert_eq!(status(&mut k, &mut ctx), status::UNLOCKED);
    cmd(&mut k, &mut ctx, 0xaa);
    assert_eq!(
        status(&mut k, &mut ctx),
        status::OBF | status::SYSTEM_FLAG | status::COMMAND | status::UNLOCKED
    );
    assert_eq!(drain(&mut k, &mut ctx), [0x55]);
    cmd(&mut k, &mut ctx, 0xab);
    cmd(&mut k, &mut ctx, 0xa9);
    assert_eq!(drain(&mut k, &mut ctx), [0x00, 0x00]);
    cmd(&mut k, &mut ctx, 0x20);
    assert_eq!(drain(&mut k, &mut ctx), [POWER_ON_CCB | ccb::SYSTEM_FLAG]);
    set_ccb(&mut k, &mut ctx, 0x47);
    assert_eq!(
        status(&mut k, &mut ctx) & status::COMMAND,
        0,
        "last write was data"
    );
    cmd(&mut k, &mut ctx, 0x20);
    assert_eq!(drain(&mut k, &mut ctx), [0x47]);
    cmd(&mut k, &mut ctx, 0x65);
    data(&mut k, &mut ctx, 0x99);
    cmd(&mut k, &mut ctx, 0x25);
    cmd(&mut k, &mut ctx, 0xc0);
    cmd(&mut k, &mut ctx, 0xa4);
    assert_eq!(drain(&mut k, &mut ctx), [0x99, INPUT_PORT, 0xf1]);
    assert_eq!(
        k.io_read(DATA_PORT, 1, &mut ctx),
        0xf1,
        "an empty buffer reads its last byte again"
    );
}

#[test]
fn interfaces_are_enabled_and_disabled_through_the_command_byte() {
    let (mut k, mut ctx) = kbc();
    for (command, bit, set) in [
        (0xad, ccb::KBD_DISABLED, true),
        (0xae, ccb::KBD_DISABLED, false),
        (0xa8, ccb::AUX_DISABLED, false),
        (0xa7, ccb::AUX_DISABLED, true),
    ] {
        cmd(&mut k, &mut ctx, command);
        cmd(&mut k, &mut ctx, 0x20);
        let ccb = drain(&mut k, &mut ctx)[0];
        assert_eq!(ccb & bit != 0, set, "command {command:#x}");
    }
}

#[test]
fn key_presses_are_translated_to_set_1_with_one_irq_edge_per_byte() {
    let (mut k, mut ctx) = kbc();
    k.key_event(Key::ArrowUp, true);
    k.key_event(Key::ArrowUp, false);
    k.key_event(Key::A, true);
    run(&mut k, &mut ctx, 0);
    assert!(ctx.irq(IRQ_KBD));
    assert_eq!(drain(&mut k, &mut ctx), [0xe0, 0x48, 0xe0, 0xc8, 0x1e]);
    assert!(!ctx.irq(IRQ_KBD));
    assert_eq!(ctx.rising_edges(IRQ_KBD), 5);
    assert!(!ctx.irq(IRQ_AUX));
}

#[test]
fn without_translation_the_guest_sees_set_2() {
    let (mut k, mut ctx) = kbc();
    set_ccb(&mut k, &mut ctx, ccb::KBD_IRQ);
    k.key_event(Key::A, true);
    k.key_event(Key::A, false);
    k.key_event(Key::ControlRight, false);
    run(&mut k, &mut ctx, 0);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0x1c, 0xf0, 0x1c, 0xe0, 0xf0, 0x14]
    );
}

#[test]
fn irq_follows_the_enable_bit() {
    let (mut k, mut ctx) = kbc();
    set_ccb(&mut k, &mut ctx, ccb::XLAT);
    k.key_event(Key::Z, true);
    run(&mut k, &mut ctx, 0);
    assert!(!ctx.irq(IRQ_KBD), "IRQ1 disabled");
    assert_eq!(status(&mut k, &mut ctx) & status::OBF, status::OBF);
    set_ccb(&mut k, &mut ctx, ccb::XLAT | ccb::KBD_IRQ);
    assert!(
        ctx.irq(IRQ_KBD),
        "enabling raises the line for the waiting byte"
    );
    assert_eq!(drain(&mut k, &mut ctx), [0x2c]);
}

#[test]
fn keyboard_reset_identify_echo_and_resend() {
    let (mut k, mut ctx) = kbc();
    data(&mut k, &mut ctx, 0xff);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xaa]);
    data(&mut k, &mut ctx, 0xf2);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0xfa, 0xab, 0x41],
        "0x83 translated"
    );
    set_ccb(&mut k, &mut ctx, ccb::KBD_IRQ);
    data(&mut k, &mut ctx, 0xf2);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xab, 0x83]);
    data(&mut k, &mut ctx, 0xee);
    assert_eq!(drain(&mut k, &mut ctx), [0xee]);
    data(&mut k, &mut ctx, 0xfe);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0xee],
        "resend repeats the last byte"
    );
    data(&mut k, &mut ctx, 0x42);
    assert_eq!(drain(&mut k, &mut ctx), [0xfe], "unknown command");
    data(&mut k, &mut ctx, 0xed);
    data(&mut k, &mut ctx, 0x07);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfa]);
    assert_eq!(k.leds(), 7);
}

#[test]
fn scan_code_sets_are_selected_and_reported() {
    let (mut k, mut ctx) = kbc();
    data(&mut k, &mut ctx, 0xf0);
    data(&mut k, &mut ctx, 0x00);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfa, 0x41], "2 translated");
    set_ccb(&mut k, &mut ctx, ccb::KBD_IRQ);
    for (set, make, brk) in [
        (3u8, vec![0x08], vec![0xf0, 0x08]),
        (1, vec![0x01], vec![0x81]),
        (2, vec![0x76], vec![0xf0, 0x76]),
    ] {
        data(&mut k, &mut ctx, 0xf0);
        data(&mut k, &mut ctx, set);
        data(&mut k, &mut ctx, 0xf0);
        data(&mut k, &mut ctx, 0x00);
        assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfa, 0xfa, 0xfa, set]);
        k.key_event(Key::Escape, true);
        k.key_event(Key::Escape, false);
        run(&mut k, &mut ctx, 0);
        assert_eq!(drain(&mut k, &mut ctx), [make, brk].concat(), "set {set}");
    }
    data(&mut k, &mut ctx, 0xf0);
    data(&mut k, &mut ctx, 0x07);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfe], "no set 7");
}

#[test]
fn pause_and_print_screen_sequences() {
    let (mut k, mut ctx) = kbc();
    k.key_event(Key::Pause, true);
    k.key_event(Key::Pause, false);
    k.key_event(Key::PrintScreen, true);
    k.key_event(Key::PrintScreen, false);
    run(&mut k, &mut ctx, 0);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0xe1, 0x1d, 0x45, 0xe1, 0x9d, 0xc5, 0xe0, 0x2a, 0xe0, 0x37, 0xe0, 0xb7, 0xe0, 0xaa]
    );
}

#[test]
fn disabled_scanning_drops_keys() {
    let (mut k, mut ctx) = kbc();
    data(&mut k, &mut ctx, 0xf5);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa]);
    k.key_event(Key::B, true);
    run(&mut k, &mut ctx, 0);
    assert!(drain(&mut k, &mut ctx).is_empty());
    data(&mut k, &mut ctx, 0xf4);
    k.key_event(Key::B, true);
    run(&mut k, &mut ctx, 0);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0x30]);
}

#[test]
fn typematic_repeats_in_virtual_time() {
    let (mut k, mut ctx) = kbc();
    // 0x20: delay 500 ms, 30 characters per second (33.36 ms).
    data(&mut k, &mut ctx, 0xf3);
    data(&mut k, &mut ctx, 0x20);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfa]);
    assert_eq!(k.state().keyboard.repeat_period_ns(), 33_360_000);
    ctx.now_ns = 1_000_000;
    k.key_event(Key::X, true);
    run(&mut k, &mut ctx, 1_000_000);
    assert_eq!(drain(&mut k, &mut ctx), [0x2d]);
    run(&mut k, &mut ctx, 500_999_999);
    assert!(drain(&mut k, &mut ctx).is_empty(), "still within the delay");
    run(&mut k, &mut ctx, 501_000_000 + 2 * 33_360_000);
    assert_eq!(drain(&mut k, &mut ctx), [0x2d, 0x2d, 0x2d]);
    k.key_event(Key::X, false);
    run(&mut k, &mut ctx, 2_000_000_000);
    assert_eq!(drain(&mut k, &mut ctx), [0xad], "release stops the repeat");
    assert_eq!(k.next_deadline_ns(), None);
}

#[test]
fn mouse_reset_identify_and_wheel_detection() {
    let (mut k, mut ctx) = kbc();
    cmd(&mut k, &mut ctx, 0xa8);
    let to_mouse = |k: &mut I8042, ctx: &mut FakeContext, b: u8| {
        cmd(k, ctx, 0xd4);
        data(k, ctx, b);
    };
    to_mouse(&mut k, &mut ctx, 0xff);
    assert_eq!(
        status(&mut k, &mut ctx) & (status::OBF | status::AUX_OBF),
        status::OBF | status::AUX_OBF
    );
    assert!(ctx.irq(IRQ_AUX));
    assert!(!ctx.irq(IRQ_KBD));
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xaa, 0x00]);
    assert_eq!(ctx.rising_edges(IRQ_AUX), 3);
    for rate in [200, 100, 80] {
        to_mouse(&mut k, &mut ctx, 0xf3);
        to_mouse(&mut k, &mut ctx, rate);
    }
    to_mouse(&mut k, &mut ctx, 0xf2);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [[0xfa; 7].as_slice(), &[3]].concat()
    );
    to_mouse(&mut k, &mut ctx, 0xe8);
    to_mouse(&mut k, &mut ctx, 0x03);
    to_mouse(&mut k, &mut ctx, 0xe9);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa, 0xfa, 0xfa, 0x00, 0x03, 80]);
    to_mouse(&mut k, &mut ctx, 0xf4);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa]);
    k.mouse_event(5, 3, 1, buttons::LEFT);
    k.mouse_event(-300, -2, 0, buttons::RIGHT);
    run(&mut k, &mut ctx, 0);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [
            0x29, 5, 0xfd, 0xff, // y up is negative down: sign bit; wheel away: -1
            0x5a, 0x00, 2, 0x00, // x overflow and sign, clamped to -256
        ]
    );
}

#[test]
fn mouse_remote_mode_wrap_and_status() {
    let (mut k, mut ctx) = kbc();
    cmd(&mut k, &mut ctx, 0xa8);
    let mut to_mouse = |k: &mut I8042, b: u8| {
        cmd(k, &mut ctx, 0xd4);
        data(k, &mut ctx, b);
    };
    to_mouse(&mut k, 0xf0);
    k.mouse_event(10, 0, 0, buttons::MIDDLE);
    k.mouse_event(10, 4, 0, buttons::MIDDLE);
    ctx.run_until(&mut k, 0);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa], "remote mode sends nothing");
    let mut to_mouse = |k: &mut I8042, b: u8| {
        cmd(k, &mut ctx, 0xd4);
        data(k, &mut ctx, b);
    };
    to_mouse(&mut k, 0xeb);
    to_mouse(&mut k, 0xe9);
    to_mouse(&mut k, 0xee);
    to_mouse(&mut k, 0x12);
    to_mouse(&mut k, 0xec);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0xfa, 0x2c, 20, 0xfc, 0xfa, 0x42, 2, 100, 0xfa, 0x12, 0xfa]
    );
}

#[test]
fn keyboard_goes_first_and_a_disabled_interface_holds_its_bytes() {
    let (mut k, mut ctx) = kbc();
    set_ccb(&mut k, &mut ctx, POWER_ON_CCB & !ccb::AUX_DISABLED);
    cmd(&mut k, &mut ctx, 0xd4);
    data(&mut k, &mut ctx, 0xf4);
    assert_eq!(drain(&mut k, &mut ctx), [0xfa]);
    cmd(&mut k, &mut ctx, 0xad);
    k.key_event(Key::Q, true);
    k.mouse_event(1, 0, 0, 0);
    run(&mut k, &mut ctx, 0);
    assert_eq!(drain(&mut k, &mut ctx), [0x08, 1, 0], "mouse only");
    cmd(&mut k, &mut ctx, 0xae);
    assert_eq!(
        drain(&mut k, &mut ctx),
        [0x10],
        "keyboard byte held until enabled"
    );
    cmd(&mut k, &mut ctx, 0xd3);
    data(&mut k, &mut ctx, 0x5a);
    assert_eq!(status(&mut k, &mut ctx) & status::AUX_OBF, status::AUX_OBF);
    cmd(&mut k, &mut ctx, 0xd2);
    data(&mut k, &mut ctx, 0xa5);
    assert_eq!(drain(&mut k, &mut ctx), [0x5a, 0xa5]);
}

#[test]
fn a20_and_reset_lines() {
    let (mut k, mut ctx) = kbc();
    assert!(k.a20());
    cmd(&mut k, &mut ctx, 0xd0);
    assert_eq!(drain(&mut k, &mut ctx), [0xcf]);
    cmd(&mut k, &mut ctx, 0xd1);
    data(&mut k, &mut ctx, 0xcd);
    assert!(!k.a20());
    assert_eq!(ctx.remaps, 1);
    cmd(&mut k, &mut ctx, 0xd1);
    data(&mut k, &mut ctx, 0xcd);
    assert_eq!(ctx.remaps, 1, "no change, no remap");
    cmd(&mut k, &mut ctx, 0xdf);
    assert!(k.a20());
    assert_eq!(ctx.remaps, 2);
    assert!(ctx.exits.is_empty());
    cmd(&mut k, &mut ctx, 0xfe);
    cmd(&mut k, &mut ctx, 0xff);
    assert_eq!(ctx.exits, [ExitRequest::Reset]);
    cmd(&mut k, &mut ctx, 0xd1);
    data(&mut k, &mut ctx, 0xce);
    assert_eq!(ctx.exits, [ExitRequest::Reset, ExitRequest::Reset]);
    cmd(&mut k, &mut ctx, 0xd0);
    assert_eq!(drain(&mut k, &mut ctx), [0xcf], "reset was a pulse");
    cmd(&mut k, &mut ctx, 0xdd);
    k.reset();
    assert!(k.a20(), "reset enables A20");
}

#[test]
fn typed_text_is_paced_and_uses_shift() {
    let (mut k, mut ctx) = kbc();
    assert_eq!(k.type_text("ß"), Err(UntypableChar('ß')));
    assert_eq!(k.pending_host_events(), 0);
    k.type_text("Hi!\n").unwrap();
    assert_eq!(k.pending_host_events(), 12);
    let mut got = Vec::new();
    let mut t = 0;
    while k.pending_host_events() > 0 && t < 1_000_000_000 {
        t += 1_000_000;
        run(&mut k, &mut ctx, t);
        got.extend(drain(&mut k, &mut ctx));
    }
    assert_eq!(
        got,
        [
            0x2a, 0x23, 0xa3, 0xaa, // H
            0x17, 0x97, // i
            0x2a, 0x02, 0x82, 0xaa, // !
            0x1c, 0x9c, // Enter
        ]
    );
    let times = ctx.rising_edge_times(IRQ_KBD);
    assert!(times.windows(2).all(|w| w[1] - w[0] >= TYPE_INTERVAL_NS));
}

#[test]
fn typed_text_waits_for_the_guest() {
    let (mut k, mut ctx) = kbc();
    k.type_text("ab").unwrap();
    run(&mut k, &mut ctx, 100_000_000);
    assert_eq!(
        k.pending_host_events(),
        3,
        "one byte sits unread in the buffer"
    );
    assert_eq!(drain(&mut k, &mut ctx), [0x1e]);
    let deadline = k.next_deadline_ns().unwrap();
    assert!(deadline > ctx.now_ns, "no busy polling while waiting");
}

#[test]
fn state_round_trips() {
    let (mut k, mut ctx) = kbc();
    cmd(&mut k, &mut ctx, 0xa8);
    cmd(&mut k, &mut ctx, 0xd4);
    data(&mut k, &mut ctx, 0xf4);
    k.key_event(Key::Delete, true);
    k.type_text("x").unwrap();
    run(&mut k, &mut ctx, 0);
    cmd(&mut k, &mut ctx, 0xd1);
    let mut copy = I8042::new();
    copy.restore(&k.save().unwrap()).unwrap();
    assert_eq!(copy.state(), k.state());
    let bad = I8042State {
        keyboard: KeyboardState {
            scan_set: 9,
            ..KeyboardState::default()
        },
        ..I8042State::default()
    };
    assert!(copy
        .restore(&save_state(STATE_VERSION, &bad).unwrap())
        .is_err());
}

#[test]
fn restored_controller_carries_on_exactly() {
    let (mut a, mut ctx_a) = kbc();
    a.type_text("Ok").unwrap();
    a.key_event(Key::K, true); // held after the text: typematic running
    run(&mut a, &mut ctx_a, 3_000_000);
    let mut b = I8042::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    ctx_b.now_ns = ctx_a.now_ns;
    ctx_a.clear_events();
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for step in 1..=100u64 {
        let until = 3_000_000 + step * 10_000_000;
        run(&mut a, &mut ctx_a, until);
        run(&mut b, &mut ctx_b, until);
        ta.extend(drain(&mut a, &mut ctx_a));
        tb.extend(drain(&mut b, &mut ctx_b));
        if step == 90 {
            a.key_event(Key::K, false);
            b.key_event(Key::K, false);
        }
    }
    assert_eq!(ta, tb);
    assert!(ta.iter().filter(|&&b| b == 0x25).count() > 3, "K repeated");
    assert_eq!(a.state(), b.state());
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
}

#[test]
fn reset_lowers_a_raised_irq_on_the_next_timer() {
    let (mut k, mut ctx) = kbc();
    cmd(&mut k, &mut ctx, 0xaa);
    assert!(ctx.irq(IRQ_KBD));
    k.reset();
    run(&mut k, &mut ctx, 10);
    assert!(!ctx.irq(IRQ_KBD));
    assert_eq!(k.next_deadline_ns(), None);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let (mut k, mut ctx) = kbc();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..50_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = [DATA_PORT, COMMAND_PORT, 0x61][(x % 3) as usize];
        let size = [1, 2, 4][((x >> 4) % 3) as usize];
        ctx.now_ns += (x >> 40) % 5_000_000;
        match (x >> 8) % 8 {
            0..=2 => k.io_write(port, size, (x >> 16) as u32, &mut ctx),
            3 => {
                let key = (x >> 20) % 105;
                let key = Key::from_hid_usage(key as u16).unwrap_or(Key::Space);
                k.key_event(key, x & 0x200 != 0);
            }
            4 => k.mouse_event(
                (x >> 20) as i32,
                (x >> 30) as i32,
                (x >> 50) as i32,
                x as u8,
            ),
            _ => {
                k.io_read(port, size, &mut ctx);
            }
        }
        if k.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            k.on_timer(&mut ctx);
        }
    }
    let mut copy = I8042::new();
    copy.restore(&k.save().unwrap()).unwrap();
    assert_eq!(copy.state(), k.state());
}

#[test]
fn plugin_takes_no_options() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "i8042");
    assert_eq!(
        dev.ports(),
        vec![PortRange::new(0x60, 1), PortRange::new(0x64, 1)]
    );
    config.options.insert("irq".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
