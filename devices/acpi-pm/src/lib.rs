//! ACPI power management function of the PIIX4 (PCI 00:01.3, 8086:7113), as QEMU's i440FX
//! machine has it beside a PIIX3.
//!
//! Firmware programs the PM I/O base in config register 0x40 (PMBA, 64-byte aligned) and
//! enables it with bit 0 of 0x80 (PMREGMISC); the device then decodes the 64-byte PM block
//! there (it calls `ctx.remap()`, and lists the block in `ports()`):
//!
//! | offset | register | |
//! |---|---|---|
//! | 0x00 | PM1a_STS (16) | TMR_STS 0, BM_STS 4, GBL_STS 5, PWRBTN_STS 8, RTC_STS 10, WAK_STS 15; write 1 to clear |
//! | 0x02 | PM1a_EN (16) | TMR_EN 0, GBL_EN 5, PWRBTN_EN 8, RTC_EN 10 |
//! | 0x04 | PM1a_CNT (16) | SCI_EN 0, BM_RLD 1, SLP_TYP 12:10, SLP_EN 13 (write-only) |
//! | 0x08 | PM_TMR (32) | 24-bit free-running count at 3.579545 MHz of virtual time |
//! | 0x0C | GPE0_STS (16) | general-purpose event status, write 1 to clear |
//! | 0x0E | GPE0_EN (16) | general-purpose event enables |
//!
//! so the FADT describes PM1a_EVT_BLK = base (length 4), PM1a_CNT_BLK = base + 4 (2),
//! PM_TMR_BLK = base + 8 (4), GPE0_BLK = base + 0x0C (4), SCI_INT = 9, SMI_CMD = 0xB2,
//! ACPI_ENABLE = 0xF1, ACPI_DISABLE = 0xF0. Writing SLP_EN with SLP_TYP = 0 powers the machine
//! off: the DSDT's `\_S5` package must hold 0, as QEMU's does (`Name (_S5, Package { 0, 0 })`).
//! Other sleep types (S1-S4) are not modelled; a DSDT for Nestor declares none.
//!
//! The SCI is ISA IRQ 9, level-triggered and active-high: it is high while SCI_EN is set and an
//! enabled PM1 or GPE0 event is pending. TMR_STS is set each time bit 23 of the timer toggles.
//! The APM ports 0xB2 (control, the SMI command port) and 0xB3 (status, a scratch byte) are
//! decoded here too; there is no SMM, so the commands act directly: 0xF1 sets SCI_EN (ACPI
//! mode), 0xF0 clears it.

#[cfg(test)]
mod tests;

use nestor_device::pci::{PciConfig, PciFunction, PciId, PciSlot};
use nestor_device::{
    read_bytewise, restore_state, save_state, write_bytewise, ConfigError, Device, DeviceConfig,
    DeviceContext, ExitRequest, PluginDescriptor, PortRange, Snapshot, StateError,
};
use serde::{Deserialize, Serialize};

/// Version of [`AcpiPmState`] as saved in snapshots.
pub const STATE_VERSION: u32 = 1;

pub const VENDOR_ID: u16 = 0x8086;
pub const DEVICE_ID: u16 = 0x7113;
/// PIIX4E, as QEMU reports it.
pub const REVISION: u8 = 0x03;
pub const DEFAULT_SLOT: PciSlot = PciSlot::new(0, 1, 3);

/// The SCI's ISA IRQ (hardwired on the PIIX4 as QEMU wires it).
pub const SCI_IRQ: u8 = 9;
/// PM timer frequency.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// Size of the PM I/O block.
pub const PM_BLOCK_LEN: u16 = 0x40;
pub const APM_CONTROL_PORT: u16 = 0xb2;
pub const APM_STATUS_PORT: u16 = 0xb3;
/// SMI commands written to [`APM_CONTROL_PORT`] (the FADT's ACPI_ENABLE / ACPI_DISABLE).
pub const ACPI_ENABLE: u8 = 0xf1;
pub const ACPI_DISABLE: u8 = 0xf0;
/// SLP_TYP value of S5 (soft off).
pub const SLP_TYP_S5: u8 = 0;

/// Offsets in the PM I/O block.
pub mod pm {
    pub const PM1_STS: u16 = 0x00;
    pub const PM1_EN: u16 = 0x02;
    pub const PM1_CNT: u16 = 0x04;
    pub const PM_TMR: u16 = 0x08;
    pub const GPE0_STS: u16 = 0x0c;
    pub const GPE0_EN: u16 = 0x0e;
}

/// PM1_STS / PM1_EN bits.
pub mod pm1 {
    pub const TMR: u16 = 0x0001;
    pub const BM: u16 = 0x0010;
    pub const GBL: u16 = 0x0020;
    pub const PWRBTN: u16 = 0x0100;
    pub const RTC: u16 = 0x0400;
    pub const PWRBTN_OVERRIDE: u16 = 0x0800;
    pub const WAK: u16 = 0x8000;
    /// Status bits a write of 1 clears.
    pub const STS_CLEARABLE: u16 = TMR | BM | GBL | PWRBTN | RTC | PWRBTN_OVERRIDE | WAK;
    /// Events with an enable bit (and so an SCI).
    pub const EVENTS: u16 = TMR | GBL | PWRBTN | RTC;
}

/// PM1_CNT bits.
pub mod pm1_cnt {
    pub const SCI_EN: u16 = 0x0001;
    pub const BM_RLD: u16 = 0x0002;
    pub const SLP_TYP: u16 = 0x1c00;
    pub const SLP_EN: u16 = 0x2000;
    /// Bits that read back as written.
    pub const STORED: u16 = SCI_EN | BM_RLD | SLP_TYP;
}

/// Config registers of the function.
pub mod reg {
    /// PM base address (bits 15:6), bit 0 hardwired to 1 (I/O space).
    pub const PMBA: u16 = 0x40;
    /// Device activity B; bit 25 (byte 0x5B bit 1) is APMC_EN.
    pub const DEVACTB: u16 = 0x58;
    /// Bit 0: PM I/O space enable.
    pub const PMREGMISC: u16 = 0x80;
    /// SMBus base address: no SMBus host here, so it stays 0 and Linux leaves it alone.
    pub const SMBBA: u16 = 0x90;
}

/// Bit 23 of the timer: its toggles set TMR_STS.
const TIMER_MSB_SHIFT: u32 = 23;
const NS_PER_SECOND: u128 = 1_000_000_000;

/// Plugin descriptor. Options: `slot`, `function` (default 00:01.3).
pub const PLUGIN: PluginDescriptor = PluginDescriptor {
    name: "piix4-pm",
    state_version: STATE_VERSION,
    create,
};

fn create(config: &mut DeviceConfig) -> Result<Box<dyn Device>, ConfigError> {
    Ok(Box::new(AcpiPm::from_config(config)?))
}

/// Guest-visible state of the PM function.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AcpiPmState {
    pub pci: PciConfig,
    pub pm1_status: u16,
    pub pm1_enable: u16,
    /// The stored bits of PM1_CNT (SLP_EN is never stored).
    pub pm1_control: u16,
    pub gpe0_status: u16,
    pub gpe0_enable: u16,
    /// Last byte written to the APM control port (0xB2).
    pub apm_control: u8,
    /// The APM status port (0xB3), a scratch byte.
    pub apm_status: u8,
    /// TMR_STS accounts for timer toggles up to this virtual time (ns).
    pub timer_synced_ns: u64,
    /// Level last driven on the SCI line.
    pub sci_level: bool,
}

/// Timer ticks elapsed at virtual time `t_ns`.
fn timer_ticks(t_ns: u64) -> u64 {
    (u128::from(t_ns) * u128::from(PM_TIMER_HZ) / NS_PER_SECOND) as u64
}

/// The first virtual time at which the timer has counted `ticks`.
fn time_of_tick(ticks: u64) -> u64 {
    let ns = (u128::from(ticks) * NS_PER_SECOND).div_ceil(u128::from(PM_TIMER_HZ));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The ACPI PM function.
///
/// ```
/// use nestor_device::testing::FakeContext;
/// use nestor_device::{Device, ExitRequest};
/// use nestor_acpi_pm::AcpiPm;
///
/// let mut pm = AcpiPm::new();
/// let mut ctx = FakeContext::new();
/// let pci = pm.pci().unwrap();
/// pci.config_write(0x40, 4, 0x0601, &mut ctx); // PMBA = 0x600
/// pci.config_write(0x80, 1, 0x01, &mut ctx); // PM I/O space on
/// assert_eq!(ctx.remaps, 1); // the PM block appeared
/// ctx.now_ns = 1_000_000_000;
/// assert_eq!(pm.io_read(0x608, 4, &mut ctx), 3_579_545); // one second of PM timer
/// pm.io_write(0x604, 2, 0x2000, &mut ctx); // SLP_EN with SLP_TYP 0 (S5)
/// assert_eq!(ctx.exits, vec![ExitRequest::PowerOff]);
/// ```
pub struct AcpiPm {
    state: AcpiPmState,
    slot: PciSlot,
}

impl Default for AcpiPm {
    fn default() -> Self {
        Self::new()
    }
}

impl AcpiPm {
    /// The function at 00:01.3 in its power-on state, PM block unmapped.
    #[must_use]
    pub fn new() -> Self {
        Self::at(DEFAULT_SLOT)
    }

    #[must_use]
    pub fn at(slot: PciSlot) -> Self {
        Self {
            state: AcpiPmState {
                pci: power_on_config(),
                pm1_status: 0,
                pm1_enable: 0,
                pm1_control: 0,
                gpe0_status: 0,
                gpe0_enable: 0,
                apm_control: 0,
                apm_status: 0,
                timer_synced_ns: 0,
                sci_level: false,
            },
            slot,
        }
    }

    /// Build from plugin options.
    pub fn from_config(config: &DeviceConfig) -> Result<Self, ConfigError> {
        config.reject_unknown(&PciSlot::OPTIONS)?;
        Ok(Self::at(PciSlot::from_config(config, DEFAULT_SLOT)?))
    }

    /// The guest-visible state.
    #[must_use]
    pub fn state(&self) -> &AcpiPmState {
        &self.state
    }

    /// The base port of the PM block while it is programmed and enabled.
    #[must_use]
    pub fn pm_base(&self) -> Option<u16> {
        let enabled = self.state.pci.byte(reg::PMREGMISC) & 1 != 0;
        let base = (self.state.pci.dword(reg::PMBA) & 0xffc0) as u16;
        (enabled && base != 0).then_some(base)
    }

    /// The power button was pressed. As on QEMU, the press is latched only while the guest
    /// has enabled the power button event; returns whether the guest will see an SCI (else a
    /// frontend may fall back to a hard power-off). The SCI is raised at the next timer call.
    pub fn press_power_button(&mut self) -> bool {
        if self.state.pm1_enable & pm1::PWRBTN == 0 {
            return false;
        }
        self.state.pm1_status |= pm1::PWRBTN;
        self.state.pm1_control & pm1_cnt::SCI_EN != 0
    }

    /// The RTC's alarm fired (RTC_STS); the SCI follows at the next timer call if enabled.
    pub fn raise_rtc_event(&mut self) {
        self.state.pm1_status |= pm1::RTC;
    }

    /// General-purpose event `bit` (0..16) became pending.
    pub fn raise_gpe(&mut self, bit: u8) {
        if let Some(mask) = 1u16.checked_shl(u32::from(bit)) {
            self.state.gpe0_status |= mask;
        }
    }

    /// Whether the SCI line should be high now.
    fn sci_wanted(&self) -> bool {
        let s = &self.state;
        let pm1 = s.pm1_status & s.pm1_enable & pm1::EVENTS != 0;
        let gpe = s.gpe0_status & s.gpe0_enable != 0;
        s.pm1_control & pm1_cnt::SCI_EN != 0 && (pm1 || gpe)
    }

    fn update_sci(&mut self, ctx: &mut dyn DeviceContext) {
        let level = self.sci_wanted();
        if level != self.state.sci_level {
            self.state.sci_level = level;
            ctx.set_irq(SCI_IRQ, level);
        }
    }

    /// Latch TMR_STS for every toggle of timer bit 23 up to `now`.
    fn sync_timer(&mut self, now: u64) {
        let from = self.state.timer_synced_ns;
        let now = now.max(from);
        if timer_ticks(now) >> TIMER_MSB_SHIFT != timer_ticks(from) >> TIMER_MSB_SHIFT {
            self.state.pm1_status |= pm1::TMR;
        }
        self.state.timer_synced_ns = now;
    }

    fn next_timer_toggle(&self) -> u64 {
        let half_periods = timer_ticks(self.state.timer_synced_ns) >> TIMER_MSB_SHIFT;
        time_of_tick(half_periods.saturating_add(1) << TIMER_MSB_SHIFT)
    }

    fn pm_byte(&self, offset: u16, now: u64) -> u8 {
        let s = &self.state;
        let reg16 = |v: u16| (v >> (8 * (offset & 1))) as u8;
        match offset & !1 {
            pm::PM1_STS => reg16(s.pm1_status),
            pm::PM1_EN => reg16(s.pm1_enable),
            pm::PM1_CNT => reg16(s.pm1_control),
            pm::GPE0_STS => reg16(s.gpe0_status),
            pm::GPE0_EN => reg16(s.gpe0_enable),
            pm::PM_TMR | 0x0a => {
                let value = timer_ticks(now) & 0x00ff_ffff;
                (value >> (8 * (offset - pm::PM_TMR))) as u8
            }
            _ => 0,
        }
    }

    fn write_pm_byte(&mut self, offset: u16, byte: u8, ctx: &mut dyn DeviceContext) {
        let shift = 8 * (offset & 1);
        let bits = u16::from(byte) << shift;
        let lane = 0xffu16 << shift;
        let s = &mut self.state;
        let merge = |old: u16, writable: u16| (old & !(lane & writable)) | (bits & writable);
        match offset & !1 {
            pm::PM1_STS => s.pm1_status &= !(bits & pm1::STS_CLEARABLE),
            pm::PM1_EN => s.pm1_enable = merge(s.pm1_enable, pm1::EVENTS),
            pm::PM1_CNT => {
                s.pm1_control = merge(s.pm1_control, pm1_cnt::STORED);
                if bits & pm1_cnt::SLP_EN != 0 {
                    let sleep_type = ((s.pm1_control & pm1_cnt::SLP_TYP) >> 10) as u8;
                    if sleep_type == SLP_TYP_S5 {
                        ctx.request_exit(ExitRequest::PowerOff);
                    }
                }
            }
            pm::GPE0_STS => s.gpe0_status &= !bits,
            pm::GPE0_EN => s.gpe0_enable = merge(s.gpe0_enable, 0xffff),
            _ => {} // the timer and the unmodelled PIIX4 registers ignore writes
        }
    }

    fn write_apm(&mut self, port: u16, byte: u8) {
        if port == APM_STATUS_PORT {
            self.state.apm_status = byte;
            return;
        }
        self.state.apm_control = byte;
        match byte {
            ACPI_ENABLE => self.state.pm1_control |= pm1_cnt::SCI_EN,
            ACPI_DISABLE => self.state.pm1_control &= !pm1_cnt::SCI_EN,
            _ => {}
        }
    }

    fn read_port(&self, port: u16, now: u64) -> u8 {
        match port {
            APM_CONTROL_PORT => self.state.apm_control,
            APM_STATUS_PORT => self.state.apm_status,
            _ => match self.pm_base() {
                Some(base) if port.wrapping_sub(base) < PM_BLOCK_LEN => {
                    self.pm_byte(port - base, now)
                }
                _ => 0xff,
            },
        }
    }

    fn write_port(&mut self, port: u16, byte: u8, ctx: &mut dyn DeviceContext) {
        match port {
            APM_CONTROL_PORT | APM_STATUS_PORT => self.write_apm(port, byte),
            _ => {
                if let Some(base) = self.pm_base() {
                    if port.wrapping_sub(base) < PM_BLOCK_LEN {
                        self.write_pm_byte(port - base, byte, ctx);
                    }
                }
            }
        }
    }
}

/// The configuration space at power-on.
fn power_on_config() -> PciConfig {
    let mut id = PciId::new(VENDOR_ID, DEVICE_ID, 0x06_80_00);
    id.revision = REVISION;
    id.interrupt_pin = 1;
    let mut c = PciConfig::new(&id);
    c.set_word(0x06, 0x0280);
    c.set_dword(reg::PMBA, 0x0000_0001);
    c.set_write_mask(reg::PMBA, &[0xc0, 0xff]);
    // Device activity, resource and GPI control registers: stored as written.
    c.set_write_mask(0x44, &[0xff; 0x3c]);
    // APMC_EN already set: SeaBIOS then leaves SMM set-up alone (there is no SMM), as on QEMU.
    c.set_byte(reg::DEVACTB + 3, 0x02);
    c.set_write_mask(reg::PMREGMISC, &[0x01]);
    c.set_dword(reg::SMBBA, 0x0000_0001);
    c
}

impl PciFunction for AcpiPm {
    fn pci_slot(&self) -> PciSlot {
        self.slot
    }

    fn config_read(&mut self, offset: u16, size: u8) -> u32 {
        self.state.pci.read(offset, size)
    }

    fn config_write(&mut self, offset: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        let before = self.pm_base();
        self.state.pci.write(offset, size, value);
        if self.pm_base() != before {
            ctx.remap();
        }
    }
}

impl Snapshot for AcpiPm {
    fn save(&self) -> Result<Vec<u8>, StateError> {
        save_state(STATE_VERSION, &self.state)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        let state: AcpiPmState = restore_state(STATE_VERSION, bytes)?;
        state.pci.validate()?;
        self.state = state;
        Ok(())
    }
}

impl Device for AcpiPm {
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }

    fn name(&self) -> &str {
        "acpi-pm"
    }

    fn ports(&self) -> Vec<PortRange> {
        let mut ports = vec![PortRange::new(APM_CONTROL_PORT, 2)];
        if let Some(base) = self.pm_base() {
            ports.push(PortRange::new(base, PM_BLOCK_LEN));
        }
        ports
    }

    fn io_read(&mut self, port: u16, size: u8, ctx: &mut dyn DeviceContext) -> u32 {
        let now = ctx.now_ns();
        self.sync_timer(now);
        let value = read_bytewise(port, size, |p| self.read_port(p, now));
        self.update_sci(ctx);
        value
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, ctx: &mut dyn DeviceContext) {
        self.sync_timer(ctx.now_ns());
        write_bytewise(port, size, value, |p, byte| self.write_port(p, byte, ctx));
        self.update_sci(ctx);
    }

    /// Registers and config space return to their power-on values (the PM block unmapped);
    /// a raised SCI is lowered at the next timer call.
    fn reset(&mut self) {
        let s = &mut self.state;
        s.pci = power_on_config();
        s.pm1_status = 0;
        s.pm1_enable = 0;
        s.pm1_control = 0;
        s.gpe0_status = 0;
        s.gpe0_enable = 0;
        s.apm_control = 0;
        s.apm_status = 0;
    }

    fn next_deadline_ns(&self) -> Option<u64> {
        if self.sci_wanted() != self.state.sci_level {
            return Some(self.state.timer_synced_ns);
        }
        let s = &self.state;
        let timer_sci = s.pm1_enable & pm1::TMR != 0 && s.pm1_control & pm1_cnt::SCI_EN != 0;
        (timer_sci && s.pm1_status & pm1::TMR == 0).then(|| self.next_timer_toggle())
    }

    fn on_timer(&mut self, ctx: &mut dyn DeviceContext) {
        self.sync_timer(ctx.now_ns());
        self.update_sci(ctx);
    }

    fn pci(&mut self) -> Option<&mut dyn PciFunction> {
        Some(self)
    }
}
