use super::*;
use nestor_device::testing::FakeContext;

#[test]
fn identity_and_defaults() {
    let mut b = Piix3::new();
    assert_eq!(b.config_read(0x00, 4), 0x7000_8086);
    assert_eq!(b.config_read(0x08, 4), 0x0601_0000, "ISA bridge");
    assert_eq!(
        b.config_read(0x0e, 1),
        0x80,
        "multi-function: IDE and ACPI follow"
    );
    assert_eq!(b.config_read(0x04, 4), 0x0200_0007);
    assert_eq!(b.config_read(0x60, 4), 0x8080_8080);
    assert_eq!(b.config_read(0x4c, 1), 0x4d);
    assert_eq!(b.config_read(0x69, 1), 0x02);
    assert_eq!(
        (0..4).map(|n| b.pirq_route(n)).collect::<Vec<_>>(),
        [None; 4]
    );
    assert_eq!(b.pci_slot(), PciSlot::new(0, 1, 0));
    assert_eq!(b.ports(), vec![PortRange::new(0xcf9, 1)]);
}

#[test]
fn pirq_routes_follow_the_route_registers() {
    let mut b = Piix3::new();
    let mut ctx = FakeContext::new();
    b.config_write(0x60, 1, 0x0b, &mut ctx);
    b.config_write(0x62, 2, 0x8a05, &mut ctx);
    assert_eq!(b.pirq_route(0), Some(11));
    assert_eq!(b.pirq_route(1), None, "still disabled");
    assert_eq!(b.pirq_route(2), Some(5));
    assert_eq!(b.pirq_route(3), None, "bit 7 disables routing");
    assert_eq!(b.pirq_route(4), None);
    b.config_write(0x61, 1, 0x7f, &mut ctx);
    assert_eq!(b.config_read(0x61, 1), 0x0f, "bits 6:4 are reserved");
    assert_eq!(ctx.remaps, 0);
}

#[test]
fn reserved_irqs_are_not_routed() {
    let routed: Vec<u8> = (0..16)
        .filter(|&v| decode_pirq_route(v).is_some())
        .collect();
    assert_eq!(routed, [3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15]);
    assert_eq!(decode_pirq_route(0x89), None);
}

#[test]
fn reset_control_register() {
    let mut b = Piix3::new();
    let mut ctx = FakeContext::new();
    b.io_write(0xcf9, 1, 0x02, &mut ctx);
    assert!(
        ctx.exits.is_empty(),
        "selecting the reset type alone does nothing"
    );
    assert_eq!(b.io_read(0xcf9, 1, &mut ctx), 0x02);
    b.io_write(0xcf9, 1, 0x04, &mut ctx);
    assert_eq!(ctx.exits, vec![ExitRequest::Reset]);
    assert_eq!(b.io_read(0xcf9, 1, &mut ctx), 0x00);
    b.io_write(0xcf9, 1, 0x06, &mut ctx);
    b.reset();
    assert_eq!(b.io_read(0xcf9, 1, &mut ctx), 0);
    assert_eq!(b.io_read(0xcf8, 1, &mut ctx), u32::MAX);
}

#[test]
fn state_round_trips() {
    let mut b = Piix3::new();
    let mut ctx = FakeContext::new();
    b.config_write(0x60, 4, 0x0e0b_0a09, &mut ctx);
    b.io_write(0xcf9, 1, 0x02, &mut ctx);
    let mut copy = Piix3::new();
    copy.restore(&b.save().unwrap()).unwrap();
    assert_eq!(copy.state(), b.state());
    let mut damaged = b.state().clone();
    damaged.pci.bytes.push(0);
    assert!(copy
        .restore(&save_state(STATE_VERSION, &damaged).unwrap())
        .is_err());
}

#[test]
fn restored_bridge_carries_on_like_the_original() {
    let mut a = Piix3::new();
    let mut ctx_a = FakeContext::new();
    a.config_write(0x60, 4, 0x0e0b_0a09, &mut ctx_a);
    a.io_write(0xcf9, 1, 0x02, &mut ctx_a);
    let mut b = Piix3::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    for dev in [&mut a, &mut b] {
        dev.config_write(0x62, 1, 0x80, &mut FakeContext::new());
    }
    assert_eq!(
        (0..4).map(|n| a.pirq_route(n)).collect::<Vec<_>>(),
        (0..4).map(|n| b.pirq_route(n)).collect::<Vec<_>>()
    );
    assert_eq!(
        a.io_read(0xcf9, 1, &mut ctx_a),
        b.io_read(0xcf9, 1, &mut ctx_b)
    );
    assert_eq!(a.state(), b.state());
}

#[test]
fn arbitrary_guest_accesses_never_panic() {
    let mut b = Piix3::new();
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x >> 8) as u16 & 0x1ff;
        let size = [1, 2, 4][(x % 3) as usize];
        match (x >> 50) & 3 {
            0 => b.config_write(offset, size, (x >> 32) as u32, &mut ctx),
            1 => {
                b.config_read(offset, size);
            }
            2 => b.io_write(0xcf9, 1, (x >> 20) as u32 & 0x3, &mut ctx),
            _ => {
                b.io_read(0xcf8 + (x as u16 & 3), size, &mut ctx);
            }
        }
        for n in 0..5 {
            let _ = b.pirq_route(n);
        }
    }
    assert_eq!(b.config_read(0, 4), 0x7000_8086);
}

#[test]
fn config_selects_the_slot() {
    let mut config = DeviceConfig::default();
    config.options.insert("slot".into(), "7".into());
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.pci().map(|f| f.pci_slot()), Some(PciSlot::new(0, 7, 0)));
    config.options.insert("slot".into(), "32".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
