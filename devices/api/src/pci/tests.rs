use super::*;

fn nic() -> PciConfig {
    let mut id = PciId::new(0x8086, 0x100e, 0x02_00_00);
    id.revision = 3;
    id.subsystem_vendor = 0x1af4;
    id.subsystem = 0x1100;
    id.interrupt_pin = 1;
    PciConfig::new(&id)
}

#[test]
fn header_holds_the_identity() {
    let c = nic();
    assert_eq!(c.read(0x00, 4), 0x100e_8086);
    assert_eq!(c.read(0x08, 4), 0x0200_0003);
    assert_eq!(c.read(0x2c, 4), 0x1100_1af4);
    assert_eq!(c.read(0x3d, 1), 1);
    assert_eq!(c.read(0x0e, 1), 0);
    assert_eq!(c.read(0x02, 2), 0x100e, "word read inside a dword");
    assert_eq!(c.read(0xff, 4), 0, "bytes past config space read 0");
}

#[test]
fn read_only_registers_ignore_writes() {
    let mut c = nic();
    let before = c.clone();
    for offset in [0x00, 0x02, 0x08, 0x0e, 0x2c, 0x3d, 0x40, 0xfc] {
        c.write(offset, 4, 0xffff_ffff);
    }
    c.write(0x04, 4, 0); // command and status, zeros change nothing
    assert_eq!(c.bytes, before.bytes);
}

#[test]
fn standard_writable_registers_and_sub_dword_writes() {
    let mut c = nic();
    c.write(0x3c, 1, 0x0b);
    c.write(0x0c, 2, 0x4010);
    assert_eq!(c.read(0x3c, 1), 0x0b);
    assert_eq!(c.read(0x0c, 2), 0x4010);
    c.write(0x0d, 1, 0x20);
    assert_eq!(
        c.read(0x0c, 2),
        0x2010,
        "byte write leaves its neighbour alone"
    );
    c.write(0x04, 2, 0xffff);
    assert_eq!(c.command(), command::DEFAULT_WRITABLE);
}

#[test]
fn io_bar_sizing_and_decoding() {
    let mut c = nic();
    c.add_bar(1, Bar::io(0x40)).unwrap();
    assert_eq!(c.read(0x14, 4), 1, "I/O indicator bit");
    c.write(0x14, 4, 0xffff_ffff);
    assert_eq!(
        c.read(0x14, 4),
        0xffff_ffc1,
        "32-bit register, 64-byte size"
    );
    c.write(0x14, 4, 0x1_c001);
    c.write(0x04, 2, u32::from(command::IO));
    assert_eq!(
        c.bar_address(1),
        None,
        "above the 64 KiB port space: decodes nothing"
    );
    c.write(0x04, 2, 0);
    c.write(0x14, 4, 0xc001);
    assert_eq!(c.bar_address(1), None, "I/O decoding off");
    assert!(c.write(0x04, 2, u32::from(command::IO)));
    assert_eq!(c.bar_address(1), Some(0xc000));
    assert_eq!(c.io_bars(), vec![(1, PortRange::new(0xc000, 0x40))]);
    assert_eq!(c.io_bar_at(0xc03f), Some((1, 0x3f)));
    assert_eq!(c.io_bar_at(0xc040), None);
    assert!(!c.write(0x04, 2, u32::from(command::IO | command::BUS_MASTER)));
    assert!(c.bus_master());
    assert!(c.write(0x14, 2, 0xd000), "moving the BAR");
    assert_eq!(c.mmio_bars(), vec![]);
}

#[test]
fn memory_bar_sizing_and_prefetch_bits() {
    let mut c = nic();
    c.add_bar(0, Bar::mem32(0x1000).prefetchable()).unwrap();
    c.write(0x10, 4, 0xffff_ffff);
    assert_eq!(c.read(0x10, 4), 0xffff_f008);
    c.write(0x10, 4, 0xfebf_f123);
    assert_eq!(c.read(0x10, 4), 0xfebf_f008);
    c.write(0x04, 2, u32::from(command::MEMORY));
    assert_eq!(c.bar_address(0), Some(0xfebf_f000));
    assert_eq!(c.mmio_bar_at(0xfebf_f010), Some((0, 0x10)));
    c.write(0x10, 4, 0xffff_ffff);
    assert_eq!(c.bar_address(0), Some(0xffff_f000), "fits just below 4 GiB");
    c.write(0x10, 4, 0);
    assert_eq!(c.bar_address(0), None, "a BAR at 0 decodes nothing");
}

#[test]
fn sixty_four_bit_bar_takes_two_registers() {
    let mut c = nic();
    c.add_bar(2, Bar::mem64(1 << 33)).unwrap();
    assert_eq!(c.read(0x18, 4), 0x4);
    c.write(0x18, 4, 0xffff_ffff);
    c.write(0x1c, 4, 0xffff_ffff);
    assert_eq!(
        c.read(0x18, 4),
        0x0000_0004,
        "size above 4 GiB: low half all read-only"
    );
    assert_eq!(c.read(0x1c, 4), 0xffff_fffe);
    c.write(0x18, 4, 0);
    c.write(0x1c, 4, 0x8);
    c.write(0x04, 2, u32::from(command::MEMORY));
    assert_eq!(c.bar_address(2), Some(0x8_0000_0000));
    assert_eq!(
        c.add_bar(3, Bar::io(4)),
        Err(PciError::Bar {
            index: 3,
            reason: "already declared"
        })
    );
    assert!(c.add_bar(5, Bar::mem64(0x1000)).is_err(), "no upper half");
}

#[test]
fn bad_bar_declarations_are_refused() {
    let mut c = nic();
    assert!(c.add_bar(0, Bar::io(3)).is_err());
    assert!(c.add_bar(0, Bar::mem32(8)).is_err());
    assert!(c.add_bar(0, Bar::io(16).prefetchable()).is_err());
    assert!(c.add_bar(7, Bar::io(16)).is_err());
    assert!(c.add_bar(ROM_BAR, Bar::mem32(0x1000)).is_err());
    assert!(c.add_bar(0, Bar::rom(0x1000)).is_err());
    assert!(c.bars.is_empty());
}

#[test]
fn rom_bar_needs_its_enable_bit() {
    let mut c = nic();
    c.add_bar(ROM_BAR, Bar::rom(0x10000)).unwrap();
    c.write(0x30, 4, 0xffff_ffff);
    assert_eq!(c.read(0x30, 4), 0xffff_0001);
    c.write(0x30, 4, 0xfeb0_0000);
    c.write(0x04, 2, u32::from(command::MEMORY));
    assert_eq!(c.bar_address(ROM_BAR), None);
    assert!(c.write(0x30, 4, 0xfeb0_0001));
    assert_eq!(c.bar_address(ROM_BAR), Some(0xfeb0_0000));
}

#[test]
fn status_error_bits_are_write_one_to_clear() {
    let mut c = nic();
    c.set_status_bits(
        status::RECEIVED_MASTER_ABORT | status::DETECTED_PARITY | status::DEVSEL_MEDIUM,
    );
    c.write(0x06, 2, u32::from(status::DETECTED_PARITY));
    assert_eq!(
        c.status(),
        status::RECEIVED_MASTER_ABORT | status::DEVSEL_MEDIUM
    );
    c.write(0x07, 1, 0xff);
    assert_eq!(
        c.status(),
        status::DEVSEL_MEDIUM,
        "DEVSEL timing is read-only"
    );
    c.set_status_bits(status::SIGNALED_SYSTEM_ERROR);
    c.write(0x04, 4, 0x0000_0002);
    assert_eq!(
        c.status(),
        status::DEVSEL_MEDIUM | status::SIGNALED_SYSTEM_ERROR,
        "writing 0 clears nothing"
    );
}

#[test]
fn capabilities_form_a_chain_with_their_own_masks() {
    let mut c = nic();
    c.add_capability(0x50, 0x05, &[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[0x01])
        .unwrap();
    c.add_capability(0x40, 0x01, &[0x03, 0x00, 0x00, 0x00], &[0, 0, 0x03, 0x81])
        .unwrap();
    assert_ne!(c.status() & status::CAPABILITIES, 0);
    assert_eq!(c.read(0x34, 1), 0x50);
    assert_eq!(c.read(0x50, 2), 0x4005, "MSI, next is the PM capability");
    assert_eq!(c.read(0x40, 2), 0x0001, "PM, end of the list");
    c.write(0x52, 2, 0xffff);
    assert_eq!(c.read(0x52, 2), 0x0081, "only the enable bit is writable");
    c.write(0x40, 4, 0xffff_ffff);
    assert_eq!(
        c.read(0x40, 4),
        0x0003_0001,
        "ID, next and capabilities register read-only"
    );
    c.write(0x44, 4, 0xffff_ffff);
    assert_eq!(c.read(0x44, 4), 0x0000_8103);
    assert_eq!(c.find_capability(0x01), Some(0x40));
    assert_eq!(c.find_capability(0x10), None);
    for (offset, len) in [(0x3c, 2), (0x42, 2), (0x58, 2), (0xfc, 4)] {
        assert!(
            c.add_capability(offset, 9, &vec![0; len], &[]).is_err(),
            "{offset:#x}"
        );
    }
    assert!(
        c.add_capability(0x60, 9, &[0; 2], &[0; 3]).is_err(),
        "mask longer than body"
    );
}

#[test]
fn intx_follows_interrupt_disable() {
    let mut c = nic();
    assert!(c.set_intx(true));
    assert_ne!(c.status() & status::INTERRUPT, 0);
    c.write(0x04, 2, u32::from(command::INTX_DISABLE));
    assert!(!c.set_intx(true));
    assert_ne!(
        c.status() & status::INTERRUPT,
        0,
        "status still shows the request"
    );
    assert!(!c.set_intx(false));
    assert_eq!(c.status() & status::INTERRUPT, 0);
}

#[test]
fn config_address_decoding() {
    let a = ConfigAddress::from_register(0xffff_ffff);
    assert_eq!(a.0, 0x80ff_fffc, "reserved bits read back as 0");
    let a = ConfigAddress::from_register(0x8000_0b44 | (2 << 16));
    assert_eq!(a.slot(), PciSlot::new(2, 1, 3));
    assert_eq!(a.register(), 0x44);
    assert_eq!(a.target(0xcfe), Some((PciSlot::new(2, 1, 3), 0x46)));
    assert_eq!(
        ConfigAddress::from_register(0x0000_0b44).target(0xcfc),
        None
    );
    assert_eq!(PciSlot::new(0, 1, 3).devfn(), 0x0b);
    assert_eq!(PciSlot::new(0, 1, 3).to_string(), "00:01.3");
}

#[test]
fn intx_swizzle_matches_the_i440fx_board() {
    let line = |dev, pin| intx_line(PciSlot::new(0, dev, 0), pin);
    assert_eq!(line(1, 1), Some(PIRQ_LINE_BASE), "slot 1 INTA -> PIRQA");
    assert_eq!(line(2, 1), Some(PIRQ_LINE_BASE + 1));
    assert_eq!(line(3, 4), Some(PIRQ_LINE_BASE + 1));
    assert_eq!(line(0, 1), Some(PIRQ_LINE_BASE + 3));
    assert_eq!(line(3, 0), None);
    assert_eq!(line(3, 5), None);
}

#[test]
fn slot_comes_from_options() {
    let mut config = DeviceConfig::default();
    let default = PciSlot::new(0, 1, 3);
    assert_eq!(PciSlot::from_config(&config, default), Ok(default));
    config.options.insert("slot".into(), "5".into());
    assert_eq!(
        PciSlot::from_config(&config, default),
        Ok(PciSlot::new(0, 5, 3))
    );
    config.options.insert("function".into(), "8".into());
    assert!(PciSlot::from_config(&config, default).is_err());
}

#[test]
fn state_round_trips_and_is_validated() {
    let mut c = nic();
    c.add_bar(0, Bar::mem32(0x1000)).unwrap();
    c.add_capability(0x40, 1, &[0; 6], &[]).unwrap();
    c.write(0x10, 4, 0xfeb0_0000);
    let bytes = crate::save_state(1, &c).unwrap();
    let back: PciConfig = crate::restore_state(1, &bytes).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.validate(), Ok(()));
    let mut short = c.clone();
    short.bytes.truncate(10);
    assert!(short.validate().is_err());
    assert_eq!(short.read(0x0c, 4), 0, "a damaged state still never panics");
    short.write(0x10, 4, 0xffff_ffff);
}

#[test]
fn arbitrary_config_writes_never_panic() {
    let mut c = nic();
    c.add_bar(0, Bar::mem64(0x4000).prefetchable()).unwrap();
    c.add_bar(2, Bar::io(0x20)).unwrap();
    c.add_bar(ROM_BAR, Bar::rom(0x800)).unwrap();
    c.add_capability(0x40, 5, &[0; 12], &[0xff; 12]).unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x >> 8) as u16 & 0x1ff;
        let size = [1, 2, 4][(x % 3) as usize];
        if x & 0x10_0000 != 0 {
            c.write(offset, size, (x >> 20) as u32);
        } else {
            let _ = c.read(offset, size);
        }
        let _ = (
            c.io_bars(),
            c.mmio_bars(),
            c.bar_address((x >> 40) as u8 % 8),
        );
    }
    assert_eq!(c.read(0, 4), 0x100e_8086);
}
