use super::*;
use nestor_device::testing::{BufferBackend, FakeContext};

const BASE: u16 = 0x3f8;
const RBR: u16 = BASE;
const IER: u16 = BASE + 1;
const IIR: u16 = BASE + 2;
const FCR: u16 = BASE + 2;
const LCR: u16 = BASE + 3;
const MCR: u16 = BASE + 4;
const LSR: u16 = BASE + 5;
const MSR: u16 = BASE + 6;
const SCR: u16 = BASE + 7;

fn uart() -> (Uart, BufferBackend, FakeContext) {
    let host = BufferBackend::new();
    (
        Uart::new(BASE, 4, Box::new(host.clone())),
        host,
        FakeContext::new(),
    )
}

fn out(u: &mut Uart, ctx: &mut FakeContext, port: u16, value: u8) {
    u.io_write(port, 1, u32::from(value), ctx);
}

fn inb(u: &mut Uart, ctx: &mut FakeContext, port: u16) -> u8 {
    u.io_read(port, 1, ctx) as u8
}

/// 115200 8N1, FIFOs on with the given FCR, as a driver does it.
fn setup(u: &mut Uart, ctx: &mut FakeContext, fcr: u8) {
    out(u, ctx, LCR, 0x80);
    out(u, ctx, RBR, 0x01);
    out(u, ctx, IER, 0x00);
    out(u, ctx, LCR, 0x03);
    out(u, ctx, FCR, fcr);
}

#[test]
fn power_on_registers() {
    let (mut u, _, mut ctx) = uart();
    assert_eq!(inb(&mut u, &mut ctx, IER), 0);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x01);
    assert_eq!(inb(&mut u, &mut ctx, LSR), 0x60);
    assert_eq!(inb(&mut u, &mut ctx, MSR), 0xb0);
}

#[test]
fn linux_style_probe() {
    let (mut u, _, mut ctx) = uart();
    out(&mut u, &mut ctx, SCR, 0xa5);
    assert_eq!(inb(&mut u, &mut ctx, SCR), 0xa5);
    out(&mut u, &mut ctx, IER, 0xff);
    assert_eq!(inb(&mut u, &mut ctx, IER), 0x0f, "IER has four bits");
    out(&mut u, &mut ctx, IER, 0);
    // Loopback check: RTS and OUT2 come back as CTS and DCD.
    out(&mut u, &mut ctx, MCR, 0x1a);
    assert_eq!(inb(&mut u, &mut ctx, MSR) & 0xf0, 0x90);
    out(&mut u, &mut ctx, MCR, 0x00);
    // FIFO detection: IIR bits 7-6 both set means a working 16550A FIFO.
    out(&mut u, &mut ctx, FCR, 0xc7);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0xc1);
    out(&mut u, &mut ctx, FCR, 0x00);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x01);
}

#[test]
fn divisor_latch_is_behind_dlab() {
    let (mut u, host, mut ctx) = uart();
    out(&mut u, &mut ctx, IER, 0x05);
    out(&mut u, &mut ctx, LCR, 0x83);
    out(&mut u, &mut ctx, RBR, 0x34);
    out(&mut u, &mut ctx, IER, 0x12);
    assert_eq!(inb(&mut u, &mut ctx, RBR), 0x34);
    assert_eq!(inb(&mut u, &mut ctx, IER), 0x12);
    out(&mut u, &mut ctx, LCR, 0x03);
    assert_eq!(u.state().divisor, 0x1234);
    assert_eq!(inb(&mut u, &mut ctx, IER), 0x05);
    assert!(host.output().is_empty(), "DLL writes are not transmitted");
}

#[test]
fn transmit_goes_to_backend_and_masks_word_length() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x07);
    for b in b"hello\n" {
        out(&mut u, &mut ctx, RBR, *b);
    }
    assert_eq!(host.output(), b"hello\n");
    assert_eq!(host.flushes(), 1);
    out(&mut u, &mut ctx, LCR, 0x02); // 7 data bits
    out(&mut u, &mut ctx, RBR, 0xc1);
    assert_eq!(host.output().last(), Some(&0x41));
    assert_eq!(inb(&mut u, &mut ctx, LSR) & 0x60, 0x60, "instant transmit");
}

#[test]
fn loopback_receives_what_is_sent_and_mirrors_modem_lines() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x07);
    out(&mut u, &mut ctx, MCR, 0x10);
    assert_eq!(inb(&mut u, &mut ctx, MSR), 0x0b, "CTS, DSR and DCD dropped");
    for b in b"abc" {
        out(&mut u, &mut ctx, RBR, *b);
    }
    assert!(host.output().is_empty());
    let mut got = Vec::new();
    while inb(&mut u, &mut ctx, LSR) & 1 != 0 {
        got.push(inb(&mut u, &mut ctx, RBR));
    }
    assert_eq!(got, b"abc");
    out(&mut u, &mut ctx, MCR, 0x1f);
    assert_eq!(inb(&mut u, &mut ctx, MSR), 0xfb);
    out(&mut u, &mut ctx, MCR, 0x10);
    assert_eq!(inb(&mut u, &mut ctx, MSR), 0x0f, "RI falling sets TERI");
    assert_eq!(inb(&mut u, &mut ctx, MSR), 0x00, "deltas clear on read");
}

#[test]
fn overrun_in_16450_mode_keeps_newest() {
    let (mut u, _, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x00);
    out(&mut u, &mut ctx, MCR, 0x10);
    out(&mut u, &mut ctx, RBR, 1);
    out(&mut u, &mut ctx, RBR, 2);
    assert_eq!(inb(&mut u, &mut ctx, LSR), 0x63);
    assert_eq!(inb(&mut u, &mut ctx, LSR), 0x61, "OE clears on read");
    assert_eq!(inb(&mut u, &mut ctx, RBR), 2);
}

#[test]
fn fifo_overrun_drops_the_extra_byte() {
    let (mut u, _, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x07);
    out(&mut u, &mut ctx, MCR, 0x10);
    for b in 0..17 {
        out(&mut u, &mut ctx, RBR, b);
    }
    assert_eq!(inb(&mut u, &mut ctx, LSR) & 0x03, 0x03);
    let got: Vec<u8> = (0..16).map(|_| inb(&mut u, &mut ctx, RBR)).collect();
    assert_eq!(got, (0..16).collect::<Vec<u8>>());
    assert_eq!(inb(&mut u, &mut ctx, LSR) & 1, 0);
}

#[test]
fn interrupt_identification_follows_priorities() {
    let (mut u, _, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x00);
    out(&mut u, &mut ctx, MCR, 0x10);
    out(&mut u, &mut ctx, RBR, 1);
    out(&mut u, &mut ctx, RBR, 2); // overrun
    out(&mut u, &mut ctx, MCR, 0x11); // DTR -> DSR changes: modem status delta
    out(&mut u, &mut ctx, IER, 0x0f); // THRE interrupt on enabling with THR empty
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x06, "line status first");
    inb(&mut u, &mut ctx, LSR);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x04, "then received data");
    inb(&mut u, &mut ctx, RBR);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x02, "then transmitter empty");
    assert_eq!(
        inb(&mut u, &mut ctx, IIR),
        0x00,
        "reading IIR cleared THRE; modem status"
    );
    inb(&mut u, &mut ctx, MSR);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x01);
    out(&mut u, &mut ctx, RBR, 3);
    assert_eq!(
        inb(&mut u, &mut ctx, IIR),
        0x04,
        "a write makes THR empty again"
    );
    inb(&mut u, &mut ctx, RBR);
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x02);
}

#[test]
fn out2_gates_the_irq_line_and_loopback_disconnects_it() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x00);
    out(&mut u, &mut ctx, IER, 0x02);
    assert!(!ctx.irq(4), "OUT2 clear: no IRQ");
    out(&mut u, &mut ctx, MCR, 0x0b);
    assert!(ctx.irq(4));
    inb(&mut u, &mut ctx, IIR);
    assert!(!ctx.irq(4));
    out(&mut u, &mut ctx, RBR, b'x');
    assert!(ctx.irq(4));
    out(&mut u, &mut ctx, MCR, 0x1b);
    assert!(!ctx.irq(4), "loopback forces the OUT2 pin inactive");
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0x02, "but IIR still reports");
    assert_eq!(host.output(), b"x");
}

#[test]
fn received_data_interrupt_at_trigger_level() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x47); // trigger at 4 bytes
    out(&mut u, &mut ctx, MCR, 0x0b);
    out(&mut u, &mut ctx, IER, 0x01);
    host.push_input(b"123");
    ctx.run_until(&mut u, 1_000_000);
    assert_eq!(u.state().rx_fifo.len(), 3, "polled on the timer");
    assert!(!ctx.irq(4), "below the trigger level");
    host.push_input(b"4567");
    ctx.run_until(&mut u, 2_000_000);
    assert!(ctx.irq(4));
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0xc4);
}

#[test]
fn character_timeout_reports_a_short_burst() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0xc7); // trigger at 14
    out(&mut u, &mut ctx, MCR, 0x0b);
    out(&mut u, &mut ctx, IER, 0x01);
    host.push_input(b"ab");
    ctx.run_until(&mut u, 1_000_000);
    assert_eq!(u.state().rx_fifo.len(), 2);
    assert!(!ctx.irq(4));
    // Four characters at 115200 8N1 later: 4 * 10 bits * 8680 ns.
    let char_ns = 10 * 1_000_000_000 / 115_200;
    ctx.run_until(&mut u, 1_000_000 + 4 * char_ns + 10);
    assert!(ctx.irq(4));
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0xcc);
    assert_eq!(inb(&mut u, &mut ctx, RBR), b'a');
    assert!(!ctx.irq(4), "reading RBR clears the timeout");
    assert_eq!(inb(&mut u, &mut ctx, RBR), b'b');
    assert_eq!(inb(&mut u, &mut ctx, IIR), 0xc1);
}

#[test]
fn polled_input_without_interrupts() {
    let (mut u, host, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x07);
    assert_eq!(
        u.next_deadline_ns(),
        None,
        "no timer while nobody wants interrupts"
    );
    host.push_input(b"hi");
    assert_eq!(inb(&mut u, &mut ctx, LSR) & 1, 1);
    assert_eq!(inb(&mut u, &mut ctx, RBR), b'h');
    assert_eq!(inb(&mut u, &mut ctx, RBR), b'i');
    assert_eq!(inb(&mut u, &mut ctx, LSR) & 1, 0);
}

#[test]
fn output_only_backend_is_never_polled() {
    let host = BufferBackend::output_only();
    let mut u = Uart::new(BASE, 4, Box::new(host));
    let mut ctx = FakeContext::new();
    out(&mut u, &mut ctx, MCR, 0x08);
    out(&mut u, &mut ctx, IER, 0x01);
    assert_eq!(u.next_deadline_ns(), None);
}

#[test]
fn state_round_trips() {
    let (mut u, _, mut ctx) = uart();
    setup(&mut u, &mut ctx, 0x87);
    out(&mut u, &mut ctx, MCR, 0x1b);
    out(&mut u, &mut ctx, RBR, 7);
    out(&mut u, &mut ctx, SCR, 9);
    let mut copy = Uart::new(BASE, 4, Box::new(NullBackend));
    copy.restore(&u.save().unwrap()).unwrap();
    assert_eq!(copy.state(), u.state());
    let big = UartState {
        rx_fifo: (0..40).collect(),
        ..UartState::default()
    };
    assert!(copy
        .restore(&save_state(STATE_VERSION, &big).unwrap())
        .is_err());
}

#[test]
fn restored_uart_carries_on_with_bytes_in_the_fifo() {
    let (mut a, host_a, mut ctx_a) = uart();
    setup(&mut a, &mut ctx_a, 0x87); // trigger 8
    out(&mut a, &mut ctx_a, MCR, 0x0b);
    out(&mut a, &mut ctx_a, IER, 0x03);
    host_a.push_input(b"snapshot");
    ctx_a.run_until(&mut a, 500_000);
    inb(&mut a, &mut ctx_a, LSR);
    inb(&mut a, &mut ctx_a, RBR);
    let host_b = BufferBackend::new();
    let mut b = Uart::new(BASE, 4, Box::new(host_b.clone()));
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    ctx_b.now_ns = ctx_a.now_ns;
    ctx_a.clear_events();
    host_a.push_input(b"xyz");
    host_b.push_input(b"xyz");
    let mut ta = Vec::new();
    let mut tb = Vec::new();
    for step in 1..=12u64 {
        let until = 500_000 + step * 200_000;
        ctx_a.run_until(&mut a, until);
        ctx_b.run_until(&mut b, until);
        for port in [IIR, LSR, RBR] {
            ta.push(inb(&mut a, &mut ctx_a, port));
            tb.push(inb(&mut b, &mut ctx_b, port));
        }
        out(&mut a, &mut ctx_a, RBR, step as u8);
        out(&mut b, &mut ctx_b, RBR, step as u8);
    }
    assert_eq!(ta, tb);
    assert_eq!(a.state(), b.state());
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
    assert_eq!(host_b.output(), (1..=12).collect::<Vec<u8>>());
}

#[test]
fn reset_lowers_a_raised_irq_on_the_next_timer() {
    let (mut u, _, mut ctx) = uart();
    out(&mut u, &mut ctx, MCR, 0x08);
    out(&mut u, &mut ctx, IER, 0x02);
    assert!(ctx.irq(4));
    u.reset();
    ctx.run_until(&mut u, 10);
    assert!(!ctx.irq(4));
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let (mut u, host, mut ctx) = uart();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = BASE - 1 + (x % 10) as u16;
        let size = [1, 2, 4][((x >> 4) % 3) as usize];
        ctx.now_ns += (x >> 40) % 50_000;
        if x & 0x100 != 0 {
            u.io_write(port, size, (x >> 16) as u32, &mut ctx);
        } else {
            u.io_read(port, size, &mut ctx);
        }
        if x & 0xf000 == 0 {
            host.push_input(&[x as u8; 5]);
        }
        if u.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            u.on_timer(&mut ctx);
        }
    }
}

#[test]
fn config_selects_port_and_irq() {
    let mut config = DeviceConfig::default();
    config.options.insert("iobase".into(), "0x2f8".into());
    config.options.insert("irq".into(), "3".into());
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "uart@2f8");
    assert_eq!(dev.ports(), vec![PortRange::new(0x2f8, 8)]);
    for (key, bad) in [("irq", "16"), ("iobase", "0xfffc"), ("speed", "9600")] {
        let mut config = DeviceConfig::default();
        config.options.insert(key.into(), bad.into());
        assert!((PLUGIN.create)(&mut config).is_err(), "{key}={bad}");
    }
}
