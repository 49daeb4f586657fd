use super::*;
use nestor_device::testing::FakeContext;

fn write_reg(io: &mut Ioapic, ctx: &mut FakeContext, index: u8, value: u32) {
    io.mmio_write(DEFAULT_BASE + IOREGSEL, &[index], ctx);
    io.mmio_write(DEFAULT_BASE + IOWIN, &value.to_le_bytes(), ctx);
}

fn read_reg(io: &mut Ioapic, ctx: &mut FakeContext, index: u8) -> u32 {
    io.mmio_write(
        DEFAULT_BASE + IOREGSEL,
        &u32::from(index).to_le_bytes(),
        ctx,
    );
    let mut buf = [0; 4];
    io.mmio_read(DEFAULT_BASE + IOWIN, &mut buf, ctx);
    u32::from_le_bytes(buf)
}

/// Program redirection entry `pin` (high half first, as operating systems do).
fn program(io: &mut Ioapic, ctx: &mut FakeContext, pin: u8, value: u64) {
    write_reg(io, ctx, 0x11 + 2 * pin, (value >> 32) as u32);
    write_reg(io, ctx, 0x10 + 2 * pin, value as u32);
}

#[test]
fn identification_registers() {
    let mut io = Ioapic::new(0x11);
    let mut ctx = FakeContext::new();
    assert_eq!(read_reg(&mut io, &mut ctx, 0x01), 0x0017_0011);
    write_reg(&mut io, &mut ctx, 0x00, 0xff00_0000);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x00), 0x0f00_0000);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x02), 0x0f00_0000);
    let mut sel = [0u8; 4];
    io.mmio_read(DEFAULT_BASE + IOREGSEL, &mut sel, &mut ctx);
    assert_eq!(sel, [0x02, 0, 0, 0]);
    assert_eq!(
        read_reg(&mut io, &mut ctx, 0x10 + 2 * 7),
        0x1_0000,
        "masked at reset"
    );
    assert_eq!(read_reg(&mut io, &mut ctx, 0x40), 0, "past the last entry");
    let mut ich = Ioapic::new(0x20);
    assert_eq!(read_reg(&mut ich, &mut ctx, 0x01), 0x0017_0020);
    assert_eq!(ich.mmio_ranges(), vec![MmioRange::new(0xfec0_0000, 0x1000)]);
}

#[test]
fn edge_entry_sends_its_vector_on_rising_edges() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    // ISA IRQ0 arrives on pin 2 (the MADT override); vector 0x30 to APIC 1.
    program(&mut io, &mut ctx, 2, 0x0100_0000_0000_0030);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x15), 0x0100_0000);
    io.set_irq(2, true);
    io.set_irq(2, true);
    io.set_irq(2, false);
    io.set_irq(2, true);
    let expected = ApicMessage {
        vector: 0x30,
        delivery_mode: DeliveryMode::Fixed,
        dest_mode: DestinationMode::Physical,
        dest: 1,
        level_triggered: false,
    };
    assert_eq!(io.take_messages(), vec![expected, expected]);
    assert!(!io.has_messages());
    // Masked edges are lost, also after unmasking.
    program(&mut io, &mut ctx, 2, 0x0100_0000_0001_0030);
    io.set_irq(2, false);
    io.set_irq(2, true);
    program(&mut io, &mut ctx, 2, 0x0100_0000_0000_0030);
    assert!(io.take_messages().is_empty());
}

#[test]
fn level_entry_waits_for_eoi_and_redelivers() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    // Pin 16 (PCI INTA#): level-triggered, active low, logical destination 0x01.
    program(&mut io, &mut ctx, 16, 0x0100_0000_0000_a941);
    io.set_irq(16, true);
    let first = io.take_messages();
    assert_eq!(first.len(), 1);
    assert!(first[0].level_triggered);
    assert_eq!(first[0].dest_mode, DestinationMode::Logical);
    assert_ne!(read_reg(&mut io, &mut ctx, 0x30) & 0x4000, 0, "remote IRR");
    io.set_irq(16, true);
    assert!(io.take_messages().is_empty(), "no resend before EOI");
    io.end_of_interrupt(0x42);
    assert!(io.take_messages().is_empty(), "another vector's EOI");
    io.end_of_interrupt(0x41);
    assert_eq!(io.take_messages(), first, "still asserted: sent again");
    io.set_irq(16, false);
    io.end_of_interrupt(0x41);
    assert!(io.take_messages().is_empty());
    assert_eq!(read_reg(&mut io, &mut ctx, 0x30) & 0x4000, 0);
    // The guest writes the remote IRR bit: it is read-only.
    write_reg(&mut io, &mut ctx, 0x30, 0xe941);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x30), 0xa941);
}

#[test]
fn eoi_register_of_version_0x20() {
    for (version, resent) in [(0x20u8, 1usize), (0x11, 0)] {
        let mut io = Ioapic::new(version);
        let mut ctx = FakeContext::new();
        program(&mut io, &mut ctx, 9, 0x8055);
        io.set_irq(9, true);
        io.take_messages();
        io.mmio_write(DEFAULT_BASE + EOI, &0x55u32.to_le_bytes(), &mut ctx);
        assert_eq!(io.take_messages().len(), resent, "version {version:#x}");
    }
}

#[test]
fn unmasking_an_asserted_level_entry_sends() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    program(&mut io, &mut ctx, 10, 0x1_8060);
    io.set_irq(10, true);
    assert!(io.take_messages().is_empty());
    program(&mut io, &mut ctx, 10, 0x8060);
    assert_eq!(io.take_messages().len(), 1);
    // Switching to edge clears remote IRR.
    program(&mut io, &mut ctx, 10, 0x0060);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x24) & 0x4000, 0);
}

#[test]
fn delivery_modes_are_carried() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    program(&mut io, &mut ctx, 0, 0x0700); // ExtINT: the 8259 through pin 0
    program(&mut io, &mut ctx, 1, 0x8400); // NMI, level bit set: still edge
    program(&mut io, &mut ctx, 3, 0x0300); // reserved mode: nothing sent
    program(&mut io, &mut ctx, 5, 0x0135); // lowest priority
    for pin in [0, 1, 3, 5] {
        io.set_irq(pin, true);
    }
    let modes: Vec<(DeliveryMode, bool)> = io
        .take_messages()
        .iter()
        .map(|m| (m.delivery_mode, m.level_triggered))
        .collect();
    assert_eq!(
        modes,
        vec![
            (DeliveryMode::ExtInt, false),
            (DeliveryMode::Nmi, false),
            (DeliveryMode::LowestPriority, false)
        ]
    );
}

#[test]
fn out_of_range_pins_and_partial_accesses() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    io.set_irq(24, true);
    io.set_irq(255, true);
    assert_eq!(io.state().pins, 0);
    // A 16-bit write to IOWIN replaces the low half of the register.
    io.mmio_write(DEFAULT_BASE + IOREGSEL, &[0x12], &mut ctx);
    io.mmio_write(DEFAULT_BASE + IOWIN, &[0x44, 0x00], &mut ctx);
    assert_eq!(read_reg(&mut io, &mut ctx, 0x12), 0x1_0044);
    let mut b = [0u8; 1];
    io.mmio_read(DEFAULT_BASE + IOWIN + 2, &mut b, &mut ctx);
    assert_eq!(b, [0x01]);
}

#[test]
fn reset_masks_entries_and_keeps_pin_levels() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    program(&mut io, &mut ctx, 11, 0x8070);
    io.set_irq(11, true);
    io.reset();
    assert_eq!(io.state().pins, 1 << 11);
    assert!(!io.has_messages());
    program(&mut io, &mut ctx, 11, 0x8070);
    assert_eq!(io.take_messages().len(), 1, "the level is still there");
}

/// An IOAPIC in the middle of things: entries programmed, a level interrupt awaiting EOI.
fn busy() -> (Ioapic, FakeContext) {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    program(&mut io, &mut ctx, 2, 0x30);
    program(&mut io, &mut ctx, 8, 0x38);
    program(&mut io, &mut ctx, 17, 0x0200_0000_0000_8951);
    io.set_irq(17, true);
    io.set_irq(8, true);
    io.mmio_write(DEFAULT_BASE + IOREGSEL, &[0x12], &mut ctx);
    (io, ctx)
}

#[test]
fn state_round_trips() {
    let (io, _ctx) = busy();
    let mut copy = Ioapic::new(0x11);
    copy.restore(&io.save().unwrap()).unwrap();
    assert_eq!(copy.state(), io.state());
    assert!(copy.restore(&io.save().unwrap()[2..]).is_err());
    let mut odd = IoapicState::reset(0x20);
    odd.redirection.truncate(3);
    let bytes = save_state(STATE_VERSION, &odd).unwrap();
    assert!(matches!(copy.restore(&bytes), Err(StateError::Decode(_))));
}

#[test]
fn restored_ioapic_carries_on() {
    let (mut a, mut ctx_a) = busy();
    let mut b = Ioapic::new(0x20);
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = ctx_a.clone();
    for io in [&mut a, &mut b] {
        io.set_irq(2, true);
        io.end_of_interrupt(0x51);
        io.set_irq(8, false);
        io.set_irq(8, true);
    }
    assert_eq!(
        read_reg(&mut a, &mut ctx_a, 0x12),
        read_reg(&mut b, &mut ctx_b, 0x12)
    );
    let sent = a.take_messages();
    assert_eq!(sent, b.take_messages());
    let vectors: Vec<u8> = sent.iter().map(|m| m.vector).collect();
    assert_eq!(vectors, vec![0x51, 0x38, 0x30, 0x51, 0x38]);
    assert_eq!(a.state(), b.state());
}

#[test]
fn arbitrary_guest_accesses_never_panic() {
    let mut io = Ioapic::new(0x20);
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = [0x00, 0x10, 0x40, 0x13, 0x20, 0xffc][(x % 6) as usize];
        let len = [1, 2, 4, 8][((x >> 8) & 3) as usize];
        let value = (x >> 16).to_le_bytes();
        match (x >> 40) & 3 {
            0 => io.mmio_write(DEFAULT_BASE + offset, &value[..len], &mut ctx),
            1 => {
                let mut buf = [0; 8];
                io.mmio_read(DEFAULT_BASE + offset, &mut buf[..len], &mut ctx);
            }
            2 => io.set_irq((x >> 50) as u8 % 32, x & 0x10 != 0),
            _ => {
                io.end_of_interrupt((x >> 30) as u8);
                if x & 1 == 0 {
                    io.take_messages();
                }
            }
        }
    }
    assert!(io.state().outbox.len() <= 256);
}

#[test]
fn plugin_builds_an_ioapic() {
    let mut config = DeviceConfig::default();
    config.options.insert("version".into(), "0x11".into());
    config.options.insert("id".into(), "2".into());
    let dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "ioapic");
    config.options.insert("version".into(), "0x15".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}

#[test]
fn level_interrupt_round_trip_through_a_local_apic() {
    use nestor_lapic::{reg, AckResult, Lapic};
    let mut io = Ioapic::new(0x20);
    let mut apic = Lapic::new(0, true);
    let mut ctx = FakeContext::new();
    let apic_write = |apic: &mut Lapic, ctx: &mut FakeContext, offset: u32, value: u32| {
        let addr = nestor_lapic::DEFAULT_BASE + u64::from(offset);
        apic.mmio_write(addr, &value.to_le_bytes(), ctx);
    };
    apic_write(&mut apic, &mut ctx, reg::SVR, 0x1ff);
    program(&mut io, &mut ctx, 19, 0x8063);
    io.set_irq(19, true);
    let mut taken = 0;
    for _ in 0..3 {
        // The machine's routing step: IOAPIC messages to the APIC, EOIs back.
        for m in io.take_messages() {
            if apic.matches(&m) {
                apic.accept(m);
            }
        }
        if apic.acknowledge() == AckResult::Vector(0x63) {
            taken += 1;
        }
        if taken == 2 {
            io.set_irq(19, false); // the driver silenced the device
        }
        apic_write(&mut apic, &mut ctx, reg::EOI, 0);
        for v in apic.take_eoi_broadcasts() {
            io.end_of_interrupt(v);
        }
    }
    assert_eq!(taken, 2);
    assert!(!io.has_messages());
    assert_eq!(read_reg(&mut io, &mut ctx, 0x10 + 2 * 19) & 0x4000, 0);
}
