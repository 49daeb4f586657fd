use super::*;
use nestor_device::testing::FakeContext;

fn stick(x: f32, y: f32) -> Stick {
    Stick {
        connected: true,
        x,
        y,
        ..Stick::default()
    }
}

/// Count reads until bit `bit` falls, one read every `step_ns`, as a BIOS loop does.
fn count_reads(port: &mut Gameport, ctx: &mut FakeContext, bit: u8, step_ns: u64) -> u32 {
    port.io_write(PORT, 1, 0, ctx);
    let mut n = 0;
    while port.io_read(PORT, 1, ctx) & (1 << bit) != 0 && n < 100_000 {
        ctx.now_ns += step_ns;
        n += 1;
    }
    n
}

#[test]
fn axis_time_follows_the_position() {
    assert_eq!(Stick::axis_ns(-1.0), 24_200);
    assert_eq!(Stick::axis_ns(1.0), 1_124_200);
    assert_eq!(Stick::axis_ns(0.0), 574_200);
    assert_eq!(Stick::axis_ns(f32::NAN), 574_200);
    assert_eq!(Stick::axis_ns(7.0), 1_124_200);
    let input = GamepadInput::default();
    let mut port = Gameport::new(input.clone());
    let mut ctx = FakeContext::new();
    let mut last = 0;
    for x in [-1.0, -0.5, 0.0, 0.5, 1.0] {
        input.set_stick(0, stick(x, 0.0));
        let n = count_reads(&mut port, &mut ctx, 0, 1_000);
        assert!(n > last, "x={x}: {n} reads");
        assert_eq!(u64::from(n), Stick::axis_ns(x).div_ceil(1_000));
        last = n;
    }
}

#[test]
fn buttons_and_absent_sticks() {
    let input = GamepadInput::default();
    let mut port = Gameport::new(input.clone());
    let mut ctx = FakeContext::new();
    assert_eq!(port.io_read(PORT, 1, &mut ctx), 0xff, "nothing plugged in");
    port.io_write(PORT, 1, 0, &mut ctx);
    ctx.now_ns = 10_000_000;
    assert_eq!(
        port.io_read(PORT, 1, &mut ctx),
        0xff,
        "absent one-shots never end"
    );
    input.set_stick(
        1,
        Stick {
            button2: true,
            ..stick(0.0, 0.0)
        },
    );
    // B's one-shots fired while it was absent: they run until the next trigger.
    assert_eq!(port.io_read(PORT, 1, &mut ctx), 0x7f);
    input.update(1, |s| s.button1 = true);
    port.io_write(PORT, 1, 0, &mut ctx);
    assert_eq!(port.io_read(PORT, 1, &mut ctx), 0x3f);
    ctx.now_ns += 600_000; // centred: 574.2 us
    assert_eq!(port.io_read(PORT, 1, &mut ctx), 0x3f & !0x0c);
    input.set_stick(5, stick(0.0, 0.0)); // ignored
    assert_eq!(port.io_read(0x200, 1, &mut ctx), 0xff);
}

#[test]
fn state_round_trips_and_restored_port_times_the_same() {
    let input = GamepadInput::default();
    input.set_stick(0, stick(0.3, -0.7));
    let mut port = Gameport::new(input.clone());
    let mut ctx = FakeContext::new();
    ctx.now_ns = 5_000;
    port.io_write(PORT, 1, 0, &mut ctx);
    ctx.now_ns = 100_000;
    let saved = port.save().unwrap();
    let mut other = Gameport::new(input);
    other.restore(&saved).unwrap();
    assert_eq!(other.state(), port.state());
    for t in (100_000..1_500_000).step_by(7_000) {
        ctx.now_ns = t;
        assert_eq!(
            port.io_read(PORT, 1, &mut ctx),
            other.io_read(PORT, 1, &mut ctx)
        );
    }
    assert!(other.restore(&saved[1..]).is_err());
    port.reset();
    assert_eq!(port.state(), &GameportState::default());
}

#[test]
fn random_io_never_panics() {
    let input = GamepadInput::default();
    input.set_stick(0, stick(0.0, 0.0));
    let mut port = Gameport::new(input);
    let mut ctx = FakeContext::new();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..5_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let p = 0x1fe + (x % 6) as u16;
        let size = [1, 2, 4][((x >> 8) % 3) as usize];
        if x & 1 == 0 {
            port.io_write(p, size, x as u32, &mut ctx);
        } else {
            port.io_read(p, size, &mut ctx);
        }
        ctx.now_ns = ctx.now_ns.wrapping_add(x >> 44);
    }
    ctx.now_ns = u64::MAX;
    port.io_write(PORT, 1, 0, &mut ctx);
    let _ = port.io_read(PORT, 1, &mut ctx);
    assert!((PLUGIN.create)(&mut DeviceConfig::default()).is_ok());
}
