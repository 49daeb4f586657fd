use super::*;
use nestor_device::testing::FakeContext;

const BASE: u16 = 0x600;
const STS: u16 = BASE + pm::PM1_STS;
const EN: u16 = BASE + pm::PM1_EN;
const CNT: u16 = BASE + pm::PM1_CNT;
const TMR: u16 = BASE + pm::PM_TMR;
const GPE_STS: u16 = BASE + pm::GPE0_STS;
const GPE_EN: u16 = BASE + pm::GPE0_EN;
/// Timer bit 23 toggles every 2^23 ticks, about 2.34 s.
const TOGGLE_NS: u64 = 2_343_484_438;

/// Virtual time of the `k`th toggle of timer bit 23.
fn toggle(k: u64) -> u64 {
    time_of_tick(k << 23)
}

/// A PM function with its block at 0x600, as SeaBIOS programs it.
fn mapped() -> (AcpiPm, FakeContext) {
    let mut pm = AcpiPm::new();
    let mut ctx = FakeContext::new();
    pm.config_write(reg::PMBA, 4, u32::from(BASE) | 1, &mut ctx);
    pm.config_write(reg::PMREGMISC, 1, 1, &mut ctx);
    (pm, ctx)
}

fn acpi_mode(pm: &mut AcpiPm, ctx: &mut FakeContext) {
    pm.io_write(APM_CONTROL_PORT, 1, u32::from(ACPI_ENABLE), ctx);
}

#[test]
fn identity_and_config_defaults() {
    let mut pm = AcpiPm::new();
    assert_eq!(pm.config_read(0x00, 4), 0x7113_8086);
    assert_eq!(pm.config_read(0x08, 4), 0x0680_0003);
    assert_eq!(pm.config_read(0x3d, 1), 1, "INTA#");
    assert_eq!(pm.config_read(reg::PMBA, 4), 1);
    assert_eq!(
        pm.config_read(reg::DEVACTB, 4),
        0x0200_0000,
        "APMC_EN preset"
    );
    let mut ctx = FakeContext::new();
    pm.config_write(reg::SMBBA, 4, 0xb101, &mut ctx);
    assert_eq!(pm.config_read(reg::SMBBA, 4), 1, "no SMBus host");
    pm.config_write(reg::PMBA, 4, 0xffff_ffff, &mut ctx);
    assert_eq!(pm.config_read(reg::PMBA, 4), 0xffc1);
    assert_eq!(pm.pci_slot(), PciSlot::new(0, 1, 3));
}

#[test]
fn pm_block_is_decoded_once_programmed_and_enabled() {
    let mut pm = AcpiPm::new();
    let mut ctx = FakeContext::new();
    assert_eq!(pm.ports(), vec![PortRange::new(0xb2, 2)]);
    pm.config_write(reg::PMREGMISC, 1, 1, &mut ctx);
    assert_eq!(pm.pm_base(), None, "base 0 is never decoded");
    assert_eq!(ctx.remaps, 0);
    pm.config_write(reg::PMBA, 2, 0xb001, &mut ctx);
    assert_eq!(ctx.remaps, 1);
    assert_eq!(pm.ports()[1], PortRange::new(0xb000, 0x40));
    pm.config_write(reg::PMBA, 2, 0x0601, &mut ctx);
    assert_eq!(pm.pm_base(), Some(0x600));
    pm.config_write(reg::PMREGMISC, 1, 0, &mut ctx);
    assert_eq!(pm.ports().len(), 1);
    assert_eq!(ctx.remaps, 3);
    assert_eq!(pm.io_read(TMR, 4, &mut ctx), u32::MAX, "unmapped");
}

#[test]
fn pm_timer_counts_virtual_time_in_24_bits() {
    let (mut pm, mut ctx) = mapped();
    assert_eq!(pm.io_read(TMR, 4, &mut ctx), 0);
    ctx.now_ns = 1_000;
    assert_eq!(
        pm.io_read(TMR, 4, &mut ctx),
        3,
        "3.58 ticks per microsecond"
    );
    ctx.now_ns = 4_000_000_000;
    let ticks = (4 * 3_579_545) & 0xff_ffff;
    assert_eq!(pm.io_read(TMR, 4, &mut ctx), ticks, "wrapped at 2^24");
    assert_eq!(pm.io_read(TMR + 2, 2, &mut ctx), ticks >> 16);
    pm.io_write(TMR, 4, 0, &mut ctx);
    assert_eq!(pm.io_read(TMR, 4, &mut ctx), ticks, "read-only");
}

#[test]
fn timer_status_and_sci_at_each_toggle_of_bit_23() {
    let (mut pm, mut ctx) = mapped();
    pm.io_write(EN, 2, u32::from(pm1::TMR), &mut ctx);
    assert_eq!(pm.next_deadline_ns(), None, "no SCI before ACPI mode");
    acpi_mode(&mut pm, &mut ctx);
    assert_eq!(pm.next_deadline_ns(), Some(TOGGLE_NS));
    assert_eq!(toggle(1), TOGGLE_NS);
    ctx.run_until(&mut pm, 3 * TOGGLE_NS + 1);
    assert_eq!(ctx.rising_edge_times(SCI_IRQ), vec![TOGGLE_NS]);
    assert!(
        ctx.irq(SCI_IRQ),
        "level stays up until the status is cleared"
    );
    assert_eq!(pm.io_read(STS, 2, &mut ctx), u32::from(pm1::TMR));
    pm.io_write(STS, 2, u32::from(pm1::TMR), &mut ctx);
    assert!(!ctx.irq(SCI_IRQ));
    assert_eq!(pm.next_deadline_ns(), Some(toggle(4)));
    ctx.run_until(&mut pm, 5 * TOGGLE_NS);
    assert_eq!(ctx.rising_edge_times(SCI_IRQ)[1], toggle(4));
}

#[test]
fn timer_status_latches_without_the_enable() {
    let (mut pm, mut ctx) = mapped();
    ctx.now_ns = TOGGLE_NS - 1;
    assert_eq!(pm.io_read(STS, 2, &mut ctx), 0);
    ctx.now_ns = TOGGLE_NS;
    assert_eq!(pm.io_read(STS, 2, &mut ctx), u32::from(pm1::TMR));
    assert!(ctx.irq_events.is_empty());
}

#[test]
fn power_button_reaches_an_acpi_guest_only() {
    let (mut pm, mut ctx) = mapped();
    assert!(!pm.press_power_button(), "nobody listens yet");
    assert_eq!(pm.io_read(STS, 2, &mut ctx), 0);
    pm.io_write(EN + 1, 1, u32::from(pm1::PWRBTN >> 8), &mut ctx);
    assert!(!pm.press_power_button(), "enabled but not in ACPI mode");
    pm.io_write(STS, 2, 0xffff, &mut ctx);
    acpi_mode(&mut pm, &mut ctx);
    assert!(pm.press_power_button());
    assert_eq!(pm.next_deadline_ns(), Some(0));
    ctx.run_until(&mut pm, 10);
    assert!(ctx.irq(SCI_IRQ));
    assert_eq!(pm.io_read(STS + 1, 1, &mut ctx), 0x01, "PWRBTN_STS");
    pm.io_write(STS + 1, 1, 0x01, &mut ctx);
    assert!(!ctx.irq(SCI_IRQ));
}

#[test]
fn slp_en_with_s5_type_powers_off() {
    let (mut pm, mut ctx) = mapped();
    pm.io_write(CNT, 2, 0x2000 | (1 << 10) | 1, &mut ctx);
    assert!(ctx.exits.is_empty(), "S3 is not modelled");
    assert_eq!(pm.io_read(CNT, 2, &mut ctx), 0x0401, "SLP_EN reads 0");
    pm.io_write(CNT + 1, 1, 0x20, &mut ctx);
    assert_eq!(
        ctx.exits,
        vec![ExitRequest::PowerOff],
        "byte write of SLP_EN | SLP_TYP 0"
    );
    assert_eq!(pm.io_read(CNT, 2, &mut ctx), 0x0001);
}

#[test]
fn apm_commands_switch_acpi_mode() {
    let (mut pm, mut ctx) = mapped();
    pm.io_write(APM_STATUS_PORT, 1, 0x5a, &mut ctx);
    acpi_mode(&mut pm, &mut ctx);
    assert_eq!(pm.io_read(CNT, 2, &mut ctx) & 1, 1);
    assert_eq!(pm.io_read(APM_CONTROL_PORT, 2, &mut ctx), 0x5af1);
    pm.io_write(APM_CONTROL_PORT, 1, u32::from(ACPI_DISABLE), &mut ctx);
    assert_eq!(pm.io_read(CNT, 2, &mut ctx) & 1, 0);
    pm.io_write(APM_CONTROL_PORT, 1, 0x00, &mut ctx);
    assert_eq!(
        pm.io_read(CNT, 2, &mut ctx) & 1,
        0,
        "other commands do nothing"
    );
}

#[test]
fn gpe_events_raise_the_sci_when_enabled() {
    let (mut pm, mut ctx) = mapped();
    acpi_mode(&mut pm, &mut ctx);
    pm.raise_gpe(9);
    pm.raise_gpe(40);
    assert_eq!(pm.io_read(GPE_STS, 2, &mut ctx), 0x0200);
    assert!(!ctx.irq(SCI_IRQ));
    pm.io_write(GPE_EN + 1, 1, 0x02, &mut ctx);
    assert!(ctx.irq(SCI_IRQ));
    pm.io_write(GPE_STS, 4, 0x0200_0200, &mut ctx);
    assert!(
        !ctx.irq(SCI_IRQ),
        "a dword write clears status and rewrites the enables"
    );
    assert_eq!(pm.io_read(GPE_EN, 2, &mut ctx), 0x0200);
    pm.raise_rtc_event();
    pm.io_write(EN, 2, u32::from(pm1::RTC), &mut ctx);
    assert!(ctx.irq(SCI_IRQ));
}

#[test]
fn reset_unmaps_the_block_and_lowers_the_sci() {
    let (mut pm, mut ctx) = mapped();
    acpi_mode(&mut pm, &mut ctx);
    pm.raise_gpe(0);
    pm.io_write(GPE_EN, 2, 1, &mut ctx);
    assert!(ctx.irq(SCI_IRQ));
    pm.reset();
    assert_eq!(pm.ports().len(), 1);
    ctx.run_until(&mut pm, ctx.now_ns + 1);
    assert!(!ctx.irq(SCI_IRQ));
    assert_eq!(pm.next_deadline_ns(), None);
}

#[test]
fn state_round_trips() {
    let (mut pm, mut ctx) = mapped();
    acpi_mode(&mut pm, &mut ctx);
    pm.io_write(EN, 2, 0x0121, &mut ctx);
    pm.raise_gpe(3);
    ctx.now_ns = 5 * TOGGLE_NS;
    pm.io_read(STS, 2, &mut ctx);
    let mut copy = AcpiPm::new();
    copy.restore(&pm.save().unwrap()).unwrap();
    assert_eq!(copy.state(), pm.state());
    assert_eq!(copy.ports(), pm.ports());
    let mut damaged = pm.state().clone();
    damaged.pci.clear_mask.truncate(3);
    assert!(copy
        .restore(&save_state(STATE_VERSION, &damaged).unwrap())
        .is_err());
}

#[test]
fn restored_function_carries_on_like_the_original() {
    let (mut a, mut ctx_a) = mapped();
    acpi_mode(&mut a, &mut ctx_a);
    a.io_write(EN, 2, u32::from(pm1::TMR | pm1::PWRBTN), &mut ctx_a);
    ctx_a.run_until(&mut a, TOGGLE_NS / 2);
    let mut b = AcpiPm::new();
    b.restore(&a.save().unwrap()).unwrap();
    let mut ctx_b = FakeContext::new();
    ctx_b.now_ns = ctx_a.now_ns;
    ctx_a.clear_events();
    let (mut reads_a, mut reads_b) = (Vec::new(), Vec::new());
    for step in 1..=8u64 {
        let until = step * TOGGLE_NS * 3 / 4;
        ctx_a.run_until(&mut a, until);
        ctx_b.run_until(&mut b, until);
        if step == 5 {
            assert_eq!(a.press_power_button(), b.press_power_button());
        }
        for (dev, ctx, reads) in [
            (&mut a, &mut ctx_a, &mut reads_a),
            (&mut b, &mut ctx_b, &mut reads_b),
        ] {
            let sts = dev.io_read(STS, 2, ctx);
            reads.push((sts, dev.io_read(TMR, 4, ctx)));
            if step % 2 == 0 {
                dev.io_write(STS, 2, sts, ctx);
            }
        }
    }
    assert_eq!(reads_a, reads_b);
    assert_eq!(a.state(), b.state());
    assert_eq!(ctx_a.irq_events, ctx_b.irq_events);
    assert!(ctx_a.rising_edges(SCI_IRQ) >= 2);
}

#[test]
fn arbitrary_guest_io_never_panics() {
    let (mut pm, mut ctx) = mapped();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..30_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let size = [1, 2, 4][(x % 3) as usize];
        ctx.now_ns += (x >> 40) % 10_000_000;
        let value = (x >> 16) as u32 & !0x2000; // keep running: no SLP_EN
        match (x >> 8) & 7 {
            0 => pm.config_write((x >> 20) as u16 & 0xff, size, value, &mut ctx),
            1 => pm.io_write(0xb2 + (x as u16 & 1), 1, value, &mut ctx),
            2 | 3 => pm.io_write(BASE + (x >> 24) as u16 % 0x44, size, value, &mut ctx),
            4 => pm.raise_gpe((x >> 30) as u8),
            5 => {
                pm.press_power_button();
            }
            _ => {
                pm.io_read(BASE + (x >> 24) as u16 % 0x44, size, &mut ctx);
            }
        }
        if pm.next_deadline_ns().is_some_and(|d| d <= ctx.now_ns) {
            pm.on_timer(&mut ctx);
        }
        if pm.pm_base() != Some(BASE) {
            pm.config_write(reg::PMBA, 4, u32::from(BASE), &mut ctx);
            pm.config_write(reg::PMREGMISC, 1, 1, &mut ctx);
        }
    }
}

#[test]
fn config_selects_the_slot() {
    let mut config = DeviceConfig::default();
    config.options.insert("function".into(), "2".into());
    let mut dev = (PLUGIN.create)(&mut config).unwrap();
    assert_eq!(dev.name(), "acpi-pm");
    assert_eq!(dev.pci().map(|f| f.pci_slot()), Some(PciSlot::new(0, 1, 2)));
    config.options.insert("irq".into(), "9".into());
    assert!((PLUGIN.create)(&mut config).is_err());
}
