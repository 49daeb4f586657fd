use super::*;
use nestor_device::testing::FakeContext;

fn out(dma: &mut Dma, ctx: &mut FakeContext, port: u16, value: u8) {
    dma.io_write(port, 1, u32::from(value), ctx);
}

fn inb(dma: &mut Dma, ctx: &mut FakeContext, port: u16) -> u8 {
    dma.io_read(port, 1, ctx) as u8
}

/// What a BIOS does at POST: master clear both, cascade channel 4 and unmask it.
fn post(dma: &mut Dma, ctx: &mut FakeContext) {
    out(dma, ctx, 0x0d, 0);
    out(dma, ctx, 0xda, 0);
    out(dma, ctx, 0xd6, 0xc0);
    out(dma, ctx, 0xd4, 0x00);
}

/// Program an 8-bit channel the way the BIOS floppy code does (INT 13h): mask, clear the
/// flip-flop, mode, address, page, count, unmask.
fn program8(dma: &mut Dma, ctx: &mut FakeContext, ch: u8, mode: u8, addr: u32, len: u16) {
    let ch16 = u16::from(ch);
    out(dma, ctx, 0x0a, 0x04 | ch);
    out(dma, ctx, 0x0c, 0);
    out(dma, ctx, 0x0b, mode | ch);
    out(dma, ctx, ch16 * 2, addr as u8);
    out(dma, ctx, ch16 * 2, (addr >> 8) as u8);
    out(
        dma,
        ctx,
        0x80 + u16::from(PAGE_PORT[usize::from(ch)]),
        (addr >> 16) as u8,
    );
    out(dma, ctx, ch16 * 2 + 1, (len - 1) as u8);
    out(dma, ctx, ch16 * 2 + 1, ((len - 1) >> 8) as u8);
    out(dma, ctx, 0x0a, ch);
}

#[test]
fn bios_floppy_read_programming_moves_bytes_to_memory() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x3_0000);
    post(&mut dma, &mut ctx);
    program8(&mut dma, &mut ctx, 2, 0x46, 0x2_7c00, 512);
    assert!(dma.ready(2));
    assert_eq!(dma.transfer_type(2), Some(TransferType::Write));
    let sector: Vec<u8> = (0..512).map(|i| i as u8).collect();
    let mut half = sector[..300].to_vec();
    let first = dma.transfer(2, &mut half, &mut ctx);
    assert_eq!(
        first,
        DmaTransfer {
            bytes: 300,
            terminal_count: false
        }
    );
    let mut rest = sector[300..].to_vec();
    rest.extend_from_slice(&[0xee; 10]);
    let second = dma.transfer(2, &mut rest, &mut ctx);
    assert_eq!(
        second,
        DmaTransfer {
            bytes: 212,
            terminal_count: true
        }
    );
    assert_eq!(ctx.ram[0x2_7c00..0x2_7e00], sector[..]);
    assert_eq!(ctx.ram[0x2_7e00], 0, "nothing past the count");
    // Without auto-init the channel masks itself at TC; the status shows TC once.
    assert!(!dma.ready(2));
    assert_eq!(dma.transfer(2, &mut [0; 4], &mut ctx).bytes, 0);
    assert_eq!(inb(&mut dma, &mut ctx, 0x08) & 0x0f, 0x04);
    assert_eq!(inb(&mut dma, &mut ctx, 0x08) & 0x0f, 0x00);
    // Address and count read back through the flip-flop: address advanced, count wrapped.
    out(&mut dma, &mut ctx, 0x0c, 0);
    let lo = inb(&mut dma, &mut ctx, 0x04);
    let hi = inb(&mut dma, &mut ctx, 0x04);
    assert_eq!(u16::from_le_bytes([lo, hi]), 0x7e00);
    let lo = inb(&mut dma, &mut ctx, 0x05);
    let hi = inb(&mut dma, &mut ctx, 0x05);
    assert_eq!(u16::from_le_bytes([lo, hi]), 0xffff);
}

#[test]
fn read_transfer_fills_the_device_buffer() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x1_0000);
    ctx.ram[0x500..0x504].copy_from_slice(&[9, 8, 7, 6]);
    post(&mut dma, &mut ctx);
    program8(&mut dma, &mut ctx, 2, 0x4a, 0x500, 4);
    let mut buf = [0u8; 4];
    let done = dma.transfer(2, &mut buf, &mut ctx);
    assert!(done.terminal_count);
    assert_eq!(buf, [9, 8, 7, 6]);
}

#[test]
fn channels_0_to_3_need_the_cascade_unmasked() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x1_0000);
    program8(&mut dma, &mut ctx, 1, 0x44, 0x100, 16);
    assert!(!dma.ready(1), "channel 4 is masked after power-on");
    assert_eq!(dma.transfer(1, &mut [1; 16], &mut ctx).bytes, 0);
    post(&mut dma, &mut ctx);
    program8(&mut dma, &mut ctx, 1, 0x44, 0x100, 16);
    assert_eq!(dma.transfer(1, &mut [1; 16], &mut ctx).bytes, 16);
    // Command bit 2 disables the whole controller.
    program8(&mut dma, &mut ctx, 1, 0x44, 0x100, 16);
    out(&mut dma, &mut ctx, 0x08, 0x04);
    assert!(!dma.ready(1));
}

#[test]
fn auto_init_reloads_and_decrement_runs_backwards() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x1_0000);
    post(&mut dma, &mut ctx);
    // Auto-init, decrement, write: 4 bytes ending at 0x203 going down.
    program8(&mut dma, &mut ctx, 3, 0x74, 0x203, 4);
    let done = dma.transfer(3, &mut [1, 2, 3, 4, 5, 6], &mut ctx);
    assert_eq!(
        done,
        DmaTransfer {
            bytes: 4,
            terminal_count: true
        }
    );
    assert_eq!(ctx.ram[0x200..0x204], [4, 3, 2, 1]);
    assert!(dma.ready(3), "auto-init keeps the channel unmasked");
    let again = dma.transfer(3, &mut [7, 7], &mut ctx);
    assert_eq!(again.bytes, 2);
    assert_eq!(
        ctx.ram[0x202..0x204],
        [7, 7],
        "restarted at the base address"
    );
}

#[test]
fn sixteen_bit_channels_count_words() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x4_0000);
    post(&mut dma, &mut ctx);
    // Channel 5: word address 0x1000 on page 0x02 = physical 0x22000, 3 words.
    out(&mut dma, &mut ctx, 0xd4, 0x05);
    out(&mut dma, &mut ctx, 0xd8, 0);
    out(&mut dma, &mut ctx, 0xd6, 0x45);
    out(&mut dma, &mut ctx, 0xc4, 0x00);
    out(&mut dma, &mut ctx, 0xc4, 0x10);
    out(&mut dma, &mut ctx, 0x8b, 0x03); // bit 0 of the page is ignored for word channels
    out(&mut dma, &mut ctx, 0xc6, 2);
    out(&mut dma, &mut ctx, 0xc6, 0);
    out(&mut dma, &mut ctx, 0xd4, 0x01);
    let done = dma.transfer(5, &mut [1, 2, 3, 4, 5, 6, 7], &mut ctx);
    assert_eq!(
        done,
        DmaTransfer {
            bytes: 6,
            terminal_count: true
        }
    );
    assert_eq!(ctx.ram[0x2_2000..0x2_2006], [1, 2, 3, 4, 5, 6]);
    assert_eq!(inb(&mut dma, &mut ctx, 0xd0) & 0x0f, 0x02);
    // Channel 4 is the cascade: never a transfer channel.
    assert_eq!(dma.transfer(4, &mut [0; 2], &mut ctx).bytes, 0);
    assert_eq!(dma.transfer(9, &mut [0; 2], &mut ctx).bytes, 0);
}

#[test]
fn masks_requests_and_registers() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::new();
    assert_eq!(
        inb(&mut dma, &mut ctx, 0x0f),
        0xff,
        "all masked at power-on"
    );
    out(&mut dma, &mut ctx, 0x0e, 0);
    assert_eq!(inb(&mut dma, &mut ctx, 0x0f), 0xf0);
    out(&mut dma, &mut ctx, 0x0f, 0x05);
    assert_eq!(inb(&mut dma, &mut ctx, 0x0f), 0xf5);
    out(&mut dma, &mut ctx, 0x09, 0x06); // request channel 2
    assert_eq!(inb(&mut dma, &mut ctx, 0x08), 0x40);
    out(&mut dma, &mut ctx, 0x0d, 0); // master clear
    assert_eq!(inb(&mut dma, &mut ctx, 0x08), 0x00);
    assert_eq!(inb(&mut dma, &mut ctx, 0x0f), 0xff);
    for port in [0x81u16, 0x84, 0x8f] {
        out(&mut dma, &mut ctx, port, port as u8 ^ 0x5a);
        assert_eq!(inb(&mut dma, &mut ctx, port), port as u8 ^ 0x5a);
    }
    assert_eq!(
        inb(&mut dma, &mut ctx, 0xc1),
        0xff,
        "odd ports of controller 2"
    );
}

#[test]
fn state_round_trips() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x1_0000);
    post(&mut dma, &mut ctx);
    program8(&mut dma, &mut ctx, 2, 0x56, 0x1234, 100);
    out(&mut dma, &mut ctx, 0x04, 0x99); // leave the flip-flop mid-way
    let mut copy = Dma::new();
    copy.restore(&dma.save().unwrap()).unwrap();
    assert_eq!(copy.state(), dma.state());
    assert!(copy.restore(&dma.save().unwrap()[1..]).is_err());
}

#[test]
fn restored_dma_carries_on_mid_transfer() {
    let mut a = Dma::new();
    let mut ctx_a = FakeContext::with_ram(0x1_0000);
    post(&mut a, &mut ctx_a);
    program8(&mut a, &mut ctx_a, 2, 0x46, 0x800, 64);
    a.transfer(2, &mut [0x11; 20], &mut ctx_a);
    let mut b = Dma::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = ctx_a.clone();
    let ra = a.transfer(2, &mut [0x22; 64], &mut ctx_a);
    let rb = b.transfer(2, &mut [0x22; 64], &mut ctx_b);
    assert_eq!(ra, rb);
    assert_eq!(
        ra,
        DmaTransfer {
            bytes: 44,
            terminal_count: true
        }
    );
    assert_eq!(ctx_a.ram, ctx_b.ram);
    assert_eq!(a.state(), b.state());
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let mut dma = Dma::new();
    let mut ctx = FakeContext::with_ram(0x1000);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let port = match x % 4 {
            0 => (x >> 8) as u16 & 0x0f,
            1 => 0xc0 + ((x >> 8) as u16 & 0x1f),
            2 => 0x80 + ((x >> 8) as u16 & 0x0f),
            _ => (x >> 8) as u16,
        };
        let size = [1, 2, 4][((x >> 20) % 3) as usize];
        if x & 0x100_0000 != 0 {
            dma.io_write(port, size, (x >> 32) as u32, &mut ctx);
        } else {
            dma.io_read(port, size, &mut ctx);
        }
        if x & 0xf000_0000 == 0 {
            let mut buf = vec![0u8; ((x >> 40) % 700) as usize];
            dma.transfer(((x >> 50) % 9) as u8, &mut buf, &mut ctx);
        }
    }
}

#[test]
fn plugin_builds_a_dma_controller() {
    let mut config = DeviceConfig::default();
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "dma");
    assert!(
        !dev.ports().iter().any(|r| r.contains(0x80)),
        "0x80 is the POST port"
    );
    config.options.insert("x".into(), "1".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
