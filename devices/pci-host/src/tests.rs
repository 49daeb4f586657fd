use super::*;
use nestor_device::testing::FakeContext;

fn write(b: &mut I440fx, ctx: &mut FakeContext, offset: u16, size: u8, value: u32) {
    b.config_write(offset, size, value, ctx);
}

#[test]
fn identity_and_defaults() {
    let mut b = I440fx::new();
    assert_eq!(b.config_read(0x00, 4), 0x1237_8086);
    assert_eq!(b.config_read(0x04, 4), 0x0280_0006);
    assert_eq!(
        b.config_read(0x08, 4),
        0x0600_0002,
        "host bridge class, revision 2"
    );
    assert_eq!(b.config_read(0x0e, 1), 0, "single function");
    assert_eq!(b.config_read(0x72, 1), 0x02);
    assert_eq!(b.pam(), [0; 7]);
    assert!(b.pam_regions().iter().all(|r| !r.read_ram && !r.write_ram));
    assert_eq!(b.pci_slot(), PciSlot::new(0, 0, 0));
    assert!(b.ports().is_empty());
}

#[test]
fn pam_registers_keep_only_their_attribute_bits_and_remap() {
    let mut b = I440fx::new();
    let mut ctx = FakeContext::new();
    write(&mut b, &mut ctx, 0x58, 4, 0xffff_ff00); // DRAMT kept, PAM0..PAM2 written
    assert_eq!(b.pam()[..3], [0x30, 0x33, 0x33]);
    assert_eq!(ctx.remaps, 1);
    write(&mut b, &mut ctx, 0x5c, 4, 0x1122_3344);
    assert_eq!(b.pam(), [0x30, 0x33, 0x33, 0x00, 0x33, 0x22, 0x11]);
    assert_eq!(ctx.remaps, 2);
    write(&mut b, &mut ctx, 0x5c, 4, 0x1122_3344);
    assert_eq!(ctx.remaps, 2, "same values: no remap");
    write(&mut b, &mut ctx, 0x60, 4, 0x0808_0402);
    assert_eq!(b.config_read(0x60, 4), 0x0808_0402, "DRB registers");
    assert_eq!(ctx.remaps, 2);
}

#[test]
fn pam_regions_cover_the_bios_and_option_rom_area() {
    let regions = pam_regions(&[0x10, 0x21, 0, 0, 0, 0, 0x33]);
    assert_eq!(regions.len(), 13);
    assert_eq!(
        regions[0],
        PamRegion {
            base: 0xf_0000,
            len: 0x1_0000,
            read_ram: true,
            write_ram: false
        }
    );
    assert_eq!(
        (regions[1].base, regions[1].read_ram, regions[1].write_ram),
        (0xc_0000, true, false)
    );
    assert_eq!(
        (regions[2].base, regions[2].read_ram, regions[2].write_ram),
        (0xc_4000, false, true)
    );
    assert_eq!((regions[12].base, regions[12].len), (0xe_c000, 0x4000));
    assert!(regions[11].read_ram && regions[12].write_ram);
    let total: u64 = regions.iter().map(|r| r.len).sum();
    assert_eq!(total, 0x4_0000);
}

#[test]
fn smram_lock_freezes_d_open_until_reset() {
    let mut b = I440fx::new();
    let mut ctx = FakeContext::new();
    write(&mut b, &mut ctx, 0x72, 1, 0xef);
    assert_eq!(b.smram(), 0x6a, "C_BASE_SEG and bit 7 are read-only");
    assert_eq!(ctx.remaps, 1);
    write(
        &mut b,
        &mut ctx,
        0x72,
        1,
        u32::from(smram::D_OPEN | smram::G_SMRAME | smram::D_LCK),
    );
    assert_eq!(b.smram(), 0x1a, "setting D_LCK clears D_OPEN");
    write(
        &mut b,
        &mut ctx,
        0x72,
        1,
        u32::from(smram::D_OPEN | smram::D_CLS),
    );
    assert_eq!(b.smram(), 0x3a, "only D_CLS is writable once locked");
    b.reset();
    assert_eq!(b.smram(), 0x02);
    write(&mut b, &mut ctx, 0x72, 1, u32::from(smram::D_OPEN));
    assert_eq!(b.smram(), 0x42);
}

#[test]
fn error_status_is_write_one_to_clear() {
    let mut b = I440fx::new();
    let mut ctx = FakeContext::new();
    b.state.pci.set_byte(reg::ERRSTS, 0x11);
    write(&mut b, &mut ctx, 0x90, 2, 0x1000);
    assert_eq!(b.config_read(0x91, 1), 0x01);
}

#[test]
fn state_round_trips() {
    let mut b = I440fx::new();
    let mut ctx = FakeContext::new();
    write(&mut b, &mut ctx, 0x59, 4, 0x3333_3330);
    write(&mut b, &mut ctx, 0x72, 1, 0x18);
    let mut copy = I440fx::new();
    copy.restore(&b.save().unwrap()).unwrap();
    assert_eq!(copy.state(), b.state());
    let mut damaged = b.state().clone();
    damaged.pci.write_mask.clear();
    assert!(copy
        .restore(&save_state(STATE_VERSION, &damaged).unwrap())
        .is_err());
    assert!(copy
        .restore(&save_state(STATE_VERSION + 1, b.state()).unwrap())
        .is_err());
}

#[test]
fn restored_bridge_carries_on_like_the_original() {
    let mut a = I440fx::new();
    let mut ctx_a = FakeContext::new();
    write(&mut a, &mut ctx_a, 0x72, 1, 0x48); // open, enabled, not locked
    let mut b = I440fx::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    for (offset, value) in [(0x72u16, 0x58u32), (0x72, 0x40), (0x59, 0x10), (0x5f, 0xff)] {
        write(&mut a, &mut ctx_a, offset, 1, value);
        write(&mut b, &mut ctx_b, offset, 1, value);
    }
    assert_eq!(a.state(), b.state());
    assert_eq!(a.smram(), 0x1a, "the lock was taken in both");
    assert_eq!(ctx_a.remaps, 1 + ctx_b.remaps);
}

#[test]
fn arbitrary_config_cycles_never_panic() {
    let mut b = I440fx::new();
    let mut ctx = FakeContext::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = (x >> 8) as u16 & 0x1ff;
        let size = [1, 2, 4][(x % 3) as usize];
        if x & 0x100_0000 != 0 {
            b.config_write(offset, size, (x >> 32) as u32, &mut ctx);
        } else {
            b.config_read(offset, size);
        }
        b.io_write((x >> 16) as u16, size, 0, &mut ctx);
    }
    assert_eq!(b.config_read(0, 4), 0x1237_8086);
}

#[test]
fn config_selects_the_slot() {
    let mut config = DeviceConfig::default();
    config.options.insert("slot".into(), "2".into());
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "i440fx");
    assert_eq!(dev.pci().map(|f| f.pci_slot()), Some(PciSlot::new(0, 2, 0)));
    let mut config = DeviceConfig::default();
    config.options.insert("ram".into(), "2".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
